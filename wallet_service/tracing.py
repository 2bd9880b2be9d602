"""Request ids: one id follows a change from the request that made it, through the card
change it recorded, to the push and the Google update that carry it (README: Logs).

The web layer sets the id of each request (:func:`bind`) from a valid incoming
``X-Request-Id`` or a fresh one; the worker sets one per run of its own jobs (the daily
automations). Everything logged meanwhile carries it (:class:`RequestIdFilter`), and
``services.outbox`` records it on the card changes the request publishes.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets

#: What an incoming ``X-Request-Id`` may be: what proxies and tracing systems send (a UUID,
#: a hex or base64url token), short, and without spaces or anything that could forge a log
#: line. Anything else is replaced by a fresh id.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wallet_request_id", default=None)


def valid_request_id(value: str | None) -> bool:
    return bool(value) and _VALID.fullmatch(value or "") is not None


def new_request_id() -> str:
    return secrets.token_hex(16)


def bind(value: str | None = None) -> contextvars.Token[str | None]:
    """Make ``value`` (when valid, else a fresh id) the current request id; returns the
    token that :func:`unbind` takes."""
    return _CURRENT.set(value if value and valid_request_id(value) else new_request_id())


def unbind(token: contextvars.Token[str | None]) -> None:
    _CURRENT.reset(token)


def current_request_id() -> str | None:
    """The id of the request (or worker run) this code runs for, if any."""
    return _CURRENT.get()


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _CURRENT.get() or "-"
        return True
