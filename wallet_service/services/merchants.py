"""Merchants and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import first_row
from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import PermissionDenied
from ..errors import ResourceNotFound
from ..local_time import check_time_zone
from ..models import ApiKey
from ..models import Merchant
from ..permissions import Permission
from ..permissions import Scope
from ..permissions import covers
from ..permissions import scope_permissions

KEY_PREFIX = "wsk_"

_KEY_BY_HASH = select(ApiKey.id, ApiKey.merchant_id, ApiKey.key_hash, ApiKey.revoked_at,
                      ApiKey.scope).where(ApiKey.key_hash == bindparam("key_hash"))


def hash_api_key(raw: str) -> str:
    """SHA-256 of the key. Keys carry 256 random bits, so a fast hash is enough to store them."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_merchant(session: Session, name: str, *, time_zone: str
                    ) -> tuple[Merchant, ApiKey, str]:
    """Create a merchant with a first API key, of the ``admin`` scope (someone has to be
    able to create the others); returns the key in clear (shown once).

    :raises ValidationFailed: ``time_zone`` is not an IANA time zone.
    """
    merchant = Merchant(name=name, time_zone=check_time_zone(time_zone))
    session.add(merchant)
    session.flush()
    key, raw = create_api_key(session, merchant.id, "default", scope=Scope.ADMIN)
    return merchant, key, raw


_TIME_ZONE = select(Merchant.time_zone).where(Merchant.id == bindparam("merchant_id"))


def time_zone_of(session: Session, merchant_id: int) -> str:
    """The merchant's IANA time zone: the calendar its cards' dates are counted in."""
    zone: str = session.execute(_TIME_ZONE, {"merchant_id": merchant_id}).scalar_one()
    return zone


def get_merchant(session: Session, merchant_id: int) -> Merchant:
    """:raises ResourceNotFound: no such merchant."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise ResourceNotFound(f"merchant {merchant_id} not found", field="merchant_id")
    return merchant


def update_merchant(session: Session, merchant_id: int, patch: dict[str, Any], *,
                    default_time_zone: str) -> Merchant:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the merchant's settings; ``null``
    puts ``time_zone`` back to ``default_time_zone`` (the deployment's).

    A new zone moves the merchant's days from the next one on: what the daily job did for
    today stays done (``daily_done_on`` only grows), so no day runs twice.

    :raises ResourceNotFound: no such merchant.
    :raises ValidationFailed: ``time_zone`` is not an IANA time zone.
    """
    merchant = get_merchant(session, merchant_id)
    if "time_zone" in patch:
        value = patch["time_zone"]
        merchant.time_zone = check_time_zone(default_time_zone if value is None else value)
    session.flush()
    return merchant


def create_api_key(session: Session, merchant_id: int, name: str, *, scope: Scope,
                   creator: frozenset[Permission] | None = None) -> tuple[ApiKey, str]:
    """Create a key of ``scope``; returns it in clear (shown once). ``creator``: the
    permissions of the key asking for it, which must cover the new key's (no key can mint a
    stronger one); ``None`` for the operator's command line.

    :raises PermissionDenied: ``creator`` does not cover ``scope``; names ``scope``.
    """
    scope = Scope(scope)
    if creator is not None and not covers(creator, scope_permissions(scope)):
        missing = sorted(scope_permissions(scope) - creator)
        raise PermissionDenied(
            f"scope: this API key cannot create a key of the scope '{scope}', which holds "
            f"permissions it lacks: {', '.join(missing)}", field="scope")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        merchant_id=merchant_id, name=name, prefix=raw[:12], key_hash=hash_api_key(raw),
        scope=scope.value,
    )
    session.add(key)
    session.flush()
    return key, raw


def list_api_keys(session: Session, merchant_id: int) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, merchant_id: int, key_id: int, *,
                   revoker: frozenset[Permission] | None = None) -> ApiKey:
    """Revoke a key; revoking twice keeps the first revocation time. ``revoker``: the
    permissions of the key asking, which must cover the revoked key's, as to create it;
    ``None`` for the operator's command line.

    :raises ResourceNotFound: no such key for this merchant.
    :raises PermissionDenied: ``revoker`` does not cover the key's scope.
    """
    key = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id)
    )
    if key is None:
        raise ResourceNotFound(f"API key {key_id} not found", field="key_id")
    if revoker is not None and not covers(revoker, scope_permissions(key.scope)):
        raise PermissionDenied(f"key_id: this API key cannot revoke a key of the scope "
                               f"'{key.scope}', which holds permissions it lacks",
                               field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


@dataclass(frozen=True)
class Caller:
    """Who an API key speaks for, and what it may do."""

    merchant_id: int
    key_id: int
    scope: str
    permissions: frozenset[Permission]


def authenticate(session: Session, raw: str) -> Caller:
    """The merchant, key and scope of a live API key.

    The lookup is by hash (an index seek); the final comparison is constant-time. A scope
    this version does not know holds no permissions.

    :raises AuthenticationFailed: unknown or revoked key.
    """
    digest = hash_api_key(raw)
    row = first_row(session, _KEY_BY_HASH, {"key_hash": digest})
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise AuthenticationFailed("the API key is not valid")
    if row.revoked_at is not None:
        raise AuthenticationFailed("the API key has been revoked")
    return Caller(merchant_id=row.merchant_id, key_id=row.id, scope=row.scope,
                  permissions=scope_permissions(row.scope))
