"""Log lines: text or JSON (``WALLET_LOG_FORMAT``), each with the request id (``tracing``),
and never a card link's token, an Apple serial or a credential (``accesslog.redact``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from .accesslog import redact
from .tracing import RequestIdFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``request_id``,
    ``message`` and, for an exception, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    """The process's root logger: one handler on stderr in ``fmt``, at ``level``. Called
    again (a second app in one process) it replaces its own handler only."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "wallet_service", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.wallet_service = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
