"""Benchmark: every live-update figure of the README in one run, next to ``/healthz``.

    python bench/e2e.py [--pg-url URL] [--cards 5000] [--distinct 1000] [--earns 200]
                        [--clients 8] [--seconds 5] [--workers 2] [--threads 4]
                        [--campaign 0] [--only STAGE[,STAGE...]]

Starts the service as a user would: ``wallet-service serve`` (web processes and its
background worker) on PostgreSQL, in a database of its own that it creates (``--pg-url``,
default ``wallet_e2e_bench`` on the local server; its ``public`` schema is dropped and
rebuilt), pushing to ``bench/apns_server.mjs`` (HTTP/2 + TLS demanding the pass certificate
as client certificate, like APNs) with Google Wallet on against ``tests/google_standin.py``.
``--cards`` cards, each on a device of its own, are created with bulk SQL. Then it measures,
with ``--clients`` keep-alive clients where several are used:

* ``/healthz`` requests per second: the yardstick of this run, at the start, right before
  the downloads and right before the earns (each stage's ratio is to the one taken right
  before it, in the state that stage finds the machine in), and at the end;
* earn → push: ``--earns`` earns one after another, each on a quiet card, from the request
  until APNs holds the push (p50, p99), as ``bench/push_latency.py``;
* design change → every device pushed, as pushes per second end to end, with the worker's
  peak memory;
* pass downloads right after that change, ``--distinct`` distinct cards once each, then one
  card again and again, as ``bench/downloads.py``; and a device's conditional download of a
  pass it holds (``If-None-Match``, answered 304);
* ``GET /api/v1/members/{id}`` over distinct members;
* earn by purchase amount (``POST /members/{id}/transactions``), each client a till with its
  own member and ``Idempotency-Key``s, as ``bench/ledger.py``;
* ``POST /transactions/batch``: 2 clients posting batches of 500 earns, as ``bench/batch.py``.

With ``--campaign N`` it then adds N cards in another program with ``COPY`` (not the API),
starts a second worker (``wallet-service worker``), sends a campaign message to all of them
and reports the time until every device is pushed and both workers' peak memory.

``--only`` runs some stages and skips the rest (``/healthz``, the yardstick, always runs):
``latency`` (earn → push), ``fanout`` (the design change and its signing), ``downloads``
(pass downloads and ``GET /api/v1/members/{id}``, after a fan-out), ``ledger`` (earns by
amount and batches) and ``campaign`` (with ``--campaign N``); ``--only fanout`` is the quick
loop for the worker's delivery. The default runs every stage. The worker's CPU seconds per
1,000 pushes of the fan-out (``/proc``) are printed next to its pushes per second: they move
less with the machine's load than the rate does.

The machine's load average is printed: other work on the machine moves every figure; the
ratios to ``/healthz`` of the same run move less. Needs Node.js 18+.
"""

from __future__ import annotations

import argparse
import http.client
import io
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/google.py is named like the ``google`` package (google-auth): import that first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
import google.auth  # noqa: E402, F401

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from apns_standin import make_certificates  # noqa: E402
from downloads import download_tokens  # noqa: E402
from downloads import hammer  # noqa: E402
from downloads import scalar  # noqa: E402
from downloads import wait_signed  # noqa: E402
from google_standin import GoogleWalletStandIn  # noqa: E402
from push_latency import EXE  # noqa: E402
from push_latency import Apns  # noqa: E402
from push_latency import Client  # noqa: E402
from push_latency import bulk_cards  # noqa: E402
from push_latency import free_port  # noqa: E402
from push_latency import members_and_tokens  # noqa: E402
from push_latency import percentile  # noqa: E402
from push_latency import reset_postgres  # noqa: E402

DEFAULT_DB = "wallet_e2e_bench"
ISSUER = "3388000000012345678"


def create_database(url: str) -> None:
    """Create the database of ``url`` on its server when it does not exist yet."""
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                        {"n": target.database}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    engine.dispose()


