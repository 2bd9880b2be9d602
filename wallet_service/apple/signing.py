"""The pass signature: a detached CMS SignedData over ``manifest.json`` (§1.3).

Built with ``cryptography``'s ``PKCS7SignatureBuilder``: SHA-256 digest, DER output,
``DetachedSignature`` and ``Binary`` (no newline conversion), the default signed attributes
(contentType, signingTime, messageDigest, SMIMECapabilities) and exactly two certificates,
the signer and the WWDR intermediate. This is the only module that does cryptography for
passes; keys are loaded by ``wallet_service.apple.assets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ..errors import ConfigurationError

#: Apple's extension carrying the pass type identifier in a Pass Type ID certificate (§1.3).
PASS_TYPE_ID_EXTENSION = x509.ObjectIdentifier("1.2.840.113635.100.6.1.16")
#: Apple's extended key usage for pass signing (§1.3).
PASS_SIGNING_EKU = x509.ObjectIdentifier("1.2.840.113635.100.4.14")

_CN_PREFIXES = ("Pass Type ID with NFC: ", "Pass Type ID: ")
_SIGN_OPTIONS = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, eq=False)
class SignerCredentials:
    """The Pass Type ID private key and certificate, and the WWDR G4 intermediate.

    Load once per process (``wallet_service.apple.assets.load_signer``). On creation the key
    must match the certificate and the intermediate's subject must equal the certificate's
    issuer (§1.3, "fail at startup if they differ"). ``pass_type_identifier`` and
    ``team_identifier`` are read from the certificate (``None`` if it does not carry them).

    :raises ConfigurationError: the three do not belong together.
    """

    private_key: SigningKey
    certificate: x509.Certificate
    wwdr_certificate: x509.Certificate
    pass_type_identifier: str | None = field(init=False)
    team_identifier: str | None = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the pass signing key must be an RSA or EC private key")
        if not key_matches_certificate(self.private_key, self.certificate):
            raise ConfigurationError("the pass signing key does not belong to the pass certificate")
        if self.wwdr_certificate.subject != self.certificate.issuer:
            raise ConfigurationError(
                "the WWDR certificate is not the issuer of the pass certificate: expected "
                f"{self.certificate.issuer.rfc4514_string()}, got "
                f"{self.wwdr_certificate.subject.rfc4514_string()} (use WWDR G4, §1.3)"
            )
        pass_type_id, team_id = certificate_identity(self.certificate)
        object.__setattr__(self, "pass_type_identifier", pass_type_id)
        object.__setattr__(self, "team_identifier", team_id)


def sign_manifest(manifest: bytes, signer: SignerCredentials) -> bytes:
    """Return the DER ``signature`` file: detached CMS over ``manifest`` (§1.3).

    Builder order matters: certificates added before ``set_data``/``add_signer`` are dropped,
    so the WWDR certificate is added last (§1.3, Python specifics 2).
    """
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(signer.certificate, signer.private_key, hashes.SHA256())
        .add_certificate(signer.wwdr_certificate)
        .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
    )


def key_matches_certificate(private_key: SigningKey, certificate: x509.Certificate) -> bool:
    """Whether ``private_key`` is the key of ``certificate``."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = private_key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
    return mine == theirs


def certificate_identity(certificate: x509.Certificate) -> tuple[str | None, str | None]:
    """Return (pass type identifier, team identifier) named by a Pass Type ID certificate.

    The identifier is the Subject UID, else the CN without its ``Pass Type ID:`` prefix; the
    team is the Subject OU (§1.3, certificate anatomy).
    """
    subject = certificate.subject
    uid = _attribute(subject, NameOID.USER_ID)
    if uid is None:
        common_name = _attribute(subject, NameOID.COMMON_NAME) or ""
        for prefix in _CN_PREFIXES:
            if common_name.startswith(prefix):
                uid = common_name[len(prefix) :]
                break
    return uid, _attribute(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode()
