"""The merchant API's blueprint, its authentication and its error answers; the resource
modules beside this one declare the operations on it."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import Response
from flask import g
from flask import request
from werkzeug.exceptions import HTTPException

from ...errors import AuthenticationFailed
from ...errors import InvalidInput
from ...errors import WalletError
from ...services import merchants
from .. import get_session
from ..problems import from_http_exception
from ..problems import from_wallet_error
from ..routing import ApiBlueprint

PREFIX = "/api/v1"
bp = ApiBlueprint("merchant_api", __name__, url_prefix=PREFIX)


@bp.errorhandler(WalletError)
def _wallet_error(exc: WalletError) -> Response:
    return from_wallet_error(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return from_http_exception(exc)


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate ``Authorization: Bearer <key>`` and set ``g.merchant_id``."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not token:
            raise AuthenticationFailed("send the API key as 'Authorization: Bearer <key>'")
        g.merchant_id, g.api_key_id = merchants.authenticate(get_session(), token)
        return view(**kwargs)

    return wrapper


bp.auth_decorator = require_api_key


def current_merchant() -> int:
    """The merchant whose API key authenticated this request."""
    merchant_id: int = g.merchant_id
    return merchant_id


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, checked for shape.

    :raises InvalidInput: not 1 to 255 printable ASCII characters.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise InvalidInput("Idempotency-Key: 1 to 255 printable ASCII characters",
                           field="Idempotency-Key")
    return key