class Memory:
    """Peak resident memory of some processes, sampled every 50 ms (``VmRSS``; the kernel's
    own ``VmHWM`` counts start-up too), and of the children of ``parents`` as they start
    (a worker's signing processes)."""

    def __init__(self, pids: list[int], parents: tuple[int, ...] = ()) -> None:
        self.pids = pids
        self.parents = parents
        self.start = {p: rss_mb(p) for p in pids}
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for parent in self.parents:
                for child in children(parent):
                    if child not in self.peak:
                        self.start[child] = self.peak[child] = 0.0
                        self.pids.append(child)
            for p in self.pids:
                self.peak[p] = max(self.peak[p], rss_mb(p))

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        return ", ".join(f"{self.start[p]:.0f} → peak {self.peak[p]:.0f} MB" if self.start[p]
                         else f"started, peak {self.peak[p]:.0f} MB" for p in self.pids)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes ``pid`` started: a worker's signing processes
    (``WALLET_SIGNING_PROCESSES``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def background_worker(server_pid: int) -> int:
    """The pid of ``serve``'s background worker: its child that is not a gunicorn process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and b"spawn_main" in cmdline:
            return int(entry.name)
    raise SystemExit("the background worker of serve was not found")


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("serve did not start:\n" + log.read_text())
        time.sleep(0.1)


def tills(port: int, key: str, members: list[int], seconds: float) -> tuple[float, list[float]]:
    """Earns by amount per second, one till (client) per member, and their latencies."""
    latencies: list[float] = []
    counts = [0] * len(members)
    errors: list[int] = []
    stop = threading.Event()

    def till(i: int) -> None:
        client = Client(port, key)
        n = 0
        while not stop.is_set():
            n += 1
            client.headers["Idempotency-Key"] = f"till-{i}-{n}"
            t0 = time.perf_counter()
            status, _ = client.call("POST", f"/api/v1/members/{members[i]}/transactions",
                                    {"type": "earn", "amount": "123.45"})
            if status != 201:
                errors.append(status)
                return
            latencies.append(time.perf_counter() - t0)
            counts[i] += 1

    return _timed(till, len(members), seconds, stop, counts, errors), latencies


def batches(port: int, key: str, members: list[int], seconds: float, size: int = 500,
            clients: int = 2) -> float:
    """Batch items applied per second, ``clients`` posting batches of ``size`` earns."""
    counts = [0] * clients
    errors: list[int] = []
    stop = threading.Event()

    def poster(c: int) -> None:
        client = Client(port, key)
        n = 0
        while not stop.is_set():
            n += 1
            items = [{"member_id": members[(c * size + j) % len(members)],
                      "idempotency_key": f"b{c}-{n}-{j}", "type": "earn", "amount": "123.45"}
                     for j in range(size)]
            status, body = client.call("POST", "/api/v1/transactions/batch", {"items": items})
            if status != 200:
                errors.append(status)
                return
            counts[c] += sum(1 for i in body["items"] if i["status"] == 201)

    return _timed(poster, clients, seconds, stop, counts, errors)


def _timed(target: Any, n: int, seconds: float, stop: threading.Event, counts: list[int],
           errors: list[int]) -> float:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"requests failed: {errors[:5]}")
    return sum(counts) / (time.perf_counter() - start)


def copy_cards(url: str, merchant_id: int, program_id: int, n: int) -> None:
    """``n`` members, cards, devices and registrations of a program with ``COPY``: the way an
    import of an existing card base would load them, not through the API."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        base = cur.execute("SELECT coalesce(max(id), 0) FROM members").fetchone()[0]
        dev = cur.execute("SELECT coalesce(max(id), 0) FROM devices").fetchone()[0]
        card = cur.execute("SELECT coalesce(max(id), 0) FROM loyalty_cards").fetchone()[0]
        reg = cur.execute("SELECT coalesce(max(id), 0) FROM registrations").fetchone()[0]
        now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
        tables = {
            "members (id, merchant_id, program_id, name, marketing_consent, created_at)":
                lambda i: f"{base + i}\t{merchant_id}\t{program_id}\tCampaign {i}\tt\t{now}",
            "loyalty_cards (id, merchant_id, program_id, member_id, serial_number, "
            "authentication_token, download_token, status, balance, lifetime_points, "
            "lifetime_spend_minor, version, last_modified, created_at, updated_at)":
                lambda i: (f"{card + i}\t{merchant_id}\t{program_id}\t{base + i}\tcampaign-{i}"
                           f"\tauth{i:028d}\tdownload{i:024d}\tactive\t0\t0\t0\t1\t{now}\t{now}"
                           f"\t{now}"),
            "devices (id, device_library_identifier, push_token, created_at, updated_at)":
                lambda i: f"{dev + i}\tcampaign-{i}\t{'c' + format(i, '063x')}\t{now}\t{now}",
            "registrations (id, device_id, card_id, created_at)":
                lambda i: f"{reg + i}\t{dev + i}\t{card + i}\t{now}",
        }
        for table, row in tables.items():
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                buffer = io.StringIO()
                for i in range(1, n + 1):
                    buffer.write(row(i) + "\n")
                    if i % 20000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        for name in ("members", "loyalty_cards", "devices", "registrations"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))")
        conn.commit()
        cur.execute("ANALYZE")


