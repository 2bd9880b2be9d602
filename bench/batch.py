"""Batch ledger throughput through the HTTP API (``POST /transactions/batch``).

Starts ``wallet-service serve`` (gunicorn) on PostgreSQL (or SQLite), enrolls members, then
drives it with concurrent clients, each posting batches of ``earn`` by purchase amount (every
item with its own key, spread over the members) over a keep-alive connection, and prints
transactions (items applied) per second and the latency of a whole batch.

    python bench/batch.py                                   # PostgreSQL, 500 items a batch
    python bench/batch.py --clients 2 --batch 500 --seconds 20 --db sqlite

PostgreSQL URL: ``--pg-url`` (default ``WALLET_BENCH_PG_URL`` or the local ``test``
database; its ``public`` schema is dropped and rebuilt, so do not point it at data you keep).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import EXE  # noqa: E402
from ledger import Client  # noqa: E402
from ledger import free_port  # noqa: E402
from ledger import reset_postgres  # noqa: E402


def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.1)


def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    env = {**os.environ, "WALLET_INSTANCE_PATH": str(tmp), "WALLET_LOG_LEVEL": "WARNING"}
    if args.db == "postgresql":
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
        wait_healthy(port)
        setup = Client(port, key)
        status, program = setup.call("POST", "/programs", {"name": "Bench", "kind": "points"})
        assert status == 201, program
        members = []
        for i in range(args.members):
            status, m = setup.call("POST", f"/programs/{program['id']}/members",
                                   {"name": f"Member {i}", "phone": f"+7912{i:07d}"})
            assert status == 201, m
            members.append(m["id"])

        applied = [0] * args.clients
        failed = [0] * args.clients
        latencies: list[float] = []
        stop = threading.Event()
        measuring = threading.Event()

        def poster(c: int) -> None:
            client = Client(port, key)
            n = 0
            while not stop.is_set():
                n += 1
                # Each client posts to its own slice of members, as separate tills would.
                items = [{"member_id": members[(c * args.batch + j) % len(members)],
                          "idempotency_key": f"b{c}-{n}-{j}", "type": "earn",
                          "amount": "123.45"} for j in range(args.batch)]
                t0 = time.perf_counter()
                status, body = client.call("POST", "/transactions/batch", {"items": items})
                if not measuring.is_set():
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    failed[c] += args.batch
                    continue
                ok = sum(1 for i in body["items"] if i["status"] == 201)  # type: ignore[index]
                applied[c] += ok
                failed[c] += args.batch - ok

        threads = [threading.Thread(target=poster, args=(c,)) for c in range(args.clients)]
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
        return {
            "tps": sum(applied) / elapsed,
            "ok": sum(applied),
            "errors": sum(failed),
            "batches": len(latencies),
            "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
            "max_ms": 1000 * max(latencies) if latencies else 0.0,
        }
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--pg-url", default=os.environ.get(
        "WALLET_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-worker", action="store_true",
                        help="Serve without the background worker (run it elsewhere).")
    args = parser.parse_args()
    print(f"batch bench on {args.db}: {args.clients} clients x batches of {args.batch} earns "
          f"over {args.members} members, gunicorn {args.workers} workers x {args.threads} "
          f"threads, {os.cpu_count()} CPUs")
    r = run(args)
    print(f"{r['tps']:8.1f} transactions/s  {r['batches']} batches, p50 {r['p50_ms']:.0f} ms, "
          f"max {r['max_ms']:.0f} ms  ({r['ok']} ok, {r['errors']} errors)")


if __name__ == "__main__":
    main()
