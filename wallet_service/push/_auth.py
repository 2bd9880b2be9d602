"""Credentials for APNs: the pass certificate as a TLS client certificate, or a .p8 key (§4.2).

``CertificateAuth`` is Apple's documented method for pass pushes: the Pass Type ID
certificate and key that sign the passes are the TLS client identity. ``TokenAuth`` signs a
provider JWT (ES256) with a .p8 key of the same team; the JWT is cached and re-minted after
``refresh_after`` seconds (APNs: not more often than every 20 minutes, at least every 60).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..errors import ConfigurationError

#: PEM text, or the path of a PEM file.
PemSource = bytes | str | os.PathLike[str]
ClientKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Bounds APNs puts on provider-token age (§4.4: "refresh at most every 20 min, at least every
#: 60 min"); a JWT older than an hour is rejected with 403 ExpiredProviderToken.
MIN_TOKEN_REFRESH = 20 * 60
MAX_TOKEN_REFRESH = 60 * 60


def _read(source: PemSource, what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the {what} file {os.fspath(source)!r}: {exc}"
        ) from exc


def _password_bytes(password: bytes | str | None) -> bytes | None:
    return password.encode() if isinstance(password, str) else password


@dataclass(frozen=True, eq=False)
class CertificateAuth:
    """TLS client certificate authentication with the Pass Type ID certificate (§4.2).

    ``certificate`` is the PEM certificate (optionally followed by intermediates) or its path,
    or a loaded ``x509.Certificate``; ``private_key`` is the PEM key or its path, or a loaded
    RSA/EC key; ``password`` decrypts an encrypted PEM key. Everything is checked on creation.

    :raises ConfigurationError: a file is unreadable, the key cannot be decrypted, or the key
        does not belong to the certificate.
    """

    certificate: PemSource | x509.Certificate
    private_key: PemSource | ClientKey = field(repr=False)
    password: bytes | str | None = field(default=None, repr=False)
    _chain: list[x509.Certificate] = field(init=False, repr=False)
    _key: ClientKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.certificate, x509.Certificate):
            chain = [self.certificate]
        else:
            try:
                chain = x509.load_pem_x509_certificates(_read(self.certificate, "certificate"))
            except ValueError as exc:
                raise ConfigurationError(
                    "the APNs client certificate is not a PEM certificate (§4.2)"
                ) from exc
        if isinstance(self.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            key: object = self.private_key
        else:
            try:
                key = serialization.load_pem_private_key(
                    _read(self.private_key, "private key"), _password_bytes(self.password)
                )
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                # The message of these errors never contains key material.
                raise ConfigurationError(
                    f"cannot load the APNs client private key (wrong password?): {exc}"
                ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the APNs client key must be an RSA or EC private key")
        if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
            raise ConfigurationError(
                "the APNs client key does not belong to the certificate (§4.2: push with the "
                "certificate and key that sign the passes)"
            )
        object.__setattr__(self, "_chain", chain)
        object.__setattr__(self, "_key", key)

    @property
    def subject(self) -> str:
        """The certificate subject, for logs."""
        return self._chain[0].subject.rfc4514_string()

    def load_into(self, context: ssl.SSLContext) -> None:
        """Install the certificate and key as the client identity of ``context``.

        ``ssl`` reads identities only from files, so the key is written to a private temporary
        file re-encrypted under a random one-time password, loaded, and the file removed: the
        plain key never touches the disk.
        """
        one_time = secrets.token_bytes(32)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self._chain)
        pem += self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time),
        )
        fd, name = tempfile.mkstemp(prefix="apns-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            context.load_cert_chain(name, password=one_time)
        except ssl.SSLError as exc:
            raise ConfigurationError(f"TLS rejected the APNs client identity: {exc}") from exc
        finally:
            os.unlink(name)


@dataclass(eq=False)
class TokenAuth:
    """Provider-token (JWT, ES256) authentication with a .p8 key of the same team (§4.2).

    ``private_key`` is the .p8 file's PEM text or path (or a loaded P-256 key). The JWT
    (header ``{"alg": "ES256", "kid": key_id}``, claims ``{"iss": team_id, "iat": now}``) is
    minted on first use and re-minted after ``refresh_after`` seconds or after APNs answers
    ``ExpiredProviderToken``. ``clock`` is injectable for tests. Thread-safe.

    :raises ConfigurationError: the key is unreadable or not a P-256 EC key, an identifier is
        empty, or ``refresh_after`` is outside 20–60 minutes.
    """

    key_id: str
    team_id: str
    private_key: PemSource | ec.EllipticCurvePrivateKey = field(repr=False)
    refresh_after: float = 40 * 60
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _key: ec.EllipticCurvePrivateKey = field(init=False, repr=False)
    _cached: tuple[float, str] | None = field(init=False, default=None, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.key_id or not self.team_id:
            raise ConfigurationError("token auth needs both the APNs key id and the team id")
        if not MIN_TOKEN_REFRESH <= self.refresh_after <= MAX_TOKEN_REFRESH:
            raise ConfigurationError(
                f"refresh_after must be between {MIN_TOKEN_REFRESH} and {MAX_TOKEN_REFRESH} "
                f"seconds (§4.4), got {self.refresh_after}"
            )
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            key: object = self.private_key
        else:
            try:
                key = serialization.load_pem_private_key(_read(self.private_key, ".p8 key"), None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ConfigurationError(f"cannot load the APNs .p8 key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigurationError("the APNs .p8 key must be a P-256 (ES256) EC key")
        self._key = key

    def authorization(self) -> str:
        """The ``authorization`` header value, ``bearer <jwt>``, from cache when fresh."""
        now = self.clock()
        with self._lock:
            cached = self._cached
            if cached is None or now - cached[0] >= self.refresh_after or now < cached[0]:
                cached = (now, "bearer " + self._mint(int(now)))
                self._cached = cached
            return cached[1]

    def invalidate(self) -> None:
        """Forget the cached JWT (APNs answered 403 ExpiredProviderToken)."""
        with self._lock:
            self._cached = None

    def _mint(self, issued_at: int) -> str:
        header = _b64(json.dumps({"alg": "ES256", "kid": self.key_id}, separators=(",", ":")))
        claims = _b64(json.dumps({"iss": self.team_id, "iat": issued_at}, separators=(",", ":")))
        signing_input = f"{header}.{claims}".encode("ascii")
        der = self._key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        # JWS wants the raw 64-byte r||s, not the DER that cryptography returns (§4.5).
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{header}.{claims}.{_b64(signature)}"


Auth = CertificateAuth | TokenAuth


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public_der(key: object) -> bytes:
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tls_context(auth: Auth, ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """The client ``SSLContext`` for APNs: TLS 1.2+, ALPN ``h2``, server verification (§4.1).

    ``ca_file`` replaces the system trust store with a CA bundle file.

    :raises ConfigurationError: the CA bundle or the client identity cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    if ca_file is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        try:
            context.load_verify_locations(cafile=os.fspath(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the APNs CA bundle {os.fspath(ca_file)!r}: {exc}"
            ) from exc
    if isinstance(auth, CertificateAuth):
        auth.load_into(context)
    return context