def ratio(value: float, healthz: float) -> str:
    return f"{value:8,.0f}/s = {value / healthz:5.0%} of /healthz"


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wallet-e2e-bench-"))
    create_database(args.pg_url)
    reset_postgres(args.pg_url)
    port = free_port()
    google = GoogleWalletStandIn(record_bodies=False, notification_limit=None).start()
    account = google.service_account(tmp / "google-service-account.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({"WALLET_INSTANCE_PATH": str(tmp / "instance"), "WALLET_LOG_LEVEL": "WARNING",
                "WALLET_DATABASE_URL": args.pg_url, "WALLET_SECRET_KEY": "bench-secret-key",
                "WALLET_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "WALLET_GOOGLE_ISSUER_ID": ISSUER, "WALLET_GOOGLE_CREDENTIALS": str(account.path),
                "WALLET_GOOGLE_API_URL": google.url})
    subprocess.run([EXE, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "dev-certs"], env=env, check=True, capture_output=True)
    made = subprocess.run([EXE, "create-merchant", "Bench", "--json"], env=env, check=True,
                          capture_output=True, text=True)
    merchant = json.loads(made.stdout)
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
    out: dict[str, Any] = {}
    try:
        wait_healthy(port, server, log_path)
        worker_pid = background_worker(server.pid)
        key = merchant["api_key"]
        api = Client(port, key)
        status, program = api.call("POST", "/api/v1/programs", {"name": "Bench", "kind": "points"})
        assert status == 201, program
        cards = max(args.cards, args.earns, args.distinct, args.clients)
        started = time.perf_counter()
        bulk_cards(args.pg_url, merchant["merchant_id"], program["id"], cards)
        members = members_and_tokens(args.pg_url, program["id"])
        paths = [f"/passes/{t}" for t in download_tokens(args.pg_url, program["id"])]
        print(f"setup: {cards:,} cards, devices and registrations in "
              f"{time.perf_counter() - started:.2f} s (bulk SQL)", flush=True)
        time.sleep(2)  # the worker settles after start-up

        out["healthz"] = hammer(port, "/healthz", args.clients, args.seconds)

        latencies: list[float] = []
        for member_id, push_token in members[:args.earns] if "latency" in args.only else ():
            watch = apns.expect([push_token])
            sent = time.time()
            status, _ = api.call("POST", f"/api/v1/members/{member_id}/transactions",
                                 {"type": "earn", "points": 1})
            assert status == 201, status
            if not watch.done.wait(10):
                raise SystemExit(f"member {member_id}: no push within 10 s\n"
                                 + log_path.read_text())
            latencies.append(watch.last - sent)
        if latencies:
            out["latency"] = [1000 * x for x in latencies]
            time.sleep(2.5)  # every device's coalescing window is over before the fan-out
        if "fanout" in args.only or "downloads" in args.only:
            out.update(fanout(args, api, program, members, apns, worker_pid, log_path))
        if "downloads" in args.only:
            # The yardstick again, in the state the downloads find the machine in.
            out["healthz_downloads"] = hammer(port, "/healthz", args.clients, args.seconds)
            out["distinct"] = hammer(port, paths[:args.distinct], args.clients)
            out["same"] = hammer(port, paths[0], args.clients, args.seconds)
            out["members"] = hammer(port, [f"/api/v1/members/{m}"
                                           for m, _ in members[:args.distinct]],
                                    args.clients, headers={"Authorization": f"Bearer {key}"})
        if "ledger" in args.only:
            out["healthz_ledger"] = hammer(port, "/healthz", args.clients, args.seconds)
            earners = [m for m, _ in members[-args.clients:]]
            out["earn"], earn_latency = tills(port, key, earners, args.seconds)
            out["earn_ms"] = (1000 * statistics.median(earn_latency),
                              1000 * percentile(earn_latency, 0.99))
            out["batch"] = batches(port, key, [m for m, _ in members], args.seconds)
        out["healthz_end"] = hammer(port, "/healthz", args.clients, args.seconds)

        if args.campaign and "campaign" in args.only:
            out["campaign"] = campaign(args, env, port, key, merchant, apns, worker_pid, tmp)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        apns.stop()
        google.stop()
    report(args, out, cards)
    shutil.rmtree(tmp, ignore_errors=True)


