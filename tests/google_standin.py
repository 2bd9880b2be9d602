"""A local stand-in for the Google Wallet REST API and Google's OAuth token endpoint.

A threaded HTTP/1.1 server on 127.0.0.1 (a free port)::

    with GoogleWalletStandIn() as google:
        account = google.service_account(tmp_path / "sa.json")   # key file, token_uri -> stand-in
        client = GoogleWalletClient.from_service_account_file(account.path, base_url=google.url)
        client.insert_class(...)
        google.fail(RATE_LIMITED, QUOTA_EXCEEDED)                 # the next two API calls fail
        assert google.api_requests()[-1].method == "PATCH"

What it plays:

* ``POST /token``: the JWT-bearer grant. The assertion's RS256 signature is checked with the
  registered service account's public key, ``aud`` must be this ``token_uri``, ``scope`` the
  wallet scope; the answer is an access token (``token_lifetime`` seconds).
* ``/walletobjects/v1/loyaltyClass[/{id}]`` and ``/walletobjects/v1/loyaltyObject[/{id}]``:
  insert (POST, 200 with the resource, 409 if the id exists), get (404 if unknown), patch
  (recursive merge, arrays replaced, ``notifyPreference`` not stored), update (PUT, replace),
  ``.../{id}/addMessage`` (appends; at most 10). Every call needs ``Authorization: Bearer``
  with a token from ``/token`` (else 401). Bodies are validated against the Discovery
  schema the way Google accepts them (``strict=False``): unknown fields, bad types or enums
  get 400 ``invalidArgument``. Inserted ``UNDER_REVIEW`` classes become ``APPROVED``; sending
  ``APPROVED`` back is refused (400); objects need an existing, non-draft class. GET of an
  object includes ``classReference``.
* Notifications: at most ``notification_limit`` (default 3) notifying calls per object
  (``notifyPreference`` patch/update, ``TEXT_AND_NOTIFY`` message) in 24 hours; beyond it a
  403 ``quotaExceeded`` "QuotaExceededException" (spec §2.6).
* ``rate_limit``: if set, API requests beyond that many in the last second get 429.
* ``GET /gp/m/issuer/keys``: the root signing keys set with ``root_keys_document``.

``fail(*failures, when=...)`` queues scripted error answers (``RATE_LIMITED``,
``QUOTA_EXCEEDED``, ``BACKEND_ERROR`` or any ``Failure``) for the next matching API requests.
Every request is kept as a ``RecordedRequest`` (``requests``, ``api_requests()``);
``max_in_window()`` gives the most API requests received in any window of 1 second.

Helpers without a server: ``make_service_account_info`` / ``ServiceAccount`` (throwaway RSA
key, ``client_email``, ``token_uri``) and ``CallbackKeys`` (test root and intermediate P-256
keys that sign ECv2SigningOnly callbacks like Google).
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as google_jwt

from wallet_service.google import PROTOCOL_VERSION
from wallet_service.google import SCOPE
from wallet_service.google import SENDER_ID
from wallet_service.google import RootKey
from wallet_service.google import SchemaViolation
from wallet_service.google import signed_bytes
from wallet_service.google import validate

__all__ = [
    "BACKEND_ERROR",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "CallbackKeys",
    "Failure",
    "GoogleWalletStandIn",
    "RecordedRequest",
    "ServiceAccount",
    "callback_message",
    "make_service_account_info",
]

_API = re.compile(r"\A/walletobjects/v1/(loyaltyClass|loyaltyObject)(?:/([^/]+)(/addMessage)?)?\Z")
_ID = re.compile(r"\A[0-9]+\.[A-Za-z0-9._-]+\Z")
_DAY = 24 * 3600.0


# -- service accounts -------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceAccount:
    """A throwaway service account: ``info`` is the JSON key content, ``path`` where it was
    written (or None), ``public_key_pem`` to verify what it signs."""

    info: dict[str, Any]
    path: Path | None
    public_key_pem: bytes

    @property
    def email(self) -> str:
        return str(self.info["client_email"])

    def signer(self) -> crypt.RSASigner:
        return crypt.RSASigner.from_service_account_info(self.info)


def make_service_account_info(token_uri: str, *,
                              email: str = "wallet@test-project.iam.gserviceaccount.com",
                              key_size: int = 2048) -> tuple[dict[str, Any], bytes]:
    """A service-account JSON key dict (fresh RSA key) and its public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    return info, public_pem


