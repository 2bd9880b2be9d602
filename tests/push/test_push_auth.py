"""APNs credentials: certificate identity checks and the ES256 provider token (spec §4.2)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from apns_standin import StandInCertificates
from apns_standin import make_certificates
from apns_standin import make_p8_key
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from push_helpers import TOPIC

from wallet_service.errors import ConfigurationError
from wallet_service.push import ApnsPushClient
from wallet_service.push import CertificateAuth
from wallet_service.push import TokenAuth


def _decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_jwt_is_es256_with_raw_signature_and_verifies() -> None:
    pem, public_key = make_p8_key()
    auth = TokenAuth(key_id="KEY1234567", team_id="TEAM123456", private_key=pem,
                     clock=Clock(1_700_000_000.7))
    scheme, jwt = auth.authorization().split(" ")
    assert scheme == "bearer"
    header_b64, claims_b64, signature_b64 = jwt.split(".")
    assert "=" not in jwt
    assert json.loads(_decode(header_b64)) == {"alg": "ES256", "kid": "KEY1234567"}
    assert json.loads(_decode(claims_b64)) == {"iss": "TEAM123456", "iat": 1_700_000_000}
    signature = _decode(signature_b64)
    assert len(signature) == 64  # r||s, not DER
    public_key.verify(
        encode_dss_signature(int.from_bytes(signature[:32], "big"),
                             int.from_bytes(signature[32:], "big")),
        f"{header_b64}.{claims_b64}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )


def test_jwt_is_cached_then_refreshed_and_can_be_invalidated() -> None:
    pem, _ = make_p8_key()
    clock = Clock(1_000_000.0)
    auth = TokenAuth(key_id="K", team_id="T", private_key=pem, refresh_after=40 * 60,
                     clock=clock)
    first = auth.authorization()
    clock.now += 39 * 60
    assert auth.authorization() == first
    clock.now += 2 * 60
    second = auth.authorization()
    assert second != first
    assert auth.authorization() == second
    auth.invalidate()
    assert auth.authorization() != second


def test_token_auth_reads_a_p8_file(tmp_path: Path) -> None:
    pem, _ = make_p8_key()
    path = tmp_path / "AuthKey_K.p8"
    path.write_bytes(pem)
    assert TokenAuth(key_id="K", team_id="T", private_key=path).authorization()
    assert TokenAuth(key_id="K", team_id="T", private_key=str(path)).authorization()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_id": "", "team_id": "T"},
        {"key_id": "K", "team_id": ""},
        {"key_id": "K", "team_id": "T", "refresh_after": 60},
        {"key_id": "K", "team_id": "T", "refresh_after": 2 * 3600},
    ],
)
def test_token_auth_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    pem, _ = make_p8_key()
    with pytest.raises(ConfigurationError):
        TokenAuth(private_key=pem, **kwargs)  # type: ignore[arg-type]


def test_token_auth_rejects_a_key_that_is_not_p256(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        TokenAuth(key_id="K", team_id="T", private_key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigurationError):
        TokenAuth(key_id="K", team_id="T", private_key=b"not a key")
    with pytest.raises(ConfigurationError):
        TokenAuth(key_id="K", team_id="T", private_key=tmp_path / "missing.p8")


def test_certificate_auth_accepts_bytes_paths_and_encrypted_keys(tmp_path: Path) -> None:
    protected = make_certificates(tmp_path, key_password=b"s3cret")
    assert CertificateAuth(certificate=protected.client_cert_pem,
                           private_key=protected.client_key_pem, password="s3cret")
    auth = CertificateAuth(certificate=protected.client_cert, private_key=protected.client_key,
                           password=b"s3cret")
    assert auth.subject == protected.client_subject
    assert "s3cret" not in repr(auth) and "PRIVATE" not in repr(auth)
    with pytest.raises(ConfigurationError, match="password"):
        CertificateAuth(certificate=protected.client_cert, private_key=protected.client_key,
                        password="wrong")


def test_certificate_auth_rejects_a_key_of_another_certificate(
    certs: StandInCertificates, other_certs: StandInCertificates
) -> None:
    with pytest.raises(ConfigurationError, match="does not belong"):
        CertificateAuth(certificate=certs.client_cert, private_key=other_certs.client_key)
    with pytest.raises(ConfigurationError):
        CertificateAuth(certificate=b"garbage", private_key=certs.client_key)
    with pytest.raises(ConfigurationError):
        CertificateAuth(certificate=certs.folder / "missing.pem", private_key=certs.client_key)


def test_client_identity_file_is_removed_after_loading(
    certs: StandInCertificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    ApnsPushClient(topic=TOPIC, ca_file=certs.ca_file,
                   auth=CertificateAuth(certificate=certs.client_cert,
                                        private_key=certs.client_key)).close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"topic": ""},
        {"topic": "pass.com.exämple"},
        {"base_url": "http://127.0.0.1:1"},
        {"base_url": "https://127.0.0.1:1/3/device"},
        {"expiration": 0},
        {"timeout": 0},
        {"connect_timeout": -1},
        {"max_streams": 0},
        {"ca_file": "/nonexistent/ca.pem"},
    ],
)
def test_client_rejects_bad_configuration(certs: StandInCertificates,
                                          kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {
        "topic": TOPIC,
        "auth": CertificateAuth(certificate=certs.client_cert, private_key=certs.client_key),
    }
    options.update(kwargs)
    with pytest.raises(ConfigurationError):
        ApnsPushClient(**options)  # type: ignore[arg-type]
