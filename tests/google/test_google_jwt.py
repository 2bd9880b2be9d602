"""The skinny save JWT and link (spec §3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.auth import crypt
from google_helpers import CARD
from google_helpers import ISSUER
from google_standin import make_service_account_info

from wallet_service.google import MAX_SAVE_JWT_LENGTH
from wallet_service.google import SAVE_URL_PREFIX
from wallet_service.google import load_credentials
from wallet_service.google import object_id
from wallet_service.google import save_jwt
from wallet_service.google import save_url

ORIGINS = ["https://cards.example.com"]
LONG_EMAIL = ("wallet-service-production-signer"
              "@a-rather-long-project-id-123456.iam.gserviceaccount.com")


@pytest.fixture(scope="module")
def key() -> tuple[dict[str, object], bytes]:
    return make_service_account_info("https://oauth2.googleapis.com/token", email=LONG_EMAIL)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _header(token: str) -> dict[str, object]:
    return json.loads(_b64(token.split(".")[0]))


def _verified_claims(token: str, public_pem: bytes) -> dict[str, Any]:
    """RS256 check of ``header.payload`` (the save JWT has no ``exp``, so google-auth's
    ``jwt.decode`` would refuse it on that alone)."""
    signed, _, signature = token.rpartition(".")
    if not crypt.RSAVerifier.from_string(public_pem).verify(signed.encode(), _b64(signature)):
        raise ValueError("signature does not verify")
    claims: dict[str, Any] = json.loads(_b64(signed.split(".")[1]))
    return claims


def test_save_url_verifies_with_the_public_key_and_has_the_right_claims(
        key: tuple[dict[str, object], bytes]) -> None:
    info, public_pem = key
    oid = object_id(ISSUER, CARD.serial)
    url = save_url(load_credentials(info), [oid], ORIGINS, now=1_800_000_000)
    assert url.startswith(SAVE_URL_PREFIX)
    token = url[len(SAVE_URL_PREFIX):]
    claims = _verified_claims(token, public_pem)
    assert claims == {"iss": LONG_EMAIL, "aud": "google", "typ": "savetowallet",
                      "iat": 1_800_000_000, "origins": ORIGINS,
                      "payload": {"loyaltyObjects": [{"id": oid}]}}
    assert _header(token) == {"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}
    assert len(token) < MAX_SAVE_JWT_LENGTH - 800      # well under the limit (about 850)
    assert CARD.serial not in url and "Анна" not in url


def test_a_different_key_does_not_verify(key: tuple[dict[str, object], bytes]) -> None:
    info, public_pem = key
    _, other_public = make_service_account_info("https://oauth2.googleapis.com/token")
    token = save_jwt(load_credentials(info), [f"{ISSUER}.card-1"], ORIGINS)
    with pytest.raises(ValueError, match="does not verify"):
        _verified_claims(token, other_public)
    tampered = token.replace(token.split(".")[1], token.split(".")[1][:-2] + "AA")
    with pytest.raises(ValueError, match="does not verify"):
        _verified_claims(tampered, public_pem)


def test_iat_defaults_to_now_and_bare_signer_needs_the_email(
        key: tuple[dict[str, object], bytes]) -> None:
    info, public_pem = key
    credentials = load_credentials(info)
    token = save_jwt(credentials.signer, [f"{ISSUER}.card-1", f"{ISSUER}.card-2"], [],
                     issuer_email="other@example.iam.gserviceaccount.com")
    claims = _verified_claims(token, public_pem)
    assert claims["iss"] == "other@example.iam.gserviceaccount.com"
    assert isinstance(claims["iat"], int)
    assert len(claims["payload"]["loyaltyObjects"]) == 2
    with pytest.raises(ValueError, match="issuer_email"):
        save_jwt(credentials.signer, [f"{ISSUER}.card-1"], ORIGINS)
    with pytest.raises(ValueError, match="at least one object"):
        save_jwt(credentials, [], ORIGINS)


def test_links_that_would_be_too_long_are_refused(key: tuple[dict[str, object], bytes]) -> None:
    info, _ = key
    with pytest.raises(ValueError, match="over 1800"):
        save_jwt(load_credentials(info), [f"{ISSUER}.card-{i:032d}" for i in range(30)], ORIGINS)