# -- callbacks --------------------------------------------------------------------------------

def _spki_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def callback_message(issuer_id: str, *, event_type: str = "save", class_suffix: str = "program-1",
                     object_suffix: str = "card-1", exp_time_ms: int | None = None,
                     nonce: str | None = None) -> dict[str, Any]:
    """A ``signedMessage`` as Google sends it (numeric ``expTimeMillis``, lower-case type)."""
    return {"classId": f"{issuer_id}.{class_suffix}", "objectId": f"{issuer_id}.{object_suffix}",
            "eventType": event_type,
            "expTimeMillis": exp_time_ms if exp_time_ms is not None
            else int(time.time() * 1000) + 60_000,
            "count": 1, "nonce": nonce or str(uuid.uuid4())}


class CallbackKeys:
    """A test root key and intermediate key that sign callbacks like Google (spec §4.3)."""

    def __init__(self, *, root_expiration_ms: int | None = None) -> None:
        self.root = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = ec.generate_private_key(ec.SECP256R1())
        self.root_expiration_ms = root_expiration_ms or int(time.time() * 1000) + 30 * 86_400_000

    def root_keys(self) -> list[RootKey]:
        return [RootKey(key_value=_spki_b64(self.root), key_expiration=self.root_expiration_ms)]

    def root_keys_document(self) -> dict[str, Any]:
        """The JSON served at Google's keys URL."""
        return {"keys": [{"keyValue": _spki_b64(self.root), "protocolVersion": PROTOCOL_VERSION,
                          "keyExpiration": str(self.root_expiration_ms)}]}

    def sign(self, message: Mapping[str, Any] | str, *, recipient: str,
             key_expiration_ms: int | None = None, sender: str = SENDER_ID,
             root: ec.EllipticCurvePrivateKey | None = None,
             intermediate: ec.EllipticCurvePrivateKey | None = None,
             protocol: str = PROTOCOL_VERSION) -> dict[str, Any]:
        """The POST body of a callback carrying ``message`` for ``recipient`` (an issuer id).

        ``root``/``intermediate`` override the signing keys (forgeries); ``key_expiration_ms``
        defaults to an hour from now.
        """
        root = root or self.root
        intermediate = intermediate or self.intermediate
        expiration = key_expiration_ms if key_expiration_ms is not None \
            else int(time.time() * 1000) + 3_600_000
        signed_key = json.dumps({"keyValue": _spki_b64(intermediate),
                                 "keyExpiration": str(expiration)}, separators=(",", ":"))
        signed_message = message if isinstance(message, str) else json.dumps(
            message, separators=(",", ":"))
        return {
            "signature": _sign(intermediate, signed_bytes(sender, recipient, protocol,
                                                          signed_message)),
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [_sign(root, signed_bytes(sender, protocol, signed_key))],
            },
            "protocolVersion": protocol,
            "signedMessage": signed_message,
        }


# -- the server -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """A scripted error answer in Google's error envelope (spec §1.6)."""

    status: int
    reason: str
    message: str = ""
    retry_after: float | None = None

    def body(self) -> dict[str, Any]:
        text = self.message or HTTPStatus(self.status).phrase
        return {"error": {"code": self.status, "message": text,
                          "errors": [{"domain": "global", "reason": self.reason,
                                      "message": text}],
                          "status": _STATUS_NAMES.get(self.status, "UNKNOWN")}}


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}

RATE_LIMITED = Failure(429, "rateLimitExceeded", "Rate Limit Exceeded")
QUOTA_EXCEEDED = Failure(403, "quotaExceeded", "Quota exceeded for quota metric 'Write requests'")
BACKEND_ERROR = Failure(503, "backendError", "Backend Error")


