"""Access logs without secrets or personal data: private link tokens and Apple serial numbers
in paths, and the values of query parameters that carry a phone number, a card number, an
e-mail address or a credential, are masked."""

from __future__ import annotations

import json
import re
from typing import Any

from gunicorn.glogging import Logger

# Apple's web service: /apple/v1/passes/<pass type>/<serial>, and
# /apple/v1/devices/<device>/registrations/<pass type>/<serial>: a serial is a card number.
_APPLE_SERIAL = re.compile(r"(/v1/(?:passes|devices/[^/?\s]+/registrations)/[^/?\s]+/)[^/?\s]+")
# /passes/<download token>, /c/<download token>: each token opens one member's card.
_PRIVATE = re.compile(r"(?<!/v1)(/(?:passes|c)/)[^/?\s]+")
# Members are looked up by phone, e-mail or barcode; a key or token belongs in a header,
# but a misconfigured client may put it in the query string.
_SENSITIVE_PARAMS = ("phone", "email", "barcode", "api_key", "apikey", "key", "token",
                     "access_token", "password")
_QUERY = re.compile(r"((?:^|[?&;])(?:" + "|".join(_SENSITIVE_PARAMS) + r")=)[^&;#\s]*",
                    re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` (a request line, path, query string or referrer) with the secrets masked."""
    text = _APPLE_SERIAL.sub(r"\1…", text)
    text = _PRIVATE.sub(r"\1…", text)
    return _QUERY.sub(r"\1…", text)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with card links' tokens, Apple serials and personal or secret query
    values replaced by an ellipsis."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms


class JsonRedactingLogger(RedactingLogger):
    """The same access log as JSON objects, one a line (``WALLET_LOG_FORMAT=json``)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": str(atoms["t"]).strip("[]"), "remote": atoms["h"], "method": atoms["m"],
            "path": atoms["U"], "query": atoms["q"] or "", "status": atoms["s"],
            "bytes": atoms["B"], "duration_ms": atoms["M"], "referrer": atoms["f"],
            "user_agent": atoms["a"], "request_id": atoms.get("{x-request-id}o", "-"),
        }
        self.access_log.info(json.dumps(entry, ensure_ascii=False, default=str))


#: The access log's line (gunicorn's combined format and the request id).
ACCESS_LOG_FORMAT = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                     '%({x-request-id}o)s')
