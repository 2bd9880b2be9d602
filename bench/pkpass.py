"""Benchmark: build and sign distinct Apple Wallet passes on one CPU core.

    python bench/pkpass.py [--count 10000] [--template points] [--peer-count 1000] [--no-peer]

Builds ``--count`` passes of one program design in which only the member content differs
(serial, name, card number, balance, tier), the way a bulk re-issue does, and prints
passes per second and peak memory. Memory is the growth of the process's peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the timed loop, plus the absolute
peak; no tracing allocator runs during the loop, so the timing is not skewed.

When Node.js and npm are available, the same pass files and certificates are also given to
passkit-generator 3.x (installed on first use into ``bench/.peer/``, which git ignores; the
Node script is ``bench/peer/pkpass.cjs``) and the speed ratio is printed. If that is not
possible the benchmark says why and still reports its own figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wallet_service.apple import CardContent  # noqa: E402
from wallet_service.apple import Design  # noqa: E402
from wallet_service.apple import MerchantContact  # noqa: E402
from wallet_service.apple import StoreLocation  # noqa: E402
from wallet_service.apple import assets as apple_assets  # noqa: E402
from wallet_service.apple import build_pkpass  # noqa: E402

PEER_DIR = ROOT / "bench" / ".peer"
PEER_SCRIPT = ROOT / "bench" / "peer" / "pkpass.cjs"
PEER_PACKAGE = "passkit-generator@^3"
PASS_TYPE_ID = "pass.com.example.bench"
TEAM_ID = "ABCDE12345"
TIERS = ("Silver", "Gold", "Platinum", None)


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU {core}"
    return "not pinned (no sched_setaffinity on this platform)"


def max_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def sample_design() -> Design:
    return Design(
        organization_name="Example Coffee",
        description="Example Coffee loyalty card",
        logo_text="Example Coffee",
        rules_text="1 point for every 100 spent. Points expire after 12 months.",
        terms_text="The program may change its rules with 30 days' notice.",
        contact=MerchantContact(
            phone="+7 495 123-45-67", website="https://coffee.example.com", email="hi@example.com"
        ),
        locations=[StoreLocation(55.75 + i / 100, 37.61 + i / 100) for i in range(10)],
        languages=("en", "ru"),
    )


def member(index: int) -> CardContent:
    return CardContent(
        serial_number=f"bench-{index:012d}-6f1c1f3e0e4b",
        pass_type_identifier=PASS_TYPE_ID,
        team_identifier=TEAM_ID,
        member_name=f"Member {index}",
        card_number=f"CARD{index:08d}",
        balance=(index * 37) % 100_000,
        tier=TIERS[index % len(TIERS)],
        authentication_token=f"token-{index:026d}",
        web_service_url="https://wallet.example.com/apple",
        card_url=f"https://wallet.example.com/c/{index}",
        locale="ru" if index % 2 else "en",
    )


def run_ours(template_name: str, count: int, signer, design) -> dict[str, float]:
    template = apple_assets.load_template(template_name)
    build_pkpass(template, design, member(0), signer)  # warm caches (shared files, Babel)
    rss_before = max_rss_mb()
    total_bytes = 0
    started = time.perf_counter()
    for index in range(1, count + 1):
        total_bytes += len(build_pkpass(template, design, member(index), signer))
    seconds = time.perf_counter() - started
    return {
        "count": count,
        "seconds": seconds,
        "passes_per_second": count / seconds,
        "average_bytes": total_bytes / count,
        "rss_growth_mb": max_rss_mb() - rss_before,
        "max_rss_mb": max_rss_mb(),
    }


def prepare_peer() -> str | None:
    """Install passkit-generator into bench/.peer if needed; return why the peer is skipped."""
    if shutil.which("node") is None:
        return "node is not installed"
    if (PEER_DIR / "node_modules" / "passkit-generator" / "package.json").is_file():
        return None
    if shutil.which("npm") is None:
        return "npm is not installed"
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    command = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEER_DIR), PEER_PACKAGE]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "npm install timed out after 300 s"
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"npm install {PEER_PACKAGE} failed: {last[0]}"
    return None


def run_peer(workdir: Path, sample_pkpass: bytes, certs, count: int) -> dict[str, float]:
    files_dir = workdir / "peer-files"
    with zipfile.ZipFile(io.BytesIO(sample_pkpass)) as archive:
        for name in archive.namelist():
            if name not in ("manifest.json", "signature"):
                target = files_dir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    job = workdir / "peer-job.json"
    job.write_text(
        json.dumps(
            {
                "files_dir": str(files_dir),
                "cert": str(certs.certificate),
                "key": str(certs.private_key),
                "wwdr": str(certs.wwdr_certificate),
                "count": count,
            }
        )
    )
    result = subprocess.run(
        ["node", str(PEER_SCRIPT), str(PEER_DIR), str(job)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr else "failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="passes to build (10000)")
    parser.add_argument("--template", default="points", help="built-in template (points)")
    parser.add_argument(
        "--peer-count",
        type=int,
        default=1_000,
        help="passes for passkit-generator (1000; it is much slower)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip passkit-generator")
    args = parser.parse_args()

    pinning = pin_to_one_core()
    print(f"python {platform.python_version()} on {platform.machine()}, {pinning}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        certs = apple_assets.generate_dev_certs(workdir / "certs", PASS_TYPE_ID, TEAM_ID)
        signer = apple_assets.load_signer(
            wwdr_cert=certs.wwdr_certificate, cert=certs.certificate, key=certs.private_key
        )
        design = sample_design()
        ours = run_ours(args.template, args.count, signer, design)
        print(
            f"wallet-service: {ours['count']} passes in {ours['seconds']:.2f} s = "
            f"{ours['passes_per_second']:,.0f} passes/s, "
            f"{ours['average_bytes'] / 1024:.1f} KiB each; "
            f"peak RSS grew {ours['rss_growth_mb']:.1f} MB during the loop "
            f"(process peak {ours['max_rss_mb']:.1f} MB, getrusage ru_maxrss)"
        )
        if args.no_peer:
            print("peer: skipped (--no-peer)")
            return
        reason = prepare_peer()
        if reason:
            print(f"peer: skipped, {reason}")
            return
        template = apple_assets.load_template(args.template)
        sample = build_pkpass(template, design, dataclasses.replace(member(0)), signer)
        try:
            peer = run_peer(workdir, sample, certs, args.peer_count)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            print(f"peer: skipped, passkit-generator run failed: {exc}")
            return
        print(
            f"passkit-generator {peer['version']} (Node {platform_node()}): {peer['count']} passes "
            f"in {peer['seconds']:.2f} s = {peer['passes_per_second']:,.0f} passes/s, "
            f"peak RSS {peer['max_rss_mb']:.1f} MB"
        )
        ratio = ours["passes_per_second"] / peer["passes_per_second"]
        print(
            f"ratio: wallet-service is {ratio:.1f}x "
            "passkit-generator on the same template, one core each"
        )


def platform_node() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
