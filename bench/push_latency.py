"""Benchmark: how soon a change reaches APNs, and how fast a design change fans out.

    python bench/push_latency.py [--pg-url URL] [--earns 200] [--cards 10000]
                                 [--workers 2] [--threads 4] [--healthz-seconds 3]

Starts ``wallet-service serve`` (web processes and its background worker) on PostgreSQL,
pushing to ``bench/apns_server.mjs``, a Node HTTP/2 + TLS server that demands the pass
certificate as client certificate, like APNs (see ``bench/apns.py``) and reports when each
push arrived. ``--cards`` cards, each on a device of its own, are created with bulk SQL
(``INSERT … SELECT generate_series``), not through the API. Then it measures, in one run:

* ``/healthz`` requests per second (4 keep-alive clients for ``--healthz-seconds``): a
  yardstick of how loaded the machine is while the other figures are taken;
* earn → push: ``--earns`` earns one after another, each on a card that had no push for a
  while, from the moment the request is sent until APNs holds the push (p50, p99, max);
* fan-out: a design change to the program of all ``--cards`` cards, from the moment the
  request is sent until the last device's push has arrived, as pushes per second.

PostgreSQL URL: ``--pg-url`` (default the local ``test`` database; its ``public`` schema is
dropped and rebuilt, so do not point it at data you keep). Needs Node.js 18+.
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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from apns_standin import make_certificates  # noqa: E402

EXE = shutil.which("wallet-service", path=str(Path(sys.executable).parent)) or "wallet-service"
NODE_SERVER = ROOT / "bench" / "apns_server.mjs"
PASS_TYPE = "pass.dev.wallet-service.loyalty"


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


class Apns:
    """The Node stand-in; tells when pushes to a set of tokens have all arrived."""

    def __init__(self, certs: Any, ca_bundle: Path) -> None:
        self.process = subprocess.Popen(
            ["node", str(NODE_SERVER), "--cert", str(certs.server_cert),
             "--key", str(certs.server_key), "--ca", str(ca_bundle), "--log-requests"],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(json.loads(self.process.stdout.readline())["port"])
        self.total = 0
        self.lock = threading.Lock()
        self.watch = Watch(set())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            data = json.loads(line)
            if "token" in data:
                with self.lock:
                    self.total += 1
                    self.watch.arrived(data["token"], data["at"] / 1000)

    def expect(self, tokens: Iterable[str]) -> Watch:
        """Watch for one push to each of ``tokens`` from now on."""
        with self.lock:
            self.watch = Watch(set(tokens))
            return self.watch

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Watch:
    def __init__(self, tokens: set[str]) -> None:
        self.waiting = tokens
        self.first: float | None = None
        self.last = 0.0
        self.extra = 0  # pushes to tokens already seen, or not watched
        self.done = threading.Event()
        if not tokens:
            self.done.set()

    def arrived(self, token: str, at: float) -> None:
        if token in self.waiting:
            self.waiting.discard(token)
            self.first = at if self.first is None else min(self.first, at)
            self.last = max(self.last, at)
            if not self.waiting:
                self.done.set()
        else:
            self.extra += 1


class Client:
    def __init__(self, port: int, key: str = "") -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, data, self.headers)
            r = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closed the idle keep-alive connection before this request was sent
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, data, self.headers)
            r = self.conn.getresponse()
        payload = r.read()
        ok = payload and r.getheader("Content-Type", "").endswith("json")
        return r.status, json.loads(payload) if ok else None


def bulk_cards(url: str, merchant_id: int, program_id: int, n: int) -> None:
    """``n`` members, cards, devices (device i has token(i)) and registrations, in SQL."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    params = {"m": merchant_id, "p": program_id, "n": n}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO members (merchant_id, program_id, name, created_at) "
            "SELECT :m, :p, 'Member ' || i, now() FROM generate_series(1, :n) AS i"), params)
        conn.execute(text(
            "INSERT INTO loyalty_cards (merchant_id, program_id, member_id, serial_number, "
            "authentication_token, download_token, status, balance, lifetime_points, "
            "lifetime_spend_minor, version, last_modified, created_at, updated_at) "
            "SELECT :m, :p, id, 'bench-' || id, md5('auth' || id), md5('download' || id), "
            "'active', 0, 0, 0, 1, date_trunc('second', now()), now(), now() "
            "FROM members WHERE program_id = :p"), params)
        conn.execute(text(
            "INSERT INTO devices (device_library_identifier, push_token, created_at, updated_at) "
            "SELECT 'bench-' || i, lpad(to_hex(i), 64, '0'), now(), now() "
            "FROM generate_series(0, :n - 1) AS i"), params)
        conn.execute(text(
            "INSERT INTO registrations (device_id, card_id, created_at) "
            "SELECT d.id, c.id, now() FROM "
            "(SELECT id, row_number() OVER (ORDER BY id) AS k FROM devices) d JOIN "
            "(SELECT id, row_number() OVER (ORDER BY id) AS k FROM loyalty_cards "
            " WHERE program_id = :p) c USING (k)"), params)
        conn.execute(text("ANALYZE"))
    engine.dispose()


