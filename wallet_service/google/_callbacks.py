"""Save/delete callbacks from Google: ECv2SigningOnly verification (spec §4).

Google signs each callback in two steps (§4.3): a Google *root* key signs an *intermediate*
signing key (with an expiry), and the intermediate key signs the message for one recipient,
the issuer. ``verify_callback`` checks both signatures with ``cryptography`` (ECDSA P-256,
SHA-256, DER signatures), the protocol version, the key's and the message's expiry, and that
the message was meant for this issuer. Only then is ``signedMessage`` trusted and returned as
a ``CallbackEvent``. Duplicate deliveries happen: de-duplicate on ``CallbackEvent.nonce``.

``GoogleRootKeys`` fetches the root keys from Google's key URL and caches them (§4.3 step 2);
while the URL cannot be reached it remembers that for ``failure_ttl`` seconds, so callbacks
are answered at once (``GoogleUnavailable`` with ``retry_after``) instead of each waiting on
a fetch.

Callbacks come from anyone: the envelope is parsed with bounded nesting, and at most
``MAX_INTERMEDIATE_SIGNATURES`` signatures are tried, so a forgery costs a few verifications.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
import struct
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .. import safe_json
from ._errors import CallbackRejected
from ._errors import GoogleUnavailable

__all__ = [
    "MAX_INTERMEDIATE_SIGNATURES",
    "PROTOCOL_VERSION",
    "ROOT_KEYS_URL",
    "SENDER_ID",
    "CallbackEvent",
    "GoogleRootKeys",
    "RootKey",
    "parse_root_keys",
    "signed_bytes",
    "verify_callback",
]

logger = logging.getLogger("wallet_service.google")

ROOT_KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
SENDER_ID = "GooglePayPasses"
PROTOCOL_VERSION = "ECv2SigningOnly"
#: Google signs the intermediate key once per current root key: one or two signatures.
MAX_INTERMEDIATE_SIGNATURES = 10


def signed_bytes(*parts: str) -> bytes:
    """The bytes ECv2 signs: each part as a 4-byte little-endian length of its UTF-8 bytes,
    then those bytes (§4.3 steps 3 and 5)."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += struct.pack("<I", len(data)) + data
    return bytes(out)


@dataclass(frozen=True)
class RootKey:
    """A Google root signing key: ``key_value`` is base64 DER SubjectPublicKeyInfo (P-256),
    ``key_expiration`` milliseconds since the epoch (None: no expiry given)."""

    key_value: str
    protocol_version: str = PROTOCOL_VERSION
    key_expiration: int | None = None

    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(base64.b64decode(self.key_value))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("root key is not an EC public key")
        return key

    def usable(self, now_ms: int) -> bool:
        return self.protocol_version == PROTOCOL_VERSION and (
            self.key_expiration is None or self.key_expiration > now_ms)


def parse_root_keys(document: Mapping[str, Any] | str | bytes) -> list[RootKey]:
    """The keys of a ``{"keys": [{"keyValue", "protocolVersion", "keyExpiration"}]}``
    document; entries that cannot be parsed are skipped."""
    data = safe_json.loads(document) if isinstance(document, str | bytes) else document
    keys = []
    for entry in data.get("keys", []) if isinstance(data, Mapping) else []:
        try:
            expiration = entry.get("keyExpiration")
            keys.append(RootKey(key_value=str(entry["keyValue"]),
                                protocol_version=str(entry.get("protocolVersion", "")),
                                key_expiration=None if expiration is None else int(expiration)))
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("skipping an unreadable Google root key entry")
    return keys


@dataclass(frozen=True)
class CallbackEvent:
    """A verified callback (§4.2). ``event_type`` is ``"save"`` or ``"del"``; ``exp_time`` is
    the message's expiry (UTC); ``nonce`` is for de-duplication; ``message`` the whole
    verified ``signedMessage``."""

    event_type: str
    class_id: str
    object_id: str
    nonce: str
    exp_time: dt.datetime
    exp_time_ms: int
    count: int | None = None
    message: Mapping[str, Any] = field(default_factory=dict, repr=False)


