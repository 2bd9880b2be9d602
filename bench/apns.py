"""Benchmark: APNs push throughput of ``ApnsPushClient`` over one HTTP/2 connection (spec §4.5).

    python bench/apns.py [--count 20000] [--batch 0] [--server node|python]
                         [--max-streams 1000] [--goaway-after 0] [--no-httpx]
                         [--httpx-concurrency 500]

Starts a local HTTP/2 TLS server that demands a client certificate, like APNs with
certificate auth, in a separate process, so the client has its own core:

* ``node`` (default when Node.js is installed): ``bench/apns_server.mjs`` on Node's native
  http2, fast enough not to be the bottleneck;
* ``python``: the test stand-in ``tests/apns_standin.py`` (``h2``), which is slower than the
  client and therefore caps the figure; use it only when Node is missing.

Then it pushes ``--count`` device tokens with ``ApnsPushClient.send`` (one call, or calls of
``--batch`` tokens) and prints pushes per second. For comparison, the same number of pushes
goes through ``httpx.AsyncClient(http2=True)`` with ``--httpx-concurrency`` requests in flight,
and the ratio is printed. httpx is needed only here (``pip install 'httpx[http2]'``); without it
that part is skipped. ``--goaway-after N`` makes the server close every connection gracefully
after N requests, to measure reconnecting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from apns_standin import StandInCertificates  # noqa: E402
from apns_standin import make_certificates  # noqa: E402

from wallet_service.push import ApnsPushClient  # noqa: E402
from wallet_service.push import CertificateAuth  # noqa: E402

NODE_SERVER = ROOT / "bench" / "apns_server.mjs"
PY_SERVER = ROOT / "tests" / "apns_standin.py"
TOPIC = "pass.com.example.bench"


def start_server(kind: str, certs: StandInCertificates, args: argparse.Namespace
                 ) -> tuple[subprocess.Popen[str], int]:
    if kind == "node":
        command = ["node", str(NODE_SERVER), "--cert", str(certs.server_cert),
                   "--key", str(certs.server_key), "--ca", str(certs.ca_file),
                   "--max-streams", str(args.max_streams),
                   "--goaway-after", str(args.goaway_after)]
    else:
        command = [sys.executable, str(PY_SERVER), "--folder", str(certs.folder),
                   "--topic", TOPIC, "--max-streams", str(args.max_streams)]
        if args.goaway_after:
            command += ["--goaway-after", str(args.goaway_after)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise SystemExit(f"the {kind} server did not start")
    return process, int(json.loads(line)["port"])


def stop_server(process: subprocess.Popen[str]) -> dict[str, float]:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {}
    for line in out.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if "requests" in data:
                return dict(data)
    return {}


def tokens(count: int, salt: int) -> list[str]:
    return [f"{salt:08x}{i:056x}" for i in range(count)]


def bench_client(url: str, certs: StandInCertificates, args: argparse.Namespace) -> float:
    client = ApnsPushClient(
        topic=TOPIC,
        auth=CertificateAuth(certificate=certs.client_cert, private_key=certs.client_key),
        base_url=url,
        ca_file=certs.ca_file,
        max_streams=args.max_streams,
        timeout=300.0,
    )
    with client:
        warm = client.send(tokens(500, 1))
        assert all(r.status == 200 for r in warm), Counter(r.reason for r in warm)
        batch = args.batch or args.count
        work = tokens(args.count, 2)
        cpu0 = time.process_time()
        start = time.perf_counter()
        results = []
        for i in range(0, len(work), batch):
            results += client.send(work[i:i + batch])
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    outcomes = Counter(r.outcome.value for r in results)
    rate = len(results) / elapsed
    print(f"ApnsPushClient : {len(results):>6} pushes in {elapsed:6.2f} s = {rate:7.0f} pushes/s"
          f"  (client CPU {cpu:.2f} s; {dict(outcomes)})")
    if outcomes.get("delivered") != args.count:
        print("  WARNING: not every push was delivered")
    return rate


async def _httpx_run(url: str, certs: StandInCertificates, args: argparse.Namespace) -> float:
    import httpx

    context = ssl.create_default_context(cafile=str(certs.ca_file))
    context.load_cert_chain(certs.client_cert, certs.client_key)
    headers = {"apns-topic": TOPIC, "apns-expiration": str(int(time.time()) + 7 * 86400)}
    semaphore = asyncio.Semaphore(args.httpx_concurrency)
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(http2=True, verify=context, limits=limits,
                                 timeout=120.0) as client:

        async def push(token: str) -> None:
            async with semaphore:
                response = await client.post(f"{url}/3/device/{token}", content=b"{}",
                                             headers=headers)
                statuses[response.status_code] += 1

        await asyncio.gather(*(push(t) for t in tokens(500, 3)))
        statuses.clear()
        cpu0 = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(push(t) for t in tokens(args.count, 4)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    rate = args.count / elapsed
    print(f"httpx (http2)  : {args.count:>6} pushes in {elapsed:6.2f} s = {rate:7.0f} pushes/s"
          f"  (client CPU {cpu:.2f} s; {args.httpx_concurrency} in flight; "
          f"statuses {dict(statuses)})")
    return rate


def bench_httpx(url: str, certs: StandInCertificates, args: argparse.Namespace) -> float | None:
    try:
        import h2  # noqa: F401
        import httpx  # noqa: F401
    except ImportError:
        print("httpx (http2)  : skipped (pip install 'httpx[http2]' to compare)")
        return None
    return asyncio.run(_httpx_run(url, certs, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=0, help="tokens per send() (0: all)")
    parser.add_argument("--server", choices=["node", "python"],
                        default="node" if shutil.which("node") else "python")
    parser.add_argument("--max-streams", type=int, default=1000)
    parser.add_argument("--goaway-after", type=int, default=0)
    parser.add_argument("--httpx-concurrency", type=int, default=500)
    parser.add_argument("--no-httpx", action="store_true")
    args = parser.parse_args()

    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; server: {args.server}; "
          f"max streams {args.max_streams}; goaway after {args.goaway_after or 'never'}")
    if args.server == "python":
        print("  note: the Python stand-in is slower than the client; figures are server-bound")
    with tempfile.TemporaryDirectory(prefix="apns-bench-") as folder:
        certs = make_certificates(Path(folder), client_common_name=f"Pass Type ID: {TOPIC}")
        process, port = start_server(args.server, certs, args)
        url = f"https://127.0.0.1:{port}"
        try:
            ours = bench_client(url, certs, args)
            theirs = None if args.no_httpx else bench_httpx(url, certs, args)
        finally:
            served = stop_server(process)
    if theirs:
        print(f"ratio          : ApnsPushClient is {ours / theirs:.1f}x httpx")
    if served:
        cpu = f", server CPU {served['cpu']:.2f} s" if "cpu" in served else ""
        print(f"server answered {served['requests']:.0f} requests{cpu}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"client peak RSS {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