def fanout(args: argparse.Namespace, api: Client, program: dict[str, Any],
           members: list[tuple[int, str]], apns: Apns, worker_pid: int,
           log_path: Path) -> dict[str, Any]:
    """A design change to every card of ``program``: until every device is pushed, then
    until every new pass is signed and stored, with the worker's memory and CPU time."""
    out: dict[str, Any] = {}
    memory = Memory([worker_pid])
    signers = children(worker_pid)  # none before the first large fan-out
    signers_memory = Memory(list(signers), parents=(worker_pid,))
    cpu = cpu_seconds(worker_pid)
    signers_cpu = sum(cpu_seconds(p) for p in signers)
    watch = apns.expect(t for _, t in members)
    sent = time.time()
    status, _ = api.call("PATCH", f"/api/v1/programs/{program['id']}",
                         {"design": {"background_color": "#102030"}})
    out["patched"] = time.time() - sent
    assert status == 200, status
    if not watch.done.wait(600):
        raise SystemExit(f"the fan-out did not finish in 10 minutes "
                         f"({len(watch.waiting)} devices left)\n" + log_path.read_text())
    assert watch.first is not None
    pushed_cpu = cpu_seconds(worker_pid) - cpu
    out["fanout"] = (watch.last - sent, watch.first - sent, watch.extra, memory.stop())
    # The worker signs the new passes right behind the pushes; downloads start once
    # every one is stored (the time it took is reported).
    wait_signed(args.pg_url, program["id"], len(members), timeout=1800)
    out["signed"] = time.time() - sent
    signers = children(worker_pid)
    out["fanout_cpu"] = (pushed_cpu, cpu_seconds(worker_pid) - cpu,
                         sum(cpu_seconds(p) for p in signers) - signers_cpu)
    out["signers"] = f"{len(signers)} signing process(es): {signers_memory.stop() or '-'}"
    return out


