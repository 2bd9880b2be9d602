"""Apple Wallet files on disk: pass templates, signing credentials, development certificates.

This is the one module of :mod:`wallet_service.apple` that does I/O; the rest stays pure:

- :func:`load_template` reads ``pass_templates/<name>/`` once per process.
- :func:`load_signer` reads a Pass Type ID certificate and key (``.p12``, or PEM files) and the
  WWDR G4 intermediate, and returns :class:`~wallet_service.apple.SignerCredentials`.
- :func:`generate_dev_certs` writes a throwaway CA and pass certificate for development.
- :func:`doctor` / :func:`check_credentials` explain what is wrong with a certificate set.

Section numbers (§) refer to the Apple Wallet spec the service implements.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

from ..errors import ConfigurationError
from ..errors import InvalidInput
from ..resources import pass_templates_dir
from .model import IMAGE_FILENAMES
from .model import PassTemplate
from .model import TemplateFile
from .signing import PASS_SIGNING_EKU
from .signing import PASS_TYPE_ID_EXTENSION
from .signing import SignerCredentials
from .signing import certificate_identity
from .signing import key_matches_certificate
from .strings import decode_strings

#: The built-in templates shipped with the service.
TEMPLATES_DIR = pass_templates_dir()

WWDR_COMMON_NAME = "Apple Worldwide Developer Relations Certification Authority"
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_EXPIRY_WARNING_DAYS = 30


# --------------------------------------------------------------------------- templates


def list_templates(root: Path | None = None) -> list[str]:
    """Names of the templates under ``root`` (default :data:`TEMPLATES_DIR`)."""
    base = root or TEMPLATES_DIR
    return sorted(p.name for p in base.iterdir() if (p / "pass.json").is_file())


def load_template(name: str, root: Path | None = None) -> PassTemplate:
    """Read a template directory once per process; later calls return the same object.

    :raises InvalidInput: no template of that name (``field="template"``).
    :raises ConfigurationError: the template files are broken.
    """
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a template name", field="template")
    return _load_template(name, (root or TEMPLATES_DIR).resolve())


@lru_cache(maxsize=32)
def _load_template(name: str, root: Path) -> PassTemplate:
    directory = root / name
    if not (directory / "pass.json").is_file():
        available = ", ".join(list_templates(root))
        raise InvalidInput(f"no template {name!r}; available: {available}", field="template")
    try:
        pass_json = json.loads((directory / "pass.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigurationError(f"template {name!r}: pass.json is not valid JSON: {exc}") from exc
    images = {
        p.name: TemplateFile(p.read_bytes())
        for p in sorted(directory.glob("*.png"))
        if p.name in IMAGE_FILENAMES
    }
    strings = {}
    for strings_file in sorted(directory.glob("*.lproj/pass.strings")):
        language = strings_file.parent.name.removesuffix(".lproj")
        try:
            strings[language] = decode_strings(strings_file.read_bytes())
        except InvalidInput as exc:
            raise ConfigurationError(f"template {name!r}, {language}: {exc.message}") from exc
    return PassTemplate(name=name, pass_json=pass_json, images=images, strings=strings)


# --------------------------------------------------------------------------- credentials


def load_signer(
    *,
    wwdr_cert: Path | str | None = None,
    p12: Path | str | None = None,
    cert: Path | str | None = None,
    key: Path | str | None = None,
    password: str | bytes | None = None,
) -> SignerCredentials:
    """Load the signing credentials from a ``.p12`` or PEM certificate + key, plus WWDR G4.

    ``password`` opens the ``.p12`` or the encrypted PEM key. ``wwdr_cert`` (PEM or DER) may
    be omitted when the ``.p12`` already holds the issuing intermediate.

    :raises ConfigurationError: a file is missing or unreadable, the password is wrong, or the
        files do not belong together.
    """
    certificate, private_key, wwdr = load_credential_parts(
        wwdr_cert=wwdr_cert, p12=p12, cert=cert, key=key, password=password
    )
    return SignerCredentials(
        private_key=private_key, certificate=certificate, wwdr_certificate=wwdr
    )


def load_credential_parts(
    *,
    wwdr_cert: Path | str | None = None,
    p12: Path | str | None = None,
    cert: Path | str | None = None,
    key: Path | str | None = None,
    password: str | bytes | None = None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Read (certificate, private key, WWDR certificate) without checking they match.

    :raises ConfigurationError: a file is missing, unreadable, or the password is wrong.
    """
    secret = password.encode() if isinstance(password, str) else password
    extra: list[x509.Certificate] = []
    if p12 is not None:
        if cert is not None or key is not None:
            raise ConfigurationError(
                "give either a .p12 file or a PEM certificate and key, not both"
            )
        try:
            loaded_key, certificate, extra = pkcs12.load_key_and_certificates(_read(p12), secret)
        except ValueError as exc:
            raise ConfigurationError(
                f"cannot open {Path(p12).name}: wrong password or not a PKCS #12 file"
            ) from exc
        if certificate is None or loaded_key is None:
            raise ConfigurationError(
                f"{Path(p12).name} must hold a certificate and its private key"
            )
    elif cert is not None and key is not None:
        certificate = _load_certificate(cert)
        try:
            loaded_key = serialization.load_pem_private_key(_read(key), secret)
        except TypeError as exc:
            raise ConfigurationError(
                f"{Path(key).name}: the key is encrypted and needs a password, or is not "
                "encrypted and must not get one"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                f"cannot read the private key {Path(key).name}: wrong password or not a PEM key"
            ) from exc
    else:
        raise ConfigurationError("give a .p12 file, or a PEM certificate and its key")
    if not isinstance(loaded_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigurationError("the pass signing key must be an RSA or EC key")
    if wwdr_cert is not None:
        wwdr = _load_certificate(wwdr_cert)
    else:
        issuers = [c for c in extra if c.subject == certificate.issuer]
        if not issuers:
            raise ConfigurationError("give the WWDR G4 intermediate certificate (§1.3)")
        wwdr = issuers[0]
    return certificate, loaded_key, wwdr


def _read(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc


def _load_certificate(path: Path | str) -> x509.Certificate:
    """A certificate in PEM or DER (Apple's downloads are DER ``.cer`` files)."""
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ConfigurationError(f"{Path(path).name} is not a PEM or DER certificate") from exc


# --------------------------------------------------------------------------- development set


@dataclass(frozen=True)
class DevCertPaths:
    """Files written by :func:`generate_dev_certs`."""

    certificate: Path
    private_key: Path
    wwdr_certificate: Path
    wwdr_private_key: Path


def generate_dev_certs(
    out_dir: Path | str,
    pass_type_identifier: str,
    team_identifier: str,
    *,
    overwrite: bool = False,
    valid_days: int = 365,
    organization: str = "Wallet Service Development",
    now: dt.datetime | None = None,
) -> DevCertPaths:
    """Write a development CA (a stand-in for WWDR G4) and a pass certificate shaped like Apple's.

    Passes signed with it verify with ``openssl cms -verify -CAfile wwdr.pem -purpose any`` but
    do not install on an iPhone, which trusts only Apple's root. Keys are written with mode
    0600. An existing set is kept (and returned) unless ``overwrite`` is true.
    """
    directory = Path(out_dir)
    paths = DevCertPaths(
        certificate=directory / "pass-cert.pem",
        private_key=directory / "pass-key.pem",
        wwdr_certificate=directory / "wwdr.pem",
        wwdr_private_key=directory / "wwdr-key.pem",
    )
    everything = (
        paths.certificate,
        paths.private_key,
        paths.wwdr_certificate,
        paths.wwdr_private_key,
    )
    if not overwrite and all(p.exists() for p in everything):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = _dev_wwdr_certificate(ca_key, start)
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pass_cert = pass_certificate(
        pass_key.public_key(),
        ca_cert,
        ca_key,
        pass_type_identifier=pass_type_identifier,
        team_identifier=team_identifier,
        organization=organization,
        not_before=start,
        not_after=start + dt.timedelta(days=valid_days),
    )
    _write_key(paths.wwdr_private_key, ca_key)
    _write_key(paths.private_key, pass_key)
    paths.wwdr_certificate.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.certificate.write_bytes(pass_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _dev_wwdr_certificate(key: rsa.RSAPrivateKey, start: dt.datetime) -> x509.Certificate:
    """A self-signed CA with WWDR G4's subject, so issuer checks behave as with Apple's."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, WWDR_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def pass_certificate(
    public_key: rsa.RSAPublicKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    *,
    pass_type_identifier: str,
    team_identifier: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    organization: str = "Wallet Service Development",
) -> x509.Certificate:
    """A certificate shaped like Apple's Pass Type ID certificate (§1.3, certificate anatomy).

    Subject ``UID=<pass type id>, CN=Pass Type ID: <pass type id>, OU=<team id>, O, C``;
    extended key usage pass signing (1.2.840.113635.100.4.14) and TLS client (APNs); the
    pass-type marker extension 1.2.840.113635.100.6.1.16 holding the identifier.
    """
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_identifier),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_identifier}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_identifier),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    marker = pass_type_identifier.encode()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([PASS_SIGNING_EKU, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            # DER UTF8String holding the identifier, as in Apple's certificates.
            x509.UnrecognizedExtension(
                PASS_TYPE_ID_EXTENSION, b"\x0c" + bytes([len(marker)]) + marker
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # also when the file existed with wider permissions


# --------------------------------------------------------------------------- doctor

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One result of :func:`doctor`: ``check`` names it, ``message`` explains it plainly."""

    level: Level
    check: str
    message: str


def doctor(
    *,
    pass_type_identifier: str,
    team_identifier: str,
    wwdr_cert: Path | str | None = None,
    p12: Path | str | None = None,
    cert: Path | str | None = None,
    key: Path | str | None = None,
    password: str | bytes | None = None,
    now: dt.datetime | None = None,
) -> list[Finding]:
    """Load the configured files and check them; a file that cannot be read is an error finding."""
    try:
        certificate, private_key, wwdr = load_credential_parts(
            wwdr_cert=wwdr_cert, p12=p12, cert=cert, key=key, password=password
        )
    except ConfigurationError as exc:
        return [Finding("error", "files", exc.message)]
    return [
        Finding("ok", "files", "the certificate, key and WWDR files were read")
    ] + check_credentials(
        certificate=certificate,
        private_key=private_key,
        wwdr_certificate=wwdr,
        pass_type_identifier=pass_type_identifier,
        team_identifier=team_identifier,
        now=now,
    )


def check_credentials(
    *,
    certificate: x509.Certificate,
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    wwdr_certificate: x509.Certificate,
    pass_type_identifier: str,
    team_identifier: str,
    now: dt.datetime | None = None,
) -> list[Finding]:
    """Check a certificate set against the configured identifiers (§1.3, §5 pitfalls 1, 3, 35).

    Checks: the key matches the certificate; the pass type and team identifiers match; the
    certificate chains to the given WWDR certificate (issuer name and signature); the WWDR
    certificate is G4; days left before either certificate expires.
    """
    moment = now or dt.datetime.now(dt.UTC)
    return [
        _check_key(certificate, private_key),
        *_check_identity(certificate, pass_type_identifier, team_identifier),
        _check_chain(certificate, wwdr_certificate),
        _check_wwdr_generation(wwdr_certificate),
        _check_expiry("pass certificate", certificate, moment),
        _check_expiry("WWDR certificate", wwdr_certificate, moment),
    ]


def expiry_findings(certificate: x509.Certificate, wwdr_certificate: x509.Certificate,
                    now: dt.datetime | None = None) -> list[Finding]:
    """Days left before the pass certificate and the WWDR certificate expire: a warning
    within 30 days, an error once expired (docs/certificates.md)."""
    moment = now or dt.datetime.now(dt.UTC)
    return [_check_expiry("pass certificate", certificate, moment),
            _check_expiry("WWDR certificate", wwdr_certificate, moment)]


def has_errors(findings: list[Finding]) -> bool:
    """Whether any finding is an error."""
    return any(f.level == "error" for f in findings)


def _check_key(
    certificate: x509.Certificate, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> Finding:
    if key_matches_certificate(private_key, certificate):
        return Finding("ok", "private_key", "the private key belongs to the pass certificate")
    return Finding(
        "error",
        "private_key",
        "the private key does not belong to the pass certificate; export the key that was "
        "used for the certificate signing request, or make a new certificate",
    )


def _check_identity(
    certificate: x509.Certificate, pass_type_id: str, team_id: str
) -> list[Finding]:
    cert_pass_type_id, cert_team_id = certificate_identity(certificate)
    findings = []
    if cert_pass_type_id == pass_type_id:
        findings.append(
            Finding("ok", "pass_type_identifier", f"the certificate is for {pass_type_id}")
        )
    else:
        findings.append(
            Finding(
                "error",
                "pass_type_identifier",
                f"the certificate is for {cert_pass_type_id!r}, but WALLET_APPLE_PASS_TYPE_ID is "
                f"{pass_type_id!r}; passes would not install",
            )
        )
    marker = _marker_extension(certificate)
    if marker is not None and marker != pass_type_id:
        findings.append(
            Finding(
                "error",
                "pass_type_extension",
                f"the certificate's pass type extension names {marker!r}, not {pass_type_id!r}",
            )
        )
    if cert_team_id == team_id:
        findings.append(
            Finding("ok", "team_identifier", f"the certificate belongs to team {team_id}")
        )
    else:
        findings.append(
            Finding(
                "error",
                "team_identifier",
                f"the certificate belongs to team {cert_team_id!r}, but WALLET_APPLE_TEAM_ID is "
                f"{team_id!r}; passes would not install",
            )
        )
    return findings


def _marker_extension(certificate: x509.Certificate) -> str | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(PASS_TYPE_ID_EXTENSION)
    except x509.ExtensionNotFound:
        return None
    raw = getattr(extension.value, "value", b"")
    return raw[2:].decode("utf-8", "replace") if len(raw) > 2 else None


def _check_chain(certificate: x509.Certificate, wwdr: x509.Certificate) -> Finding:
    if certificate.issuer != wwdr.subject:
        return Finding(
            "error",
            "chain",
            f"the pass certificate was issued by {certificate.issuer.rfc4514_string()}, not by "
            f"the given WWDR certificate ({wwdr.subject.rfc4514_string()}); download the "
            "matching intermediate (G4) from Apple",
        )
    try:
        public_key = wwdr.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                certificate.signature_hash_algorithm,  # type: ignore[arg-type]
            )
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                ec.ECDSA(certificate.signature_hash_algorithm),  # type: ignore[arg-type]
            )
        else:
            return Finding("warning", "chain", "cannot check the WWDR signature: unusual key type")
    except InvalidSignature:
        return Finding(
            "error",
            "chain",
            "the WWDR certificate has the right name but did not sign the pass certificate; "
            "it is a different certificate with the same name",
        )
    return Finding("ok", "chain", "the pass certificate was signed by the given WWDR certificate")


def _check_wwdr_generation(wwdr: x509.Certificate) -> Finding:
    units = [a.value for a in wwdr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if "G4" in units:
        return Finding("ok", "wwdr_generation", "the intermediate is WWDR G4")
    return Finding(
        "warning",
        "wwdr_generation",
        f"the intermediate is not WWDR G4 (OU {units or 'missing'}); Pass Type ID "
        "certificates issued since 2022 chain to G4",
    )


def _check_expiry(what: str, certificate: x509.Certificate, moment: dt.datetime) -> Finding:
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    if moment < not_before:
        return Finding(
            "error", f"{what} validity", f"the {what} is not valid before {not_before:%Y-%m-%d}"
        )
    days_left = (not_after - moment).days
    check = f"{what} expiry"
    if moment >= not_after:
        return Finding(
            "error",
            check,
            f"the {what} expired on {not_after:%Y-%m-%d}; new passes will not install and "
            "updates fail until it is renewed (keep the same pass type identifier)",
        )
    if days_left < _EXPIRY_WARNING_DAYS:
        return Finding(
            "warning",
            check,
            f"the {what} expires in {days_left} days, on {not_after:%Y-%m-%d}; renew it soon "
            "with the same pass type identifier",
        )
    return Finding(
        "ok", check, f"the {what} is valid for {days_left} more days (until {not_after:%Y-%m-%d})"
    )
