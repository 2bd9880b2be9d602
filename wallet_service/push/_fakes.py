"""Push clients that do not talk to APNs: ``NullPushClient`` and ``RecordingPushClient``."""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

from ._model import Outcome
from ._model import PushResult
from ._model import classify

#: A scripted answer: an ``Outcome`` (answered with a typical status/reason for it, below), an
#: APNs ``(status, reason)`` pair (classified with ``classify``), or a full ``PushResult``.
ScriptedReply = Outcome | tuple[int | None, str | None] | PushResult

_TYPICAL: dict[Outcome, tuple[int | None, str | None]] = {
    Outcome.DELIVERED: (200, None),
    Outcome.INVALID_TOKEN: (410, "Unregistered"),
    Outcome.RETRY: (503, "ServiceUnavailable"),
    Outcome.FAILED: (403, "BadCertificate"),
}


class NullPushClient:
    """Sends nothing and reports every push as accepted (status 200).

    For deployments without Apple credentials: passes still update when the device asks
    (pull to refresh, §4.6), just not on their own.
    """

    def send(self, tokens: Sequence[str]) -> list[PushResult]:
        """Return a ``DELIVERED`` result per token without sending anything."""
        return [PushResult(token, 200, None, None, None, Outcome.DELIVERED) for token in tokens]

    def close(self) -> None:
        """Nothing to release."""


class RecordingPushClient:
    """Records what it was asked to send and answers from a per-token script.

    ``script(token, *replies)`` queues answers for a token, used one per push in order; when a
    token's script is used up (or was never set) the answer is ``default``. ``batches`` holds
    each ``send`` call's tokens; ``tokens`` all of them in order. Thread-safe.
    """

    def __init__(self, *, default: ScriptedReply = Outcome.DELIVERED, timestamp: int = 0) -> None:
        self.default = default
        self.timestamp = timestamp
        self.batches: list[list[str]] = []
        self.closed = False
        self._scripts: dict[str, collections.deque[ScriptedReply]] = {}
        self._lock = threading.Lock()

    @property
    def tokens(self) -> list[str]:
        """Every token sent so far, in order (repeats included)."""
        with self._lock:
            return [token for batch in self.batches for token in batch]

    def script(self, token: str, *replies: ScriptedReply) -> None:
        """Queue ``replies`` for the next pushes to ``token``."""
        with self._lock:
            self._scripts.setdefault(token, collections.deque()).extend(replies)

    def send(self, tokens: Sequence[str]) -> list[PushResult]:
        """Record the batch and answer each token from its script."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the push client is closed")
            self.batches.append(list(tokens))
            return [self._answer(token) for token in tokens]

    def close(self) -> None:
        """Mark the client closed; later ``send`` calls raise ``RuntimeError``."""
        self.closed = True

    def _answer(self, token: str) -> PushResult:
        queued = self._scripts.get(token)
        reply = queued.popleft() if queued else self.default
        if isinstance(reply, PushResult):
            return reply
        if isinstance(reply, Outcome):
            status, reason = _TYPICAL[reply]
        else:
            status, reason = reply
        timestamp = self.timestamp if status == 410 else None
        apns_id = None if status is None else "00000000-0000-0000-0000-000000000000"
        return PushResult(token, status, reason, apns_id, timestamp, classify(status, reason))
