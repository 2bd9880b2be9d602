"""What a push returns, how an APNs answer is classified, and how long to back off (§4.4).

Pure code: no I/O, no clock. ``classify`` is the single table that turns an APNs status and
``reason`` into what the caller does next; every client in this package uses it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from typing import runtime_checkable


class Outcome(enum.Enum):
    """What the caller does with one push result (§4.4, "Responses and what to do")."""

    #: 200: accepted by APNs (not necessarily delivered or applied).
    DELIVERED = "delivered"
    #: The token is dead for this pass type: delete the registration (and the device if it has
    #: no other registration). For a 410, only if it was not updated after ``timestamp``.
    INVALID_TOKEN = "invalid_token"
    #: Transient: try again later with back-off (``backoff_delay``).
    RETRY = "retry"
    #: Configuration, credential or request problem: do not retry, tell an operator.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PushResult:
    """The answer for one device token.

    ``status`` is the HTTP status APNs returned, or ``None`` when no answer arrived (the
    connection failed, was lost, or the batch timed out); ``reason`` is then a short
    description of that failure instead of an APNs reason. ``timestamp`` is the
    milliseconds-since-epoch APNs sends with a 410 (§4.4).
    """

    token: str
    status: int | None
    reason: str | None
    apns_id: str | None
    timestamp: int | None
    outcome: Outcome


@runtime_checkable
class PushClient(Protocol):
    """Sends the empty pass-update push to devices (§4.3). Safe to call from worker threads."""

    def send(self, tokens: Sequence[str]) -> list[PushResult]:
        """Push ``{}`` once to each token; return one result per token, in the same order."""
        ...

    def close(self) -> None:
        """Release connections and threads. The client must not be used afterwards."""
        ...


#: 400 reasons that mean "this token can never work for this pass type" (§4.4).
_DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
#: 403 reasons that a freshly minted provider token fixes (§4.4, token auth).
_RENEWABLE_403_REASONS = frozenset({"ExpiredProviderToken"})


def classify(status: int | None, reason: str | None) -> Outcome:
    """Map an APNs status and ``reason`` to an ``Outcome`` (§4.4).

    ``None`` status (no answer) is ``RETRY``. 410 (``Unregistered``, ``ExpiredToken``) and the
    400s ``BadDeviceToken``/``DeviceTokenNotForTopic`` are ``INVALID_TOKEN``. 429, 5xx and
    403 ``ExpiredProviderToken`` (the client mints a new JWT) are ``RETRY``. Everything else
    (403 ``BadCertificate``/``InvalidProviderToken``, 400 ``TopicDisallowed``/``BadTopic``/
    ``MissingTopic``, request bugs such as 404/405/413) is ``FAILED``.
    """
    if status is None:
        return Outcome.RETRY
    if status == 200:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.INVALID_TOKEN
    if status == 400 and reason in _DEAD_TOKEN_REASONS:
        return Outcome.INVALID_TOKEN
    if status == 429 or 500 <= status <= 599:
        return Outcome.RETRY
    if status == 403 and reason in _RENEWABLE_403_REASONS:
        return Outcome.RETRY
    return Outcome.FAILED


class _Random(Protocol):
    def random(self) -> float: ...


def backoff_delay(attempt: int, *, base: float, cap: float, rng: _Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential back-off with full jitter: uniform in ``[0, min(cap, base * 2**attempt))``
    (§4.4: "retry later with back-off"). ``rng`` is a ``random.Random`` (or anything with
    ``random()``), so callers and tests control the jitter.

    :raises ValueError: ``attempt`` is negative, ``base`` is not positive or ``cap`` is
        negative.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base <= 0:
        raise ValueError(f"base must be > 0, got {base}")
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    # 2**attempt overflows a float long before it matters: past 1,000 the cap has won.
    ceiling = cap if attempt >= 1000 else min(cap, base * 2.0**attempt)
    return rng.random() * ceiling


def short_token(token: str) -> str:
    """A device token shortened for logs: enough to correlate, not enough to push."""
    return token[:8] + "…" if len(token) > 8 else token
