"""Access logs without secrets: private link tokens in paths are masked."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# /passes/<download token>, /c/<download token>: each token opens one member's card.
_PRIVATE = re.compile(r"(/(?:passes|c)/)[^/?\s]+")


def redact(text: str) -> str:
    return _PRIVATE.sub(r"\1…", text)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the card links' tokens replaced by an ellipsis."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
