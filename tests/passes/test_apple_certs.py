"""Development certificates, credential loading and the doctor (spec §1.3, §5 pitfalls 1, 3, 35)."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID
from pass_helpers import PASS_TYPE_ID
from pass_helpers import TEAM_ID

from wallet_service.apple import SignerCredentials
from wallet_service.apple import assets as apple_assets
from wallet_service.apple import certificate_identity
from wallet_service.apple.assets import DevCertPaths
from wallet_service.apple.assets import Finding
from wallet_service.apple.assets import check_credentials
from wallet_service.apple.assets import doctor
from wallet_service.apple.assets import has_errors
from wallet_service.apple.signing import PASS_SIGNING_EKU
from wallet_service.apple.signing import PASS_TYPE_ID_EXTENSION
from wallet_service.errors import ConfigurationError


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def findings_by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def make_signed_cert(
    certs: DevCertPaths,
    *,
    days: float,
    pass_type_id: str = PASS_TYPE_ID,
    team: str = TEAM_ID,
    start_days_ago: float = 300,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A pass certificate from the development CA with chosen validity."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = apple_assets.pass_certificate(
        key.public_key(),
        load_cert(certs.wwdr_certificate),
        load_key(certs.wwdr_private_key),
        pass_type_identifier=pass_type_id,
        team_identifier=team,
        not_before=now - dt.timedelta(days=start_days_ago),
        not_after=now + dt.timedelta(days=days),
    )
    return cert, key


def test_dev_pass_certificate_is_shaped_like_apples(dev_certs: DevCertPaths) -> None:
    cert = load_cert(dev_certs.certificate)
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == PASS_TYPE_ID
    assert (
        subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == f"Pass Type ID: {PASS_TYPE_ID}"
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == TEAM_ID
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert PASS_SIGNING_EKU in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    marker = cert.extensions.get_extension_for_oid(PASS_TYPE_ID_EXTENSION).value
    assert marker.value[2:].decode() == PASS_TYPE_ID  # type: ignore[attr-defined]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert certificate_identity(cert) == (PASS_TYPE_ID, TEAM_ID)


def test_dev_wwdr_stands_in_for_g4(dev_certs: DevCertPaths) -> None:
    wwdr = load_cert(dev_certs.wwdr_certificate)
    assert (
        wwdr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == apple_assets.WWDR_COMMON_NAME
    )
    assert wwdr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "G4"
    assert wwdr.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert load_cert(dev_certs.certificate).issuer == wwdr.subject


def test_openssl_accepts_the_dev_chain(dev_certs: DevCertPaths) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(dev_certs.wwdr_certificate),
            str(dev_certs.certificate),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_keys_are_private_and_the_set_is_kept(tmp_path: Path) -> None:
    first = apple_assets.generate_dev_certs(tmp_path, PASS_TYPE_ID, TEAM_ID)
    for key_path in (first.private_key, first.wwdr_private_key):
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    before = first.certificate.read_bytes()
    again = apple_assets.generate_dev_certs(tmp_path, "pass.com.example.other", TEAM_ID)
    assert again == first and first.certificate.read_bytes() == before
    replaced = apple_assets.generate_dev_certs(
        tmp_path, "pass.com.example.other", TEAM_ID, overwrite=True
    )
    assert certificate_identity(load_cert(replaced.certificate))[0] == "pass.com.example.other"
    assert stat.S_IMODE(replaced.private_key.stat().st_mode) == 0o600


def test_good_set_has_no_errors(dev_certs: DevCertPaths) -> None:
    findings = doctor(
        pass_type_identifier=PASS_TYPE_ID,
        team_identifier=TEAM_ID,
        wwdr_cert=dev_certs.wwdr_certificate,
        cert=dev_certs.certificate,
        key=dev_certs.private_key,
    )
    assert not has_errors(findings)
    assert all(f.level == "ok" for f in findings), findings
    assert {
        "private_key",
        "pass_type_identifier",
        "team_identifier",
        "chain",
        "pass certificate expiry",
    } <= {f.check for f in findings}


def test_mismatched_key_is_an_error(dev_certs: DevCertPaths) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    findings = findings_by_check(
        check_credentials(
            certificate=load_cert(dev_certs.certificate),
            private_key=other_key,
            wwdr_certificate=load_cert(dev_certs.wwdr_certificate),
            pass_type_identifier=PASS_TYPE_ID,
            team_identifier=TEAM_ID,
        )
    )
    assert findings["private_key"].level == "error"
    assert "does not belong" in findings["private_key"].message
    assert findings["chain"].level == "ok"


def test_wrong_pass_type_id_and_team_are_errors(dev_certs: DevCertPaths) -> None:
    findings = findings_by_check(
        doctor(
            pass_type_identifier="pass.com.example.other",
            team_identifier="ZZZZZ99999",
            wwdr_cert=dev_certs.wwdr_certificate,
            cert=dev_certs.certificate,
            key=dev_certs.private_key,
        )
    )
    assert findings["pass_type_identifier"].level == "error"
    assert "pass.com.example.other" in findings["pass_type_identifier"].message
    assert findings["pass_type_extension"].level == "error"
    assert findings["team_identifier"].level == "error"
    assert findings["private_key"].level == "ok"


def test_expired_certificate_is_an_error(dev_certs: DevCertPaths) -> None:
    cert, key = make_signed_cert(dev_certs, days=-2)
    findings = findings_by_check(
        check_credentials(
            certificate=cert,
            private_key=key,
            wwdr_certificate=load_cert(dev_certs.wwdr_certificate),
            pass_type_identifier=PASS_TYPE_ID,
            team_identifier=TEAM_ID,
        )
    )
    assert findings["pass certificate expiry"].level == "error"
    assert "expired" in findings["pass certificate expiry"].message


def test_certificate_near_expiry_is_a_warning(dev_certs: DevCertPaths) -> None:
    cert, key = make_signed_cert(dev_certs, days=10.5)
    findings = check_credentials(
        certificate=cert,
        private_key=key,
        wwdr_certificate=load_cert(dev_certs.wwdr_certificate),
        pass_type_identifier=PASS_TYPE_ID,
        team_identifier=TEAM_ID,
    )
    expiry = findings_by_check(findings)["pass certificate expiry"]
    assert expiry.level == "warning" and "expires in 10 days" in expiry.message
    assert not has_errors(findings)


def test_certificate_with_31_days_left_is_fine(dev_certs: DevCertPaths) -> None:
    cert, key = make_signed_cert(dev_certs, days=31.5)
    findings = check_credentials(
        certificate=cert,
        private_key=key,
        wwdr_certificate=load_cert(dev_certs.wwdr_certificate),
        pass_type_identifier=PASS_TYPE_ID,
        team_identifier=TEAM_ID,
    )
    assert findings_by_check(findings)["pass certificate expiry"].level == "ok"


def test_wwdr_with_the_right_name_but_another_key_fails_the_chain(
    dev_certs: DevCertPaths, tmp_path: Path
) -> None:
    impostor = apple_assets.generate_dev_certs(tmp_path, PASS_TYPE_ID, TEAM_ID)
    findings = findings_by_check(
        doctor(
            pass_type_identifier=PASS_TYPE_ID,
            team_identifier=TEAM_ID,
            wwdr_cert=impostor.wwdr_certificate,
            cert=dev_certs.certificate,
            key=dev_certs.private_key,
        )
    )
    assert findings["chain"].level == "error"
    assert "did not sign" in findings["chain"].message


def test_unrelated_intermediate_fails_the_chain(dev_certs: DevCertPaths) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, "Apple Worldwide Developer Relations Certification Authority"
            ),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G3"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    g3 = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=9))
        .sign(key, hashes.SHA256())
    )
    findings = findings_by_check(
        check_credentials(
            certificate=load_cert(dev_certs.certificate),
            private_key=load_key(dev_certs.private_key),
            wwdr_certificate=g3,
            pass_type_identifier=PASS_TYPE_ID,
            team_identifier=TEAM_ID,
        )
    )
    assert findings["chain"].level == "error" and "G4" in findings["chain"].message
    assert findings["wwdr_generation"].level == "warning"
    assert findings["WWDR certificate expiry"].level == "warning"


def test_signer_credentials_refuse_a_foreign_key_or_intermediate(
    dev_certs: DevCertPaths, tmp_path: Path
) -> None:
    cert, wwdr = load_cert(dev_certs.certificate), load_cert(dev_certs.wwdr_certificate)
    with pytest.raises(ConfigurationError, match="does not belong"):
        SignerCredentials(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), cert, wwdr
        )
    with pytest.raises(ConfigurationError, match="not the issuer"):
        SignerCredentials(load_key(dev_certs.private_key), cert, cert)


def test_load_from_p12_with_password_and_der_wwdr(dev_certs: DevCertPaths, tmp_path: Path) -> None:
    cert, key, wwdr = (
        load_cert(dev_certs.certificate),
        load_key(dev_certs.private_key),
        load_cert(dev_certs.wwdr_certificate),
    )
    p12 = tmp_path / "pass.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"pass", key, cert, None, serialization.BestAvailableEncryption(b"s3cret")
        )
    )
    wwdr_der = tmp_path / "AppleWWDRCAG4.cer"
    wwdr_der.write_bytes(wwdr.public_bytes(serialization.Encoding.DER))
    signer = apple_assets.load_signer(p12=p12, password="s3cret", wwdr_cert=wwdr_der)
    assert signer.pass_type_identifier == PASS_TYPE_ID and signer.team_identifier == TEAM_ID
    findings = doctor(
        pass_type_identifier=PASS_TYPE_ID,
        team_identifier=TEAM_ID,
        p12=p12,
        password="wrong",
        wwdr_cert=wwdr_der,
    )
    assert findings[0].level == "error" and "wrong password" in findings[0].message


def test_p12_may_carry_the_intermediate(dev_certs: DevCertPaths, tmp_path: Path) -> None:
    cert, key, wwdr = (
        load_cert(dev_certs.certificate),
        load_key(dev_certs.private_key),
        load_cert(dev_certs.wwdr_certificate),
    )
    p12 = tmp_path / "bundle.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"pass", key, cert, [wwdr], serialization.NoEncryption()
        )
    )
    assert apple_assets.load_signer(p12=p12).wwdr_certificate == wwdr


def test_encrypted_pem_key_needs_its_password(dev_certs: DevCertPaths, tmp_path: Path) -> None:
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(
        load_key(dev_certs.private_key).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    signer = apple_assets.load_signer(
        cert=dev_certs.certificate,
        key=key_path,
        password="pw",
        wwdr_cert=dev_certs.wwdr_certificate,
    )
    assert signer.pass_type_identifier == PASS_TYPE_ID
    with pytest.raises(ConfigurationError, match="password"):
        apple_assets.load_signer(
            cert=dev_certs.certificate, key=key_path, wwdr_cert=dev_certs.wwdr_certificate
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a .p12 file"),
        (
            {"cert": "missing-cert.pem", "key": "missing-key.pem", "wwdr_cert": "missing.pem"},
            "cannot read",
        ),
    ],
)
def test_missing_files_are_reported(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        apple_assets.load_signer(**kwargs)  # type: ignore[arg-type]
    findings = doctor(pass_type_identifier=PASS_TYPE_ID, team_identifier=TEAM_ID, **kwargs)  # type: ignore[arg-type]
    assert [f.level for f in findings] == ["error"]
