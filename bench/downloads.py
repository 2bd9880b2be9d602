"""Benchmark: pass downloads after a design change, next to ``/healthz`` in the same run.

    python bench/downloads.py [--pg-url URL] [--cards 1000] [--clients 8]
                              [--workers 2] [--threads 4] [--seconds 3]

Starts ``wallet-service serve`` (web processes and its background worker, pushes to the
``null`` backend) on PostgreSQL, creates ``--cards`` cards, each registered on a device of
its own, with bulk SQL (see ``bench/push_latency.py``), and makes a design change of their
program. Then, with ``--clients`` concurrent keep-alive clients:

* ``/healthz`` requests per second for ``--seconds``: the yardstick of this run;
* pre-signed: the worker signs every card's new version before its push goes out (the time
  until all are stored is printed); every card is then downloaded once through its
  ``/passes/<token>`` link (distinct cards), then one card again and again for
  ``--seconds`` (the same card);
* not pre-signed: another design change, the stored passes deleted once the worker has
  stored them, and the distinct-card downloads again: each download signs and stores.

It prints requests per second and the ratio to ``/healthz``. The machine's load average is
printed too: other work on the machine moves every figure, the ratios less so.

PostgreSQL URL: ``--pg-url`` (default the local ``test`` database; its ``public`` schema is
dropped and rebuilt, so do not point it at data you keep).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from push_latency import EXE  # noqa: E402
from push_latency import Client  # noqa: E402
from push_latency import bulk_cards  # noqa: E402
from push_latency import free_port  # noqa: E402
from push_latency import reset_postgres  # noqa: E402


def scalar(url: str, sql: str, **params: Any) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    with engine.begin() as conn:
        result = conn.execute(text(sql), params)
        value = result.scalar() if result.returns_rows else None
    engine.dispose()
    return value


def download_tokens(url: str, program_id: int) -> list[str]:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    with engine.connect() as conn:
        tokens = [r[0] for r in conn.execute(text(
            "SELECT download_token FROM loyalty_cards WHERE program_id = :p ORDER BY id"),
            {"p": program_id})]
    engine.dispose()
    return tokens


CURRENT = ("SELECT count(*) FROM signed_passes s JOIN loyalty_cards c ON c.id = s.card_id "
           "JOIN loyalty_programs p ON p.id = c.program_id WHERE c.program_id = :p "
           "AND s.version = c.version AND s.program_revision = p.updated_at")


def wait_signed(url: str, program_id: int, cards: int, timeout: float = 180) -> float:
    """Seconds until every card's current version is stored."""
    started = time.perf_counter()
    while scalar(url, CURRENT, p=program_id) < cards:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"the worker did not sign {cards} passes in {timeout:g} s")
        time.sleep(0.05)
    return time.perf_counter() - started


def hammer(port: int, paths: Any, clients: int, seconds: float | None = None,
           headers: dict[str, str] | None = None) -> float:
    """Requests per second of ``clients`` keep-alive clients: each path of ``paths`` (a
    list) once, or the one path (a str) again and again for ``seconds``; every request
    with ``headers``."""
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    if isinstance(paths, list):
        for p in paths:
            work.put(p)
    counts = [0] * clients
    failures: list[str] = []
    stop = threading.Event()

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            if isinstance(paths, str):
                path = paths
            else:
                try:
                    path = work.get_nowait()
                except queue.Empty:
                    return
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failures.append(f"{path}: {r.status}")
                return
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    if seconds is not None:
        time.sleep(seconds)
        stop.set()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit("downloads failed: " + "; ".join(failures[:5]))
    return sum(counts) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wallet-download-bench-"))
    reset_postgres(args.pg_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({"WALLET_INSTANCE_PATH": str(tmp / "instance"), "WALLET_LOG_LEVEL": "WARNING",
                "WALLET_DATABASE_URL": args.pg_url, "WALLET_SECRET_KEY": "bench-secret-key",
                "WALLET_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "WALLET_PUSH_BACKEND": "null"})
    subprocess.run([EXE, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "dev-certs"], env=env, check=True, capture_output=True)
    made = subprocess.run([EXE, "create-merchant", "Bench", "--json"], env=env, check=True,
                          capture_output=True, text=True)
    merchant = json.loads(made.stdout)
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [EXE, "serve", "--port", str(port), "--workers", str(args.workers),
             "--threads", str(args.threads)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("serve did not start:\n" + log_path.read_text())
            time.sleep(0.1)
        api = Client(port, merchant["api_key"])
        status, program = api.call("POST", "/api/v1/programs", {"name": "Bench", "kind": "points"})
        assert status == 201, program
        bulk_cards(args.pg_url, merchant["merchant_id"], program["id"], args.cards)
        paths = [f"/passes/{t}" for t in download_tokens(args.pg_url, program["id"])]
        time.sleep(2)  # the worker settles after start-up

        def design(colour: str) -> None:
            status, _ = api.call("PATCH", f"/api/v1/programs/{program['id']}",
                                 {"design": {"background_color": colour}})
            assert status == 200, status

        design("#102030")
        presign = wait_signed(args.pg_url, program["id"], args.cards)
        healthz = hammer(port, "/healthz", args.clients, args.seconds)
        distinct = hammer(port, paths, args.clients)
        same = hammer(port, paths[0], args.clients, args.seconds)

        design("#203040")
        wait_signed(args.pg_url, program["id"], args.cards)
        scalar(args.pg_url, "DELETE FROM signed_passes")
        cold = hammer(port, paths, args.clients)
        healthz_after = hammer(port, "/healthz", args.clients, args.seconds)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
          f"{load[2]:.2f}; serve --workers {args.workers} --threads {args.threads} with its "
          f"worker and PostgreSQL on this machine; {args.clients} keep-alive clients")
    print(f"worker pre-signed {args.cards} new versions in {presign:.2f} s after the design "
          f"change ({args.cards / presign:,.0f} passes/s)")
    print(f"/healthz:                        {healthz:8.0f} requests/s "
          f"(again at the end: {healthz_after:.0f})")
    for name, rate in (("distinct cards, pre-signed", distinct),
                       ("same card, again and again", same),
                       ("distinct cards, not pre-signed", cold)):
        print(f"{name + ':':32} {rate:8.0f} requests/s = {rate / healthz:5.0%} of /healthz")
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get(
        "WALLET_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
