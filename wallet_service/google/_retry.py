"""Rate limiting and error classification for Google Wallet REST calls (spec §1.6, §1.8).

Pure helpers: ``TokenBucket`` (thread-safe pacing), ``classify_error`` (what an error answer
means and whether to retry it) and ``backoff_delay`` (exponential backoff with full jitter);
``RequestBudget``, what the client needs of a budget shared with other processes.
"""

from __future__ import annotations

import collections
import enum
import math
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import Protocol

__all__ = ["ErrorKind", "RequestBudget", "TokenBucket", "backoff_delay", "classify_error",
           "error_details"]

_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "QuotaExceededException",
                            "RESOURCE_EXHAUSTED"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class ErrorKind(enum.Enum):
    """What an error answer means for the caller."""

    RATE_LIMITED = "rate_limited"   # 429, 403 rateLimitExceeded: retry after a pause
    QUOTA = "quota"                 # 403/429 quotaExceeded: retry, unless the call notifies
    UNAVAILABLE = "unavailable"     # 5xx: retry
    AUTH = "auth"                   # 401, 403 permissionDenied and other 403s
    INVALID = "invalid"             # 400
    NOT_FOUND = "not_found"         # 404
    CONFLICT = "conflict"           # 409
    OTHER = "other"

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.RATE_LIMITED, ErrorKind.QUOTA, ErrorKind.UNAVAILABLE)


def error_details(body: Any) -> tuple[str | None, str | None]:
    """``(reason, message)`` from Google's error envelope (§1.6); ``(None, None)`` if absent."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return None, None
    error = body["error"]
    reason = None
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        reason = errors[0].get("reason")
    reason = reason or error.get("status")
    message = error.get("message")
    return (str(reason) if reason else None), (str(message) if message else None)


def classify_error(status: int, body: Any) -> ErrorKind:
    """Classify an error answer (§1.6). A quota or rate reason wins over the status code, and
    a 403 whose message mentions quota or rate limits counts as quota (as edutap does)."""
    reason, message = error_details(body)
    text = (message or "").lower()
    if reason in _QUOTA_REASONS or "quotaexceeded" in text:
        return ErrorKind.QUOTA
    if reason in _RATE_REASONS:
        return ErrorKind.RATE_LIMITED
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 403 and ("quota" in text or "rate limit" in text):
        return ErrorKind.QUOTA
    if status >= 500:
        return ErrorKind.UNAVAILABLE
    return {400: ErrorKind.INVALID, 401: ErrorKind.AUTH, 403: ErrorKind.AUTH,
            404: ErrorKind.NOT_FOUND, 409: ErrorKind.CONFLICT}.get(status, ErrorKind.OTHER)


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                  rng: Callable[[], float] = random.random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1): full jitter over
    ``min(cap, base * 2**(attempt-1))``, but at least a server's ``Retry-After``."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    delay = ceiling * float(rng())
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


class RequestBudget(Protocol):
    """Requests per second shared by every process that calls Google (§1.8: the limit is
    the project's, not a process's); ``wallet_service.ratelimit.SharedRequestRate`` is one."""

    def acquire(self, *, urgent: bool = False) -> None:
        """Wait until one more request fits the budget, and count it. ``urgent`` requests (a
        customer waiting) go ahead of the others."""


class TokenBucket:
    """Keeps request starts under ``rate`` per second, across threads (§1.8).

    Two rules, both enforced under one lock:

    * pacing: slots are handed out ``1 / (rate * (1 - headroom))`` seconds apart (GCRA;
      ``capacity`` slots may be used at once, 1 by default). ``headroom`` leaves room for
      network jitter, so a window measured at the server stays under ``rate`` too;
    * a hard cap on *actual* starts: at most ``max(1, floor(rate))`` in any window of
      ``max(1, 1 / rate)`` seconds. A thread that wakes late from its sleep (a busy machine)
      waits again rather than bunching up with the next slot's owner.

    ``acquire()`` reserves a slot, sleeps outside the lock until it, then checks the cap.
    What the server measures adds the network's and both hosts' scheduling jitter; the
    headroom absorbs up to ``headroom / rate`` seconds of it.
    """

    def __init__(self, rate: float, *, capacity: float = 1.0, headroom: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity < 1 or not 0 <= headroom < 1:
            raise ValueError("rate must be > 0, capacity >= 1, 0 <= headroom < 1")
        self.rate = rate
        self.capacity = capacity
        self._interval = 1.0 / (rate * (1.0 - headroom))
        self._window = max(1.0, 1.0 / rate)
        self._starts: collections.deque[float] = collections.deque(
            maxlen=max(1, math.floor(rate * self._window + 1e-9)))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat: float | None = None  # theoretical arrival time of the next request
        #: Set to a list to collect every admitted start time (for measurements).
        self.record: list[float] | None = None

    def reserve(self) -> float:
        """Reserve a paced slot; return the seconds to wait until it (0: now)."""
        with self._lock:
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            start = max(now, tat - (self.capacity - 1) * self._interval)
            self._tat = max(tat, start) + self._interval
            return start - now

    def acquire(self) -> None:
        """Wait until a request may start, and count it as started."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        self.admit()

    def admit(self) -> None:
        """Wait until the cap on actual starts allows one more, and record it."""
        while True:
            with self._lock:
                now = self._clock()
                starts = self._starts
                if len(starts) < (starts.maxlen or 1) or now - starts[0] >= self._window:
                    starts.append(now)
                    if self.record is not None:
                        self.record.append(now)
                    return
                wait = self._window - (now - starts[0])
            self._sleep(wait)