def members_and_tokens(url: str, program_id: int) -> list[tuple[int, str]]:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [(r[0], r[1]) for r in conn.execute(text(
            "SELECT m.id, d.push_token FROM members m JOIN loyalty_cards c ON c.member_id = m.id "
            "JOIN registrations r ON r.card_id = c.id JOIN devices d ON d.id = r.device_id "
            "WHERE m.program_id = :p ORDER BY d.id"), {"p": program_id})]
    engine.dispose()
    return rows


def healthz_rate(port: int, seconds: float, clients: int = 4) -> float:
    counts = [0] * clients
    stop = threading.Event()

    def hit(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            counts[i] += 1

    threads = [threading.Thread(target=hit, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wallet-push-bench-"))
    reset_postgres(args.pg_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({"WALLET_INSTANCE_PATH": str(tmp / "instance"), "WALLET_LOG_LEVEL": "WARNING",
                "WALLET_DATABASE_URL": args.pg_url, "WALLET_SECRET_KEY": "bench-secret-key",
                "WALLET_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    subprocess.run([EXE, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "dev-certs"], env=env, check=True, capture_output=True)
    made = subprocess.run([EXE, "create-merchant", "Bench", "--json"], env=env, check=True,
                          capture_output=True, text=True)
    merchant = json.loads(made.stdout)
    # The stand-in trusts its own CA and the one that issued the service's pass certificate.
    certs = make_certificates(tmp / "apns")
    bundle = tmp / "apns" / "trusted.pem"
    bundle.write_bytes(certs.ca_file.read_bytes()
                       + (tmp / "instance" / "certs" / "wwdr.pem").read_bytes())
    apns = Apns(certs, bundle)
    env.update({"WALLET_PUSH_BACKEND": "apns", "WALLET_APNS_URL": f"https://127.0.0.1:{apns.port}",
                "WALLET_APNS_CA_FILE": str(certs.ca_file)})
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
        cards = max(args.cards, args.earns)
        started = time.perf_counter()
        bulk_cards(args.pg_url, merchant["merchant_id"], program["id"], cards)
        members = members_and_tokens(args.pg_url, program["id"])
        print(f"setup: {cards} cards, devices and registrations in "
              f"{time.perf_counter() - started:.2f} s (bulk SQL)")
        time.sleep(2)  # the worker settles after start-up

        rate = healthz_rate(port, args.healthz_seconds)

        latencies: list[float] = []
        answered: list[float] = []
        for member_id, push_token in members[:args.earns]:
            watch = apns.expect([push_token])
            sent = time.time()
            status, _ = api.call("POST", f"/api/v1/members/{member_id}/transactions",
                                 {"type": "earn", "points": 1})
            answered.append(time.time() - sent)
            assert status == 201, status
            if not watch.done.wait(10):
                raise SystemExit(f"member {member_id}: no push within 10 s\n"
                                 + log_path.read_text())
            latencies.append(watch.last - sent)

        time.sleep(2.5)  # every device's coalescing window is over before the fan-out
        watch = apns.expect(t for _, t in members)
        sent = time.time()
        status, _ = api.call("PATCH", f"/api/v1/programs/{program['id']}",
                             {"design": {"background_color": "#102030"}})
        patched = time.time() - sent
        assert status == 200, status
        if not watch.done.wait(600):
            raise SystemExit(f"the fan-out did not finish in 10 minutes "
                             f"({len(watch.waiting)} devices left)\n" + log_path.read_text())
        assert watch.first is not None
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        apns.stop()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
          f"{load[2]:.2f}; serve --workers {args.workers} --threads {args.threads} with its "
          f"worker, PostgreSQL, Node APNs stand-in, all on this machine")
    print(f"/healthz: {rate:8.0f} requests/s ({args.healthz_seconds:g} s, 4 keep-alive clients)")
    ms = [1000 * x for x in latencies]
    print(f"earn -> push ({len(ms)} sequential earns, each on a quiet card): "
          f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
          f"max {max(ms):.1f} ms (earn answered: p50 "
          f"{1000 * statistics.median(answered):.1f} ms)")
    elapsed = watch.last - sent
    print(f"design change -> {cards} devices: {elapsed:.2f} s = {cards / elapsed:,.0f} pushes/s "
          f"end to end (request answered in {patched:.2f} s, first push after "
          f"{watch.first - sent:.2f} s; {watch.extra} pushes beyond one per device)")
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get(
        "WALLET_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--earns", type=int, default=200)
    parser.add_argument("--cards", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--healthz-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if shutil.which("node") is None:
        raise SystemExit("Node.js is needed for the APNs stand-in (bench/apns_server.mjs)")
    run(args)


if __name__ == "__main__":
    main()
