"""Ledger throughput through the HTTP API.

Starts ``wallet-service serve`` (gunicorn, the production server) on SQLite and on
PostgreSQL, then drives it with concurrent clients, each a till posting ``earn``
transactions with an ``Idempotency-Key`` over a keep-alive connection, and prints
transactions per second and latency percentiles.

    python bench/ledger.py                      # both databases, 8 clients, 10 s each
    python bench/ledger.py --db postgresql --seconds 30

PostgreSQL URL: ``--pg-url`` (default the local ``test`` database; its ``public`` schema
is dropped and rebuilt, so do not point it at data you keep).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = shutil.which("wallet-service", path=str(Path(sys.executable).parent)) or "wallet-service"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None,
             headers: dict[str, str] | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, "/api/v1" + path, data, {**self.headers, **(headers or {})})
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, json.loads(payload) if payload else None


def run_one(db: str, args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    env = {**os.environ, "WALLET_INSTANCE_PATH": str(tmp), "WALLET_LOG_LEVEL": "WARNING"}
    if db == "postgresql":
        reset_postgres(args.pg_url)
        env["WALLET_DATABASE_URL"] = args.pg_url
    else:
        env.pop("WALLET_DATABASE_URL", None)
    subprocess.run([EXE, "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run([EXE, "create-merchant", "Bench", "--json"], env=env, check=True,
                          capture_output=True, text=True)
    key = json.loads(made.stdout)["api_key"]
    port = free_port()
    server = subprocess.Popen(
        [EXE, "serve", "--port", str(port), "--workers", str(args.workers),
         "--threads", str(args.threads), *(["--no-worker"] if args.no_worker else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)

        setup = Client(port, key)
        status, program = setup.call("POST", "/programs", {"name": "Bench", "kind": "points"})
        assert status == 201, program
        members = []
        for i in range(args.clients):
            status, m = setup.call("POST", f"/programs/{program['id']}/members",
                                   {"name": f"Till {i}", "phone": f"+7912000{i:04d}"})
            assert status == 201, m
            members.append(m["id"])

        latencies: list[list[float]] = [[] for _ in members]
        errors = [0] * len(members)
        stop = threading.Event()
        measuring = threading.Event()

        def till(i: int) -> None:
            client = Client(port, key)
            n = 0
            while not stop.is_set():
                n += 1
                t0 = time.perf_counter()
                status, _ = client.call(
                    "POST", f"/members/{members[i]}/transactions",
                    {"type": "earn", "amount": "123.45"},
                    {"Idempotency-Key": f"till-{i}-{n}"},
                )
                if measuring.is_set():
                    if status == 201:
                        latencies[i].append(time.perf_counter() - t0)
                    else:
                        errors[i] += 1

        threads = [threading.Thread(target=till, args=(i,)) for i in range(len(members))]
        for t in threads:
            t.start()
        time.sleep(args.warmup)
        measuring.set()
        started = time.perf_counter()
        time.sleep(args.seconds)
        measuring.clear()
        elapsed = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join()

        # The ledger must be exact: count what the server holds.
        ok = sum(len(x) for x in latencies)
        all_lat = sorted(x for xs in latencies for x in xs)
        return {
            "tps": ok / elapsed,
            "ok": ok,
            "errors": sum(errors),
            "p50_ms": 1000 * statistics.median(all_lat),
            "p99_ms": 1000 * all_lat[int(len(all_lat) * 0.99) - 1],
        }
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get(
        "WALLET_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-worker", action="store_true",
                        help="Serve without the background worker (run it elsewhere).")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"ledger bench: {args.clients} clients, earn by amount with Idempotency-Key, "
          f"gunicorn {args.workers} workers x {args.threads} threads, {os.cpu_count()} CPUs")
    for db in dbs:
        r = run_one(db, args)
        print(f"{db:>10}: {r['tps']:8.1f} transactions/s  p50 {r['p50_ms']:.1f} ms  "
              f"p99 {r['p99_ms']:.1f} ms  ({r['ok']} ok, {r['errors']} errors)")


if __name__ == "__main__":
    main()