def campaign(args: argparse.Namespace, env: dict[str, str], port: int, key: str,
             merchant: dict[str, Any], apns: Apns, worker_pid: int, tmp: Path) -> str:
    api = Client(port, key)
    status, program = api.call("POST", "/api/v1/programs", {"name": "Campaign", "kind": "points"})
    assert status == 201, program
    started = time.perf_counter()
    copy_cards(args.pg_url, merchant["merchant_id"], program["id"], args.campaign)
    loaded = time.perf_counter() - started
    tokens = [t for _, t in members_and_tokens(args.pg_url, program["id"])]
    assert len(tokens) == args.campaign, len(tokens)
    with (tmp / "worker2.log").open("wb") as log:
        second = subprocess.Popen([EXE, "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        time.sleep(3)
        memory = Memory([worker_pid, second.pid, *children(worker_pid)],
                        parents=(worker_pid, second.pid))
        watch = apns.expect(tokens)
        sent = time.time()
        status, body = api.call("POST", f"/api/v1/programs/{program['id']}/campaigns",
                                {"text": "Double points all weekend"})
        answered = time.time() - sent
        assert status == 201, body
        if not watch.done.wait(1800):
            raise SystemExit(f"the campaign did not reach every device in 30 minutes "
                             f"({len(watch.waiting)} left)")
        elapsed = watch.last - sent
        peaks = memory.stop()
        signed = scalar(args.pg_url, "SELECT count(*) FROM signed_passes s JOIN loyalty_cards c "
                        "ON c.id = s.card_id WHERE c.program_id = :p", p=program["id"])
    finally:
        second.terminate()
        second.wait(timeout=30)
    return (f"campaign to {args.campaign:,} cards (loaded with COPY in {loaded:.1f} s), two "
            f"workers: request answered in {answered:.2f} s, every device pushed after "
            f"{elapsed:.1f} s = {args.campaign / elapsed:,.0f} pushes/s, {watch.extra} pushes "
            f"beyond one per device, {signed:,} passes signed ahead; memory of the two workers, "
            f"then of their signing processes: {peaks}")


def report(args: argparse.Namespace, out: dict[str, Any], cards: int) -> None:
    load = os.getloadavg()
    h = out["healthz"]
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
          f"{load[2]:.2f}; serve --workers {args.workers} --threads {args.threads} with its "
          f"worker on PostgreSQL, Node APNs stand-in, Google stand-in, {args.clients} clients")
    print(f"/healthz:                            {h:8,.0f}/s (at the end: "
          f"{out['healthz_end']:,.0f}/s)")
    if "latency" in out:
        ms = out["latency"]
        print(f"earn -> push, {len(ms)} quiet cards:        p50 {statistics.median(ms):.1f} ms, "
              f"p99 {percentile(ms, 0.99):.1f} ms")
    if "fanout" in out:
        elapsed, first, extra, memory = out["fanout"]
        pushed_cpu, signed_cpu, signers_cpu = out["fanout_cpu"]
        print(f"design change -> {cards:,} devices:     {elapsed:.2f} s = "
              f"{ratio(cards / elapsed, h)} end to end (answered in {out['patched']:.2f} s, "
              f"first push after {first:.2f} s, {extra} extra; worker memory {memory}; every "
              f"new pass signed and stored after {out['signed']:.1f} s)")
        print(f"worker CPU for the fan-out:          {1000 * pushed_cpu / cards:.2f} s per "
              f"1,000 pushes until the last push, {1000 * signed_cpu / cards:.2f} s until "
              f"every pass is signed ({pushed_cpu:.1f} s, {signed_cpu:.1f} s); "
              f"{out['signers']}, {signers_cpu:.1f} s CPU")
    if "distinct" in out:
        hd = out["healthz_downloads"]
        print(f"/healthz right before the downloads: {hd:8,.0f}/s (the yardstick of the next "
              f"three; against the first: {ratio(out['distinct'], h).split('= ')[-1]}, "
              f"{ratio(out['same'], h).split('= ')[-1]}, "
              f"{ratio(out['members'], h).split('= ')[-1]})")
        print(f"downloads, {args.distinct:,} distinct cards:     {ratio(out['distinct'], hd)}")
        print(f"downloads, the same card:            {ratio(out['same'], hd)}")
        print(f"GET /api/v1/members/{{id}}:           {ratio(out['members'], hd)}")
    if "earn" in out:
        hl = out["healthz_ledger"]
        p50, p99 = out["earn_ms"]
        print(f"/healthz right before the earns:     {hl:8,.0f}/s")
        print(f"earn by amount, {args.clients} tills:            {ratio(out['earn'], hl)} "
              f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms)")
        print(f"batch earns, 2 clients x 500:        {out['batch']:8,.0f} transactions/s")
    if "campaign" in out:
        print(out["campaign"])


STAGES = ("latency", "fanout", "downloads", "ledger", "campaign")


def stages(value: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"stages are {', '.join(STAGES)}; got {value!r}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get(
        "WALLET_E2E_PG_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{DEFAULT_DB}"))
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--distinct", type=int, default=1000)
    parser.add_argument("--earns", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--campaign", type=int, default=0,
                        help="then a campaign to this many more cards with two workers")
    parser.add_argument("--only", type=stages, default=STAGES,
                        help=f"run only these stages, comma-separated: {', '.join(STAGES)} "
                             "(default: all; /healthz always runs)")
    args = parser.parse_args()
    if shutil.which("node") is None:
        raise SystemExit("Node.js is needed for the APNs stand-in (bench/apns_server.mjs)")
    run(args)


if __name__ == "__main__":
    main()
