"""The token bucket keeps the client under its request rate, across threads (spec §1.8)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from google_helpers import ISSUER
from google_helpers import PROGRAM
from google_helpers import card
from google_standin import GoogleWalletStandIn

from wallet_service.google import ErrorKind
from wallet_service.google import GoogleWalletClient
from wallet_service.google import TokenBucket
from wallet_service.google import backoff_delay
from wallet_service.google import classify_error
from wallet_service.google import loyalty_class
from wallet_service.google import loyalty_object
from wallet_service.google import object_patch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_spaces_requests_evenly() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(21):
        bucket.acquire()
        starts.append(clock.now)
    assert starts[0] == 100.0
    assert all(abs(b - a - 0.1) < 1e-9 for a, b in zip(starts, starts[1:], strict=False))
    clock.now += 5                        # idle time does not bank a burst (capacity 1)
    assert bucket.reserve() == 0 and bucket.reserve() == pytest.approx(0.1)


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + window) for start in ordered)


def test_late_wakers_do_not_bunch_up() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    waits = [bucket.reserve() for _ in range(15)]      # 15 threads took slots 100.0 .. 101.4
    assert waits[-1] == pytest.approx(1.4)
    clock.now = 101.6                                  # ... and all woke up late
    starts = []
    for _ in range(15):
        bucket.admit()
        starts.append(clock.now)
    assert _max_in_window(starts) == 10
    assert starts[:10] == [101.6] * 10 and starts[10] == pytest.approx(102.6)


def test_headroom_paces_below_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, headroom=0.05, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(19 / 19.0)


def test_bucket_capacity_allows_a_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, capacity=3, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(10, headroom=1)


def test_classification_and_backoff() -> None:
    def body(reason: str, message: str = "") -> dict[str, object]:
        return {"error": {"code": 0, "message": message, "errors": [{"reason": reason}]}}

    assert classify_error(429, {}) is ErrorKind.RATE_LIMITED
    assert classify_error(403, body("rateLimitExceeded")) is ErrorKind.RATE_LIMITED
    assert classify_error(403, body("quotaExceeded")) is ErrorKind.QUOTA
    assert classify_error(429, body("quotaExceeded")) is ErrorKind.QUOTA
    assert classify_error(403, body("forbidden", "Quota exceeded for project")) is ErrorKind.QUOTA
    assert classify_error(403, body("permissionDenied", "Permission denied.")) is ErrorKind.AUTH
    assert classify_error(503, "not json") is ErrorKind.UNAVAILABLE
    assert classify_error(409, {}) is ErrorKind.CONFLICT
    assert not ErrorKind.AUTH.retryable and ErrorKind.QUOTA.retryable
    assert [backoff_delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 8, 20)] == [
        0.5, 1.0, 2.0, 30.0, 30.0]
    assert backoff_delay(1, rng=lambda: 0.0) == 0.0
    assert backoff_delay(1, rng=lambda: 0.0, retry_after=4) == 4


def test_rate_measured_at_the_standin_never_exceeds_the_limit(
        make_client: Callable[..., GoogleWalletClient], standin: GoogleWalletStandIn) -> None:
    rate = 20.0
    standin.seed_class(loyalty_class(ISSUER, PROGRAM))
    cards = [card(serial=f"20000000{i:05d}") for i in range(70)]
    objects = [loyalty_object(ISSUER, PROGRAM, c) for c in cards]
    for payload in objects:
        standin.seed_object(payload)
    # A wide headroom: this test runs beside other work on small CI machines, where the
    # stand-in's own thread may read a request a hundred milliseconds late.
    client = make_client(rate=rate, headroom=0.25, sleep=time.sleep)
    starts: list[float] = []
    client.bucket.record = starts
    client.get_class(loyalty_class(ISSUER, PROGRAM)["id"])   # token fetched outside the window
    standin.clear_requests()
    starts.clear()
    work = list(zip(objects, cards, strict=True))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                payload, member = work.pop()
            client.patch_object(payload["id"], object_patch(PROGRAM, member))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    received = standin.api_requests()
    assert len(received) == 70 and all(r.status == 200 for r in received)
    assert _max_in_window(starts) <= rate                  # what the client let go
    assert standin.max_in_window(1.0) <= rate              # what the server saw
    # ... and the bucket does not throttle far below the paced rate (15/s) either.
    assert 70 / elapsed > 0.8 * rate * 0.75
    assert elapsed < 70 / (rate * 0.75) * 1.2
