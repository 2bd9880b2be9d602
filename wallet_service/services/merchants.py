"""Merchants and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import ResourceNotFound
from ..models import ApiKey
from ..models import Merchant

KEY_PREFIX = "wsk_"

_KEY_BY_HASH = select(ApiKey.id, ApiKey.merchant_id, ApiKey.key_hash, ApiKey.revoked_at).where(
    ApiKey.key_hash == bindparam("key_hash")
)


def hash_api_key(raw: str) -> str:
    """SHA-256 of the key. Keys carry 256 random bits, so a fast hash is enough to store them."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_merchant(session: Session, name: str) -> tuple[Merchant, ApiKey, str]:
    """Create a merchant with a first API key; returns the key in clear (shown once)."""
    merchant = Merchant(name=name)
    session.add(merchant)
    session.flush()
    key, raw = create_api_key(session, merchant.id, "default")
    return merchant, key, raw


def create_api_key(session: Session, merchant_id: int, name: str) -> tuple[ApiKey, str]:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        merchant_id=merchant_id, name=name, prefix=raw[:12], key_hash=hash_api_key(raw)
    )
    session.add(key)
    session.flush()
    return key, raw


def list_api_keys(session: Session, merchant_id: int) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, merchant_id: int, key_id: int) -> ApiKey:
    """Revoke a key; revoking twice keeps the first revocation time.

    :raises ResourceNotFound: no such key for this merchant.
    """
    key = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id)
    )
    if key is None:
        raise ResourceNotFound(f"API key {key_id} not found", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def authenticate(session: Session, raw: str) -> tuple[int, int]:
    """Return ``(merchant_id, key_id)`` for a live API key.

    The lookup is by hash (an index seek); the final comparison is constant-time.

    :raises AuthenticationFailed: unknown or revoked key.
    """
    digest = hash_api_key(raw)
    row = session.execute(_KEY_BY_HASH, {"key_hash": digest}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise AuthenticationFailed("the API key is not valid")
    if row.revoked_at is not None:
        raise AuthenticationFailed("the API key has been revoked")
    return row.merchant_id, row.id
