"""Turning pydantic's validation errors into ``ValidationFailed`` that names the field, and the
patterns the API and the sign-up page check alike."""

from __future__ import annotations

import re
from typing import Any
from typing import NoReturn

from pydantic import ValidationError

from .errors import ValidationFailed

#: An e-mail address as members give it: something@domain.tld, no spaces.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One ``{"field": ..., "message": ...}`` per problem, fields as dotted paths."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        # Model-level rules name their field at the start of the message ("points: ...").
        head, sep, rest = message.partition(": ")
        if sep and head.replace("_", "").replace(".", "").isalnum() and head.isascii():
            loc, message = [*loc, head], rest
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


def raise_for(exc: ValidationError, prefix: str = "") -> NoReturn:
    errors = field_errors(exc)
    if prefix:
        for e in errors:
            e["field"] = f"{prefix}.{e['field']}" if e["field"] != "body" else prefix
    first = errors[0]
    detail = f"{first['field']}: {first['message']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    raise ValidationFailed(detail, field=first["field"], errors=errors)


def validate(model: type[Any], data: Any, *, strict: bool | None = None) -> Any:
    """``data`` validated by ``model``; ``strict`` overrides the model's own setting (query
    strings are validated with ``strict=False``: their values are all text).

    :raises ValidationFailed: naming each field that fails.
    """
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise_for(exc)