class GoogleRootKeys:
    """Google's root signing keys, fetched from ``url`` and cached (§4.3 step 2).

    The cache lasts ``ttl`` seconds, but never past the earliest ``keyExpiration`` of the keys
    it holds; expired keys and keys of another protocol are dropped. ``refresh_for_unknown``
    lets ``verify_callback`` fetch again when a callback verifies under no cached key (key
    rotation), at most every ``min_refresh_interval`` seconds. A fetch that fails while no
    usable key is cached is not tried again for ``failure_ttl`` seconds: until then
    ``keys`` raises ``GoogleUnavailable`` at once.
    """

    def __init__(self, *, url: str = ROOT_KEYS_URL, session: requests.Session | None = None,
                 ttl: float = 3600.0, timeout: float | tuple[float, float] = (5.0, 10.0),
                 min_refresh_interval: float = 300.0, failure_ttl: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.ttl = ttl
        self.timeout = timeout
        self.min_refresh_interval = min_refresh_interval
        self.failure_ttl = failure_ttl
        self._own_session = session is None
        self.session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[RootKey] = []
        self._valid_until = 0.0
        self._fetched_at: float | None = None
        self._failed_until = 0.0

    def keys(self, now: float | None = None) -> list[RootKey]:
        """The usable root keys, fetched when the cache has run out.

        :raises GoogleUnavailable: no usable key is cached and the key URL failed, now or
            less than ``failure_ttl`` seconds ago; ``retry_after`` says when to ask again.
        """
        now = self._clock() if now is None else now
        with self._lock:
            if now >= self._valid_until:
                self._fetch(now)
            return [k for k in self._keys if k.usable(int(now * 1000))]

    def refresh_for_unknown(self, now: float | None = None) -> bool:
        """Fetch again unless that happened less than ``min_refresh_interval`` ago; True if
        it fetched."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._fetched_at is not None and now - self._fetched_at < self.min_refresh_interval:
                return False
            self._fetch(now)
            return True

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def _fetch(self, now: float) -> None:
        if now < self._failed_until:
            raise self._unavailable(now)
        try:
            response = self.session.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            keys = parse_root_keys(response.content)
        except (requests.RequestException, ValueError) as e:
            self._fetched_at = now
            if any(k.usable(int(now * 1000)) for k in self._keys):
                logger.warning("Google root keys not refreshed (%s); using the cached ones",
                               type(e).__name__)
                self._valid_until = now + min(self.ttl, self.min_refresh_interval)
                return
            # Every callback until then would wait on the same timeout: remember the failure.
            self._failed_until = now + self.failure_ttl
            logger.warning("Google root keys unavailable from %s (%s); callbacks are refused "
                           "with 503 for %.0f s", self.url, type(e).__name__, self.failure_ttl)
            raise self._unavailable(now) from e
        now_ms = int(now * 1000)
        self._keys = [k for k in keys if k.usable(now_ms)]
        self._fetched_at = now
        expirations = [k.key_expiration / 1000 for k in self._keys if k.key_expiration]
        self._valid_until = min([now + self.ttl, *expirations])

    def _unavailable(self, now: float) -> GoogleUnavailable:
        return GoogleUnavailable(f"Google root keys unavailable from {self.url}",
                                 retry_after=max(1, math.ceil(self._failed_until - now)))


def _now_seconds(now: dt.datetime | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, dt.datetime):
        return now.timestamp()
    return float(now)


def _verify(key: ec.EllipticCurvePublicKey, signature_b64: str, data: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _intermediate_verifies(keys: Iterable[RootKey], signatures: Sequence[str], signed_key: str,
                           sender_ids: Sequence[str]) -> str | None:
    """The sender id under which one of ``signatures`` verifies with one root key, or None."""
    public_keys = []
    for key in keys:
        try:
            public_keys.append(key.public_key())
        except ValueError:
            continue
    for sender in sender_ids:
        data = signed_bytes(sender, PROTOCOL_VERSION, signed_key)
        if any(_verify(pk, sig, data) for pk in public_keys for sig in signatures):
            return sender
    return None


def _unverified_class_id(signed_message: str) -> str | None:
    """The class id a message claims, only to word an error (never trusted)."""
    try:
        claimed = safe_json.loads(signed_message).get("classId")
    except (ValueError, AttributeError):
        return None
    return claimed if isinstance(claimed, str) else None


def _field(data: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise CallbackRejected(f"callback {where} lacks {name!r} (spec §4.2)", reason="malformed")
    return value


def verify_callback(body: bytes | str | Mapping[str, Any], *, issuer_id: str | int,
                    root_keys: Sequence[RootKey] | GoogleRootKeys,
                    now: dt.datetime | float | None = None,
                    sender_ids: Sequence[str] = (SENDER_ID,)) -> CallbackEvent:
    """Verify a Google Wallet save/delete callback and return its event (§4.3).

    ``body``: the POST body (raw or parsed JSON). ``issuer_id``: this service's issuer id,
    the only accepted recipient. ``root_keys``: a ``GoogleRootKeys`` (production) or a fixed
    list. ``now``: a datetime or epoch seconds (default: the clock). ``sender_ids``: add
    ``"GoogleWalletPasses"`` only if verification with the default fails in production (§4.3,
    §7.20). Raises ``CallbackRejected`` with a ``reason``, or ``GoogleUnavailable`` while
    ``root_keys`` cannot be fetched; never returns unverified data.
    """
    now_s = _now_seconds(now)
    now_ms = int(now_s * 1000)
    recipient = str(issuer_id)
    try:
        envelope = safe_json.loads(body) if isinstance(body, str | bytes) else body
    except safe_json.JSONTooDeep as e:
        raise CallbackRejected(f"callback body: {e}", reason="malformed") from e
    except ValueError as e:
        raise CallbackRejected("callback body is not JSON", reason="malformed") from e
    if not isinstance(envelope, Mapping):
        raise CallbackRejected("callback body is not a JSON object", reason="malformed")
    protocol = envelope.get("protocolVersion")
    if protocol != PROTOCOL_VERSION:
        raise CallbackRejected(f"protocolVersion {protocol!r} is not {PROTOCOL_VERSION} "
                               "(spec §4.3 step 1)", reason="protocol")
    signature = _field(envelope, "signature", str, "envelope")
    signed_message = _field(envelope, "signedMessage", str, "envelope")
    intermediate = _field(envelope, "intermediateSigningKey", Mapping, "envelope")
    signed_key = _field(intermediate, "signedKey", str, "intermediateSigningKey")
    signatures = _field(intermediate, "signatures", list, "intermediateSigningKey")
    if len(signatures) > MAX_INTERMEDIATE_SIGNATURES:
        raise CallbackRejected(f"intermediateSigningKey has {len(signatures)} signatures; at "
                               f"most {MAX_INTERMEDIATE_SIGNATURES} are tried (spec §4.3 "
                               "step 3)", reason="malformed")
    signatures = [s for s in signatures if isinstance(s, str)]

    # Step 2-3: the intermediate key is signed by a current Google root key.
    if isinstance(root_keys, GoogleRootKeys):
        keys = root_keys.keys(now_s)
    else:
        keys = [k for k in root_keys if k.usable(now_ms)]
    sender = _intermediate_verifies(keys, signatures, signed_key, sender_ids) if keys else None
    if sender is None and isinstance(root_keys, GoogleRootKeys) and \
            root_keys.refresh_for_unknown(now_s):
        keys = root_keys.keys(now_s)
        sender = _intermediate_verifies(keys, signatures, signed_key, sender_ids)
    if not keys:
        raise CallbackRejected("no usable Google root signing keys", reason="no_root_keys")
    if sender is None:
        raise CallbackRejected("intermediate signing key is not signed by a Google root key "
                               "(spec §4.3 step 3)", reason="intermediate_signature")

    # Step 4: the intermediate key has not expired.
    try:
        key_data = safe_json.loads(signed_key)
        key_value = str(key_data["keyValue"])
        key_expiration = int(key_data["keyExpiration"])
        intermediate_key = RootKey(key_value=key_value).public_key()
    except (ValueError, KeyError, TypeError) as e:
        raise CallbackRejected("unreadable intermediate signing key", reason="malformed") from e
    if key_expiration <= now_ms:
        raise CallbackRejected("intermediate signing key expired (spec §4.3 step 4)",
                               reason="key_expired")

    # Step 5: the message is signed by the intermediate key, for this issuer.
    data = signed_bytes(sender, recipient, PROTOCOL_VERSION, signed_message)
    if not _verify(intermediate_key, signature, data):
        claimed = _unverified_class_id(signed_message)
        if claimed is not None and not claimed.startswith(recipient + "."):
            raise CallbackRejected(
                f"callback is not addressed to issuer {recipient} (its message names class "
                f"{claimed!r} and does not verify for this recipient; spec §4.3 step 5)",
                reason="recipient")
        raise CallbackRejected(
            f"message signature does not verify for recipient {recipient} "
            "(forged, altered, or meant for another issuer; spec §4.3 step 5)",
            reason="message_signature")

    # Step 6: parse only now; expiry and issuer.
    try:
        message = safe_json.loads(signed_message)
    except ValueError as e:
        raise CallbackRejected("signedMessage is not JSON", reason="malformed") from e
    if not isinstance(message, Mapping):
        raise CallbackRejected("signedMessage is not a JSON object", reason="malformed")
    try:
        exp_ms = int(message["expTimeMillis"])
    except (KeyError, TypeError, ValueError) as e:
        raise CallbackRejected("signedMessage lacks expTimeMillis", reason="malformed") from e
    if exp_ms < now_ms:
        raise CallbackRejected("callback message expired (spec §4.3 step 6)",
                               reason="message_expired")
    class_id = _field(message, "classId", str, "message")
    object_id = _field(message, "objectId", str, "message")
    nonce = _field(message, "nonce", str, "message")
    event_type = str(_field(message, "eventType", str, "message")).lower()
    if event_type not in ("save", "del"):
        raise CallbackRejected(f"unknown eventType {event_type!r}", reason="malformed")
    prefix = recipient + "."
    if not class_id.startswith(prefix) or not object_id.startswith(prefix):
        raise CallbackRejected(f"callback names a class/object of another issuer than "
                               f"{recipient} (spec §4.3 step 6)", reason="recipient")
    count = message.get("count")
    return CallbackEvent(
        event_type=event_type, class_id=class_id, object_id=object_id, nonce=nonce,
        exp_time=dt.datetime.fromtimestamp(exp_ms / 1000, dt.UTC), exp_time_ms=exp_ms,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        message=dict(message))
