"""The merchant API's blueprint, its authentication and its error answers; the resource
modules beside this one declare the operations on it."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import Response
from flask import g
from flask import request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from ...errors import AuthenticationFailed
from ...errors import InvalidInput
from ...errors import PermissionDenied
from ...errors import WalletError
from ...permissions import Permission
from ...permissions import scopes_with
from ...services import ledger
from ...services import merchants
from .. import get_session
from ..problems import from_http_exception
from ..problems import from_wallet_error
from ..routing import ApiBlueprint

PREFIX = "/api/v1"
T = TypeVar("T")
bp = ApiBlueprint("merchant_api", __name__, url_prefix=PREFIX)


@bp.errorhandler(WalletError)
def _wallet_error(exc: WalletError) -> Response:
    return from_wallet_error(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return from_http_exception(exc)


def require_api_key(permission: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate ``Authorization: Bearer <key>``, check that the key's scope holds
    ``permission``, and set ``g.merchant_id``, ``g.api_key_id`` and ``g.permissions``.

    Checked before the body is read, so a key that may not do something learns nothing about
    the resource or the input.

    :raises AuthenticationFailed: no key, or an unknown or revoked one (401).
    :raises PermissionDenied: the key's scope lacks ``permission`` (403, naming it).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            token = token.strip()
            if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not token:
                raise AuthenticationFailed("send the API key as 'Authorization: Bearer <key>'")
            caller = merchants.authenticate(get_session(), token)
            if permission not in caller.permissions:
                holders = " or ".join(f"'{scope}'" for scope in scopes_with(permission))
                raise PermissionDenied(
                    f"this API key's scope '{caller.scope}' lacks the '{permission}' "
                    f"permission; a key of the scope {holders} holds it",
                    permission=str(permission), scope=caller.scope)
            g.merchant_id, g.api_key_id = caller.merchant_id, caller.key_id
            g.permissions = caller.permissions
            return view(**kwargs)

        return wrapper

    return decorator


bp.auth_decorator = require_api_key


def current_merchant() -> int:
    """The merchant whose API key authenticated this request."""
    merchant_id: int = g.merchant_id
    return merchant_id


def current_actor() -> ledger.Actor:
    """Who the ledger records as the poster of this request's entries: its API key."""
    return ledger.Actor(api_key_id=g.api_key_id)


def current_permissions() -> frozenset[Permission]:
    """The permissions of the API key that authenticated this request."""
    held: frozenset[Permission] = g.permissions
    return held


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, checked for shape.

    :raises InvalidInput: not 1 to 255 printable ASCII characters.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    return checked_idempotency_key(key, "Idempotency-Key")


def checked_idempotency_key(key: str, field: str) -> str:
    """``key`` if it has the shape of an idempotency key (the header's, or a batch item's
    ``idempotency_key``).

    :raises InvalidInput: not 1 to 255 printable ASCII characters.
    """
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise InvalidInput(f"{field}: 1 to 255 printable ASCII characters", field=field)
    return key


def idempotency_header(operation: str) -> dict[str, str]:
    """The ``Idempotency-Key`` header of an operation's OpenAPI description: how a key
    relates to its operation and member (``services.ledger.IdempotencyScope``)."""
    return {"Idempotency-Key": (
        "Your key for this request, 1 to 255 printable ASCII characters, unique among your "
        f"requests. A key belongs to one operation (`{operation}` here) on one member, with "
        "one body: sent again with the same body to the same member, it answers with the "
        "first result and `Idempotent-Replayed: true`, and nothing is credited or taken "
        "twice. Sent with another body, to another member or to another operation "
        "(`transaction`, `stamps`, `action`, `reward.redeem`, `coupon.redeem`), it is "
        "refused with 422 naming `Idempotency-Key` and the operation and member it was used "
        "for. The service's own keys are kept apart: any key of yours is fine.")}


def post_once(post: Callable[[str | None], T]) -> T:
    """Run ``post`` with the request's ``Idempotency-Key`` and commit. When a concurrent
    request commits the same key first (the insert or the commit raises ``IntegrityError``),
    roll back and run it once more: under the card's lock it then finds that request's
    entry, and replays it or refuses the key."""
    session = get_session()
    key = idempotency_key()
    try:
        result = post(key)
        session.commit()
    except IntegrityError:
        if key is None:
            raise
        session.rollback()
        result = post(key)
        session.commit()
    return result
