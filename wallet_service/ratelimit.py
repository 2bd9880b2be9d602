"""Per-client request budgets for the unauthenticated endpoints, kept by the ``limits`` library.

Each budget is a moving window: at most ``per_minute`` requests from one client in any 60
seconds (a fixed window would let a client spend two budgets across a minute boundary).

Where the windows live is ``WALLET_RATE_LIMIT_STORAGE``:

* ``memory://`` (the default): in the process. Each web process counts on its own, so with N
  processes a client gets up to N times the budget. Right for one process, and needs nothing.
* ``redis://host:port/db`` (also ``rediss://`` and ``redis+unix://``): one Redis that every
  process shares, so the budget holds however many processes and machines serve. Needs the
  ``redis`` package (``pip install 'wallet-service[redis]'``).

When the shared storage stops answering, a request is not refused for it: the limiter counts
in the process's own memory instead (as with ``memory://``), logs a warning, and tries the
shared storage again after ``RETRY_SHARED_SECONDS``.

The same storage keeps :class:`SharedRequestRate`, the service's own budget of requests to
Google Wallet: Google allows about 20 a second per project (google-wallet spec §1.8), however
many web and worker processes call it, so they count together.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from limits import RateLimitItem
from limits import RateLimitItemPerMinute
from limits import RateLimitItemPerSecond
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.storage import Storage
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import ConfigurationError

log = logging.getLogger(__name__)

#: Keys in a shared storage start with this, so the service's keys are easy to find.
KEY_PREFIX = "wallet-service"

#: A rate-limit check must never hold a request up for long: Redis gets this many seconds to
#: connect and to answer before the process counts on its own.
STORAGE_TIMEOUT_SECONDS = 0.5

#: After the shared storage failed, requests count in process memory for this long before the
#: shared storage is tried again (so an unreachable Redis costs one timeout, not one per request).
RETRY_SHARED_SECONDS = 30.0


def make_storage(url: str) -> Storage:
    """The storage behind ``url`` (``memory://``, ``redis://…``: checked by the settings),
    made without connecting.

    :raises ConfigurationError: the URL needs a package that is not installed.
    """
    if urlsplit(url).scheme == "memory":
        return MemoryStorage()
    try:
        return storage_from_string(
            url, key_prefix=KEY_PREFIX, socket_timeout=STORAGE_TIMEOUT_SECONDS,
            socket_connect_timeout=STORAGE_TIMEOUT_SECONDS)
    except LimitsConfigurationError as exc:
        raise ConfigurationError(
            f"WALLET_RATE_LIMIT_STORAGE needs the redis package "
            f"(pip install 'wallet-service[redis]'): {exc}",
            field="WALLET_RATE_LIMIT_STORAGE") from None


def is_shared(storage: Storage) -> bool:
    """Whether every process sees the same windows (anything but process memory)."""
    return not isinstance(storage, MemoryStorage)


class RateLimiter:
    """``per_minute`` requests per client in any 60 seconds, for one kind of request.

    ``name`` keeps the windows of different limiters apart in a shared ``storage``; without a
    storage the limiter counts in its own memory.
    """

    def __init__(self, per_minute: int, *, storage: Storage | None = None,
                 name: str = "requests") -> None:
        self.per_minute = per_minute
        self.name = name
        self.item = RateLimitItemPerMinute(per_minute)
        self.storage = storage if storage is not None else MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._errors: tuple[type[Exception], ...] = ()
        if is_shared(self.storage):
            base = self.storage.base_exceptions
            self._errors = (StorageError, *(base if isinstance(base, tuple) else (base,)))
        self._local: MovingWindowRateLimiter | None = None
        self._shared_again_at = 0.0
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when the request of client ``key`` may go ahead, else the seconds to wait."""
        if not self._errors:
            return self._wait(self._strategy, key)
        if time.monotonic() >= self._shared_again_at:
            try:
                wait = self._wait(self._strategy, key)
            except self._errors as exc:
                self._shared_failed(exc)
            else:
                if self._shared_again_at:
                    self._shared_again_at = 0.0
                    log.warning("rate limit storage answers again; %s limits are shared",
                                self.name)
                return wait
        return self._wait(self._fallback(), key)

    def _wait(self, strategy: MovingWindowRateLimiter, key: str) -> float:
        if strategy.hit(self.item, self.name, key):
            return 0.0
        reset_at = strategy.get_window_stats(self.item, self.name, key).reset_time
        # Never 0: a refused request must not read as allowed when the window just ended.
        return max(reset_at - time.time(), 0.001)

    def _shared_failed(self, exc: Exception) -> None:
        self._shared_again_at = time.monotonic() + RETRY_SHARED_SECONDS
        log.warning("rate limit storage failed (%s: %s); %s limits count per process for "
                    "%.0f s", type(exc).__name__, exc, self.name, RETRY_SHARED_SECONDS)

    def _fallback(self) -> MovingWindowRateLimiter:
        if self._local is None:
            with self._lock:
                if self._local is None:
                    self._local = MovingWindowRateLimiter(MemoryStorage())
        return self._local


class _Window(RateLimiter):
    """A :class:`RateLimiter` over any ``item`` (``RateLimiter`` itself counts per minute)."""

    def __init__(self, item: RateLimitItem, *, storage: Storage | None, name: str) -> None:
        super().__init__(item.amount, storage=storage, name=name)
        self.item = item


class SharedRequestRate:
    """At most ``per_second`` requests a second to one API, counted in ``storage``: every
    process sharing the storage (Redis) shares the budget; in process memory each process
    keeps its own.

    A moving window of one second (more for rates below 1/s) holds at most ``limit``
    requests: ``per_second`` less ``headroom``, for what the network's jitter bunches up on
    the way. ``urgent`` requests (a customer waiting) count against the whole of it; the
    others also against a background window of ``1 - reserve`` of it, so however much
    background work is queued, an urgent request finds room within the second.

    ``acquire`` waits (``sleep``) until a request fits. When the shared storage fails it
    counts in process memory for a while, as :class:`RateLimiter` does.
    """

    def __init__(self, per_second: float, *, storage: Storage | None = None,
                 name: str = "requests", reserve: float = 0.2, headroom: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_second <= 0 or not 0 <= reserve < 1 or not 0 <= headroom < 1:
            raise ValueError("per_second must be > 0, 0 <= reserve < 1, 0 <= headroom < 1")
        seconds = max(1, math.ceil(1 / per_second))
        self.limit = max(1, math.floor(per_second * seconds * (1 - headroom) + 1e-9))
        self.background_limit = max(1, math.floor(self.limit * (1 - reserve) + 1e-9))
        self._all = _Window(RateLimitItemPerSecond(self.limit, seconds), storage=storage,
                            name=name)
        self._background = _Window(RateLimitItemPerSecond(self.background_limit, seconds),
                                   storage=storage, name=name)
        self._sleep = sleep

    def acquire(self, *, urgent: bool = False) -> None:
        """Wait until one more request fits, and count it (``urgent``: ahead of the others)."""
        if not urgent:
            self._wait(self._background, "background")
        self._wait(self._all, "all")

    def _wait(self, window: _Window, key: str) -> None:
        while wait := window.allow(key):
            self._sleep(wait)