@dataclass
class RecordedRequest:
    """One request as received. ``kind``: ``token``, ``api``, ``keys`` or ``other``.
    ``received_at`` is ``time.monotonic()`` when its headers were read."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    received_at: float
    kind: str
    status: int = 0
    resource_id: str | None = None


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class _ApiError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class GoogleWalletStandIn:
    """The Google Wallet REST API and token endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, notification_limit: int | None = 3, rate_limit: float | None = None,
                 token_lifetime: int = 3600, root_keys_document: Mapping[str, Any] | None = None,
                 record_bodies: bool = True) -> None:
        self.notification_limit = notification_limit
        self.rate_limit = rate_limit
        self.token_lifetime = token_lifetime
        self.root_keys_document = root_keys_document
        self.record_bodies = record_bodies
        self.classes: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.notifications: dict[str, list[float]] = collections.defaultdict(list)
        self.tokens: dict[str, tuple[str, float]] = {}
        self._accounts: dict[str, bytes] = {}
        self._failures: collections.deque[tuple[Failure, Callable[[RecordedRequest], bool] | None]]
        self._failures = collections.deque()
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    @property
    def root_keys_url(self) -> str:
        return self.url + "/gp/m/issuer/keys"

    def start(self) -> GoogleWalletStandIn:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="google-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> GoogleWalletStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # configuration

    def service_account(self, path: Path | str | None = None, *,
                        email: str = "wallet@test-project.iam.gserviceaccount.com"
                        ) -> ServiceAccount:
        """A new service account whose ``token_uri`` is this stand-in, registered here and
        written to ``path`` (when given)."""
        info, public_pem = make_service_account_info(self.token_uri, email=email)
        self.register_service_account(info["client_email"], public_pem)
        if path is not None:
            path = Path(path)
            path.write_text(json.dumps(info), encoding="utf-8")
        return ServiceAccount(info=info, path=path, public_key_pem=public_pem)

    def register_service_account(self, email: str, public_key_pem: bytes) -> None:
        with self._lock:
            self._accounts[email] = public_key_pem

    def fail(self, *failures: Failure, when: Callable[[RecordedRequest], bool] | None = None
             ) -> None:
        """Answer the next API requests (those ``when`` accepts) with ``failures``, in order."""
        with self._lock:
            self._failures.extend((f, when) for f in failures)

    def seed_class(self, payload: Mapping[str, Any]) -> None:
        """Store a class directly (approved), without a request."""
        with self._lock:
            stored = copy.deepcopy(dict(payload))
            stored["reviewStatus"] = "APPROVED"
            self.classes[stored["id"]] = stored

    def seed_object(self, payload: Mapping[str, Any]) -> None:
        """Store an object directly, without a request."""
        with self._lock:
            self.objects[payload["id"]] = copy.deepcopy(dict(payload))

    # inspection

    def api_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "api"]

    def token_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "token"]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def max_in_window(self, window: float = 1.0,
                      requests: list[RecordedRequest] | None = None) -> int:
        """The most API requests received within any ``window`` seconds (half-open)."""
        times = sorted(r.received_at for r in (requests or self.api_requests()))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    # request handling (called from handler threads)

    def handle(self, record: RecordedRequest, raw: bytes) -> tuple[int, dict[str, Any],
                                                                   dict[str, str]]:
        with self._lock:
            self.requests.append(record)
        if record.path == "/token" and record.method == "POST":
            record.kind = "token"
            return self._token(record, raw)
        if record.path == "/gp/m/issuer/keys" and record.method == "GET":
            record.kind = "keys"
            if self.root_keys_document is None:
                return 404, {"error": "no keys configured"}, {}
            return 200, dict(self.root_keys_document), {}
        match = _API.match(record.path)
        if not match:
            return 404, Failure(404, "notFound", "Not Found").body(), {}
        record.kind = "api"
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, Failure(400, "parseError", "Invalid JSON payload received.").body(), {}
        if self.record_bodies:
            record.body = body
        try:
            return self._api(record, match, body)
        except _ApiError as e:
            headers = {}
            if e.failure.retry_after is not None:
                headers["Retry-After"] = f"{e.failure.retry_after:g}"
            return e.failure.status, e.failure.body(), headers

    def _token(self, record: RecordedRequest, raw: bytes) -> tuple[int, dict[str, Any],
                                                                   dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(raw.decode("ascii", "replace")).items()}
        record.body = {k: v for k, v in form.items() if k != "assertion"}

        def refuse(description: str) -> tuple[int, dict[str, Any], dict[str, str]]:
            return 400, {"error": "invalid_grant", "error_description": description}, {}

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}, {}
        assertion = form.get("assertion", "")
        try:
            claims = google_jwt.decode(assertion, verify=False)
        except ValueError:
            return refuse("Invalid JWT")
        with self._lock:
            public_pem = self._accounts.get(str(claims.get("iss")))
        if public_pem is None:
            return refuse("Invalid JWT Signature.")  # unknown account
        try:
            claims = google_jwt.decode(assertion, certs=public_pem.decode(),
                                       audience=self.token_uri)
        except ValueError as e:
            return refuse(f"Invalid JWT: {e}")
        if SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope"}, {}
        token = "ya29.standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (str(claims["iss"]), time.time() + self.token_lifetime)
        return 200, {"access_token": token, "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}, {}

    def _authorize(self, record: RecordedRequest) -> None:
        header = record.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._lock:
            entry = self.tokens.get(token)
        if entry is None or entry[1] < time.time():
            raise _ApiError(Failure(401, "authError", "Request had invalid authentication "
                                    "credentials. Expected OAuth 2 access token."))

    def _api(self, record: RecordedRequest, match: re.Match[str], body: Any
             ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self._authorize(record)
        with self._lock:
            if self.rate_limit is not None:
                now = record.received_at
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                self._recent.append(now)
                if len(self._recent) > self.rate_limit:
                    raise _ApiError(RATE_LIMITED)
            for index, (failure, when) in enumerate(self._failures):
                if when is None or when(record):
                    del self._failures[index]
                    raise _ApiError(failure)
        collection, raw_id, add_message = match.groups()
        resource_id = unquote(raw_id) if raw_id else None
        record.resource_id = resource_id
        kind = "LoyaltyClass" if collection == "loyaltyClass" else "LoyaltyObject"
        store = self.classes if kind == "LoyaltyClass" else self.objects
        method = record.method
        if add_message and method == "POST":
            return self._add_message(kind, store, resource_id, body)
        if resource_id is None and method == "POST":
            return self._insert(kind, store, body)
        if resource_id is not None and method == "GET":
            with self._lock:
                resource = copy.deepcopy(store.get(resource_id))
                if resource is not None and kind == "LoyaltyObject":
                    parent = self.classes.get(resource.get("classId", ""))
                    if parent is not None:
                        resource["classReference"] = copy.deepcopy(parent)
            if resource is None:
                raise _ApiError(Failure(404, "resourceNotFound",
                                        f"Resource not found: {resource_id}"))
            return 200, resource, {}
        if resource_id is not None and method in ("PATCH", "PUT"):
            return self._modify(kind, store, resource_id, body, replace=method == "PUT")
        raise _ApiError(Failure(405, "methodNotAllowed", "Method not allowed"))

    @staticmethod
    def _validate(kind: str, body: Any, *, partial: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError(Failure(400, "invalidArgument", "Request body must be a JSON object"))
        try:
            validate(kind, body, partial=partial, strict=False)
        except SchemaViolation as e:
            raise _ApiError(Failure(400, "invalidArgument",
                                    f"Invalid JSON payload received. {e}")) from e
        return body

    def _check_class_for_object(self, payload: Mapping[str, Any]) -> None:
        parent = self.classes.get(payload.get("classId", ""))
        if parent is None:
            raise _ApiError(Failure(404, "resourceNotFound",
                                    f"Class not found: {payload.get('classId')}"))
        if parent.get("reviewStatus") == "DRAFT":
            raise _ApiError(Failure(400, "invalidArgument",
                                    "Objects cannot be created for a DRAFT class"))

    def _notifying_allowed(self, object_id: str, notifying: bool) -> None:
        if not notifying or self.notification_limit is None:
            return
        now = time.time()
        sent = [t for t in self.notifications[object_id] if now - t < _DAY]
        self.notifications[object_id] = sent
        if len(sent) >= self.notification_limit:
            raise _ApiError(Failure(403, "quotaExceeded", "QuotaExceededException: at most "
                                    f"{self.notification_limit} notifications per pass in 24 "
                                    "hours"))

    def _insert(self, kind: str, store: dict[str, dict[str, Any]], body: Any
                ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if isinstance(body, dict) and isinstance(body.get("id"), str) and \
                not _ID.match(body["id"]):
            raise _ApiError(Failure(400, "invalidResource", f"Invalid resource ID: {body['id']}"))
        payload = self._validate(kind, body, partial=False)
        with self._lock:
            if payload["id"] in store:
                raise _ApiError(Failure(409, "duplicate",
                                        f"Resource already exists: {payload['id']}"))
            stored = copy.deepcopy(payload)
            stored.pop("notifyPreference", None)
            if kind == "LoyaltyClass":
                if stored.get("reviewStatus") not in ("UNDER_REVIEW", "DRAFT"):
                    raise _ApiError(Failure(400, "invalidArgument",
                                            "reviewStatus must be UNDER_REVIEW or DRAFT"))
                if stored["reviewStatus"] == "UNDER_REVIEW":
                    stored["reviewStatus"] = "APPROVED"
            else:
                self._check_class_for_object(stored)
            store[stored["id"]] = stored
            return 200, copy.deepcopy(stored), {}

    def _modify(self, kind: str, store: dict[str, dict[str, Any]], resource_id: str, body: Any,
                *, replace: bool) -> tuple[int, dict[str, Any], dict[str, str]]:
        payload = self._validate(kind, body, partial=not replace)
        if "id" in payload and payload["id"] != resource_id:
            raise _ApiError(Failure(400, "invalidArgument", "id does not match the URL"))
        notifying = payload.get("notifyPreference") == "NOTIFY_ON_UPDATE"
        with self._lock:
            current = store.get(resource_id)
            if current is None:
                raise _ApiError(Failure(404, "resourceNotFound",
                                        f"Resource not found: {resource_id}"))
            if kind == "LoyaltyClass" and payload.get("reviewStatus") not in (
                    None, "UNDER_REVIEW", "DRAFT"):
                raise _ApiError(Failure(400, "invalidArgument", "reviewStatus must be "
                                        "UNDER_REVIEW or DRAFT on update (spec §2.1.2)"))
            if kind == "LoyaltyObject":
                self._notifying_allowed(resource_id, notifying)
            changes = copy.deepcopy(payload)
            changes.pop("notifyPreference", None)
            if changes.get("reviewStatus") == "UNDER_REVIEW" and \
                    current.get("reviewStatus") == "APPROVED":
                changes["reviewStatus"] = "APPROVED"
            if replace:
                current = {**changes, "id": resource_id}
            else:
                _merge(current, changes)
            store[resource_id] = current
            if kind == "LoyaltyObject" and notifying:
                self.notifications[resource_id].append(time.time())
            return 200, copy.deepcopy(current), {}

    def _add_message(self, kind: str, store: dict[str, dict[str, Any]], resource_id: str | None,
                     body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        payload = self._validate("AddMessageRequest", body, partial=False)
        message = payload["message"]
        notifying = message.get("messageType") == "TEXT_AND_NOTIFY"
        with self._lock:
            current = store.get(resource_id or "")
            if current is None:
                raise _ApiError(Failure(404, "resourceNotFound",
                                        f"Resource not found: {resource_id}"))
            if kind == "LoyaltyObject":
                self._notifying_allowed(resource_id or "", notifying)
            messages = current.setdefault("messages", [])
            if len(messages) >= 10:
                raise _ApiError(Failure(400, "invalidArgument",
                                        "A resource can hold at most 10 messages"))
            messages.append(copy.deepcopy(message))
            if kind == "LoyaltyObject" and notifying:
                self.notifications[resource_id or ""].append(time.time())
            return 200, {"resource": copy.deepcopy(current)}, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _serve(self) -> None:
        received = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        record = RecordedRequest(
            method=self.command, path=parts.path, query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()}, body=None,
            received_at=received, kind="other")
        status, body, headers = self.server.standin.handle(record, raw)
        record.status = status
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, standin: GoogleWalletStandIn) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on kept-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

