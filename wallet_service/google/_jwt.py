"""The "Add to Google Wallet" link: a skinny save JWT (spec §3).

The object is inserted (or patched) over REST first; the JWT then only references its id,
which keeps the link short (about 800 characters against the 1,800 limit, §3.4) and lets a
re-saved link show current data (§1.5, §7.7).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from google.auth import crypt
from google.auth import jwt
from google.oauth2 import service_account

__all__ = ["MAX_SAVE_JWT_LENGTH", "SAVE_URL_PREFIX", "save_claims", "save_jwt", "save_url"]

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"
#: Longest safe encoded JWT (§3.4).
MAX_SAVE_JWT_LENGTH = 1800

Signer = crypt.Signer | service_account.Credentials


def _signer_and_email(signer: Signer, issuer_email: str | None) -> tuple[crypt.Signer, str]:
    if isinstance(signer, service_account.Credentials):
        return signer.signer, issuer_email or signer.service_account_email
    if not issuer_email:
        raise ValueError("issuer_email (the service account e-mail) is required with a bare "
                         "signer")
    return signer, issuer_email


def save_claims(issuer_email: str, object_ids: Sequence[str], origins: Sequence[str], *,
                now: float | None = None) -> dict[str, Any]:
    """The save JWT's claims (§3.1): ``iss`` the service account, ``aud`` ``google``, ``typ``
    ``savetowallet``, ``origins``, integer ``iat`` and a payload of object id references."""
    if not object_ids:
        raise ValueError("a save link needs at least one object id")
    return {
        "iss": issuer_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time() if now is None else now),
        "origins": list(origins),
        "payload": {"loyaltyObjects": [{"id": oid} for oid in object_ids]},
    }


def save_jwt(signer: Signer, object_ids: Sequence[str], origins: Sequence[str], *,
             issuer_email: str | None = None, now: float | None = None) -> str:
    """The signed (RS256) save JWT (§3.2).

    ``signer``: the ``service_account.Credentials`` of the client (its key and e-mail are
    used), or a ``google.auth.crypt.RSASigner`` together with ``issuer_email``. ``origins``:
    the public origins (``https://host[:port]``) of pages that show the save button (§7.9).
    """
    key, email = _signer_and_email(signer, issuer_email)
    token: bytes = jwt.encode(  # type: ignore[no-untyped-call]
        key, save_claims(email, object_ids, origins, now=now))
    text = token.decode("ascii")
    if len(text) > MAX_SAVE_JWT_LENGTH:
        raise ValueError(f"save JWT is {len(text)} characters, over {MAX_SAVE_JWT_LENGTH} "
                         "(spec §3.4)")
    return text


def save_url(signer: Signer, object_ids: Sequence[str], origins: Sequence[str], *,
             issuer_email: str | None = None, now: float | None = None) -> str:
    """``https://pay.google.com/gp/v/save/<jwt>`` for objects already inserted (§3.3).

    Build it when the member asks for it (a redirect route), not ahead of time.
    """
    return SAVE_URL_PREFIX + save_jwt(signer, object_ids, origins, issuer_email=issuer_email,
                                      now=now)
