"""Benchmark: a tier recalculation that touches N Google Wallet cards (spec §1.8).

    python bench/google.py [--cards 10000] [--rate 15] [--workers 8]

Starts the Google Wallet stand-in (``tests/google_standin.py``) on 127.0.0.1 with a throwaway
service account, seeds one LoyaltyClass and ``--cards`` LoyaltyObjects in it, then PATCHes
every object with its new tier (``object_patch``) through one ``GoogleWalletClient`` shared by
``--workers`` threads, as the update worker does. The client's token bucket is the only
brake, so the run takes about ``cards / rate`` seconds.

Printed: elapsed time, requests per second achieved, and the most requests within any
1-second window, both as received by the stand-in and as started by the client's token
bucket; neither may exceed ``--rate``. On a busy machine the stand-in's threads may read
requests late and in bunches; ``--headroom`` (the client's default 0.05) absorbs up to
``headroom / rate`` seconds of that.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is named like the ``google`` package (google-auth); keep its folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from google_standin import GoogleWalletStandIn  # noqa: E402

from wallet_service.google import GoogleCard  # noqa: E402
from wallet_service.google import GoogleProgram  # noqa: E402
from wallet_service.google import GoogleWalletClient  # noqa: E402
from wallet_service.google import loyalty_class  # noqa: E402
from wallet_service.google import loyalty_object  # noqa: E402
from wallet_service.google import object_patch  # noqa: E402

ISSUER = "3388000000012345678"
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
PROGRAM = GoogleProgram(
    program_id=1, name={"ru": "Бонусы", "en": "Rewards"}, merchant_name="Bench Coffee",
    logo_url="https://cdn.example.com/logo.png", background_color="#1a73e8", tiers=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=10_000, help="cards touched (10000)")
    parser.add_argument("--rate", type=float, default=15.0, help="requests per second (15)")
    parser.add_argument("--workers", type=int, default=8, help="threads sharing the client (8)")
    parser.add_argument("--headroom", type=float, default=0.05,
                        help="pace this fraction below --rate to absorb jitter (0.05)")
    args = parser.parse_args()

    cards = [GoogleCard(serial=f"2{i:012d}", member_name=f"Member {i}", balance=i * 7 % 5000,
                        tier=TIERS[i % 4]) for i in range(args.cards)]
    with GoogleWalletStandIn(record_bodies=False) as standin, \
            tempfile.TemporaryDirectory() as tmp:
        account = standin.service_account(Path(tmp) / "service-account.json")
        standin.seed_class(loyalty_class(ISSUER, PROGRAM))
        for card in cards:
            standin.seed_object(loyalty_object(ISSUER, PROGRAM, card))
        # The recalculation: everybody moves up one tier.
        work = collections.deque(
            (loyalty_object(ISSUER, PROGRAM, c)["id"],
             object_patch(PROGRAM, GoogleCard(c.serial, c.member_name, c.balance,
                                              tier=TIERS[(TIERS.index(c.tier or TIERS[0]) + 1)
                                                         % 4])))
            for c in cards)
        errors: list[BaseException] = []
        assert account.path is not None
        with GoogleWalletClient.from_service_account_file(
                account.path, base_url=standin.url, rate=args.rate,
                headroom=args.headroom) as client:
            client.get_class(loyalty_class(ISSUER, PROGRAM)["id"])  # token, outside the timing
            standin.clear_requests()
            starts: list[float] = []
            client.bucket.record = starts

            def worker() -> None:
                while True:
                    try:
                        object_id, patch = work.popleft()
                    except IndexError:
                        return
                    try:
                        client.patch_object(object_id, patch)
                    except Exception as e:  # noqa: BLE001 - counted and reported
                        errors.append(e)

            threads = [threading.Thread(target=worker) for _ in range(args.workers)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            last_report = started
            while any(t.is_alive() for t in threads):
                time.sleep(0.02)
                if time.monotonic() - last_report >= 30:
                    last_report = time.monotonic()
                    print(f"  {args.cards - len(work)}/{args.cards} after "
                          f"{last_report - started:.0f}s", file=sys.stderr, flush=True)
            elapsed = time.monotonic() - started
            for thread in threads:
                thread.join()

        received = standin.api_requests()
        statuses = collections.Counter(r.status for r in received)
        peak = standin.max_in_window(1.0, received)
        client_peak = max_in_window(starts)
        patched = sum(1 for c in cards if standin.objects[
            loyalty_object(ISSUER, PROGRAM, c)["id"]]["secondaryLoyaltyPoints"]["balance"][
                "string"] != c.tier)
    achieved = len(received) / elapsed if elapsed else float("inf")
    print(f"cards touched          {args.cards} ({patched} updated at the stand-in)")
    print(f"configured rate        {args.rate:g} requests/s, {args.workers} worker threads")
    print(f"elapsed                {elapsed:.1f} s")
    print(f"requests               {len(received)} ({dict(statuses)}), errors {len(errors)}")
    print(f"achieved               {achieved:.2f} requests/s")
    print(f"max in any 1 s window  {peak} received by the stand-in, {client_peak} started by the "
          f"client (limit {args.rate:g}: "
          f"{'never exceeded' if max(peak, client_peak) <= args.rate else 'EXCEEDED'})")
    print(f"10,000 cards would take {10_000 / achieved / 60:.1f} min at this rate")
    ok = client_peak <= args.rate and peak <= args.rate and not errors and patched == args.cards
    return 0 if ok else 1


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps within any half-open ``window`` seconds."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


if __name__ == "__main__":
    sys.exit(main())
