"""JSON problem responses (RFC 9457) for the merchant API."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response
from flask import jsonify
from werkzeug.exceptions import HTTPException

from ..errors import WalletError

log = logging.getLogger(__name__)


def problem(
    status: int, detail: str, *, title: str | None = None, errors: list[Any] | None = None,
    headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    response = jsonify(problem_body(status, detail, title=title, errors=errors, **extra))
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_body(status: int, detail: str, *, title: str | None = None,
                 errors: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The problem document (RFC 9457) itself."""
    return {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "errors": errors or [],
        **extra,
    }


def wallet_error_body(exc: WalletError) -> dict[str, Any]:
    """The problem document of ``exc`` (also one item's answer in a batch)."""
    errors = exc.extra.get("errors")
    if errors is None and exc.field:
        message = exc.message
        prefix = f"{exc.field}: "
        errors = [{"field": exc.field, "message": message.removeprefix(prefix)}]
    extra = {k: v for k, v in exc.extra.items() if k != "errors"}
    return problem_body(int(exc.status), exc.message, title=exc.title, errors=errors, **extra)


def from_wallet_error(exc: WalletError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="wallet-service"'} if exc.status == 401 else None
    response = jsonify(wallet_error_body(exc))
    response.status_code = int(exc.status)
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = exc.description or HTTPStatus(status).phrase
    headers = {}
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return problem(status, detail, headers=headers)


def from_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "an internal error occurred; it has been logged")
