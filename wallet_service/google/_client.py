"""``GoogleWalletClient``: the walletobjects v1 REST API for loyalty classes and objects (§1).

One ``requests.Session`` carries both the API calls and the OAuth token requests. The access
token comes from the ``token_uri`` of the service-account file (JWT-bearer grant through
google-auth, scope ``wallet_object.issuer``, §1.2), so a stand-in token endpoint is a matter
of configuration. Every attempt waits for the client's ``TokenBucket`` (default 15 requests/s,
under Google's 20, §1.8), and then for a ``budget`` shared with other processes when one is
given (:class:`~wallet_service.google.RequestBudget`); calls made inside ``with
client.urgent():`` (a customer waiting) go ahead of the others there. 429, 5xx and quota 403
answers are retried with exponential backoff
and full jitter up to ``max_attempts``; a quota answer to a *notifying* call raises
``NotificationQuotaExceeded`` at once, so the caller can send it again silently (§2.6).

Neither the private key nor access tokens are ever logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from os import PathLike
from typing import Any
from urllib.parse import quote

import google.auth.exceptions
import requests
import requests.adapters
from google.auth.transport import requests as google_requests
from google.oauth2 import service_account

from ..metrics import GOOGLE_REQUESTS
from ._errors import GoogleApiError
from ._errors import GoogleAuthError
from ._errors import GoogleConflict
from ._errors import GoogleInvalidRequest
from ._errors import GoogleNotFound
from ._errors import GoogleRateLimited
from ._errors import GoogleUnavailable
from ._errors import NotificationQuotaExceeded
from ._jwt import save_url
from ._mapping import loyalty_message
from ._retry import ErrorKind
from ._retry import RequestBudget
from ._retry import TokenBucket
from ._retry import backoff_delay
from ._retry import classify_error
from ._retry import error_details
from ._schema import validate

__all__ = ["DEFAULT_API_URL", "DEFAULT_RATE", "SCOPE", "GoogleWalletClient", "load_credentials"]

logger = logging.getLogger("wallet_service.google")

DEFAULT_API_URL = "https://walletobjects.googleapis.com"
#: The only scope of the API (§1.2).
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
#: Requests per second; Google publishes 20 (§1.8).
DEFAULT_RATE = 15.0
_API_PATH = "/walletobjects/v1/"
#: Set inside ``GoogleWalletClient.urgent()``: the calls of a customer who is waiting.
_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("google_urgent", default=False)
#: Tries of an urgent call, and the longest pause between them: a customer waits for them,
#: and can tap again.
URGENT_ATTEMPTS = 2
URGENT_BACKOFF_CAP = 1.0

_ERRORS: dict[ErrorKind, type[GoogleApiError]] = {
    ErrorKind.RATE_LIMITED: GoogleRateLimited,
    ErrorKind.QUOTA: GoogleRateLimited,
    ErrorKind.UNAVAILABLE: GoogleUnavailable,
    ErrorKind.AUTH: GoogleAuthError,
    ErrorKind.INVALID: GoogleInvalidRequest,
    ErrorKind.NOT_FOUND: GoogleNotFound,
    ErrorKind.CONFLICT: GoogleConflict,
    ErrorKind.OTHER: GoogleApiError,
}


def load_credentials(source: str | PathLike[str] | Mapping[str, Any]
                     ) -> service_account.Credentials:
    """Service-account credentials from a JSON key file path or its parsed content (§1.2).

    The token request goes to the file's ``token_uri`` with that same URI as the assertion's
    ``aud`` (Google's files name ``https://oauth2.googleapis.com/token`` there).
    """
    if isinstance(source, Mapping):
        info = dict(source)
    else:
        with open(source, encoding="utf-8") as f:
            info = json.load(f)
    try:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE], additional_claims={"aud": info.get("token_uri")}))
        return credentials
    except (ValueError, KeyError) as e:
        raise GoogleAuthError(f"unusable service-account key: {type(e).__name__}") from e


class _AuthRequest(google_requests.Request):
    """google-auth's transport on our session, with our timeout instead of 120 s."""

    def __init__(self, session: requests.Session, timeout: float | tuple[float, float]) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return super().__call__(  # type: ignore[no-untyped-call]
            url, method=method, body=body, headers=headers, timeout=timeout or self._timeout,
            **kwargs)


class GoogleWalletClient:
    """Loyalty classes and objects over the Google Wallet REST API (§1.3).

    Keyword-only arguments:

    ``credentials``
        ``service_account.Credentials`` (``load_credentials``; or use
        ``from_service_account_file``).
    ``base_url``
        API root, default ``https://walletobjects.googleapis.com`` (``WALLET_GOOGLE_API_URL``).
    ``rate``, ``headroom``
        Ceiling in requests per second for this client, across threads (default 15): the
        ``TokenBucket`` paces at ``rate * (1 - headroom)`` and never lets more than ``rate``
        requests start within a second. Or pass a ``bucket`` shared by several clients.
    ``budget``
        A request budget shared with other processes (``RequestBudget``, e.g.
        ``wallet_service.ratelimit.SharedRequestRate``): every attempt also waits for it,
        as urgent inside ``urgent()``.
    ``timeout``
        ``(connect, read)`` seconds for every request, token requests included.
    ``max_attempts``, ``backoff_base``, ``backoff_cap``
        Retries of 429 / quota 403 / 5xx / connection errors (§1.6).
    ``pool_size``
        Kept-alive connections of the session the client creates (one per worker thread).
    ``session``, ``sleep``, ``rng``
        Injectable for tests: ``sleep`` and ``rng`` drive the backoff only; the bucket keeps
        real time unless a ``bucket`` with its own clock is passed.
    ``validate_payloads``
        Check every body against the Discovery schema before sending it (§6.5).
    """

    def __init__(self, *, credentials: service_account.Credentials,
                 base_url: str = DEFAULT_API_URL, rate: float = DEFAULT_RATE,
                 headroom: float = 0.05, bucket: TokenBucket | None = None,
                 budget: RequestBudget | None = None,
                 timeout: float | tuple[float, float] = (5.0, 30.0), max_attempts: int = 5,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 session: requests.Session | None = None, pool_size: int = 16,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random,
                 validate_payloads: bool = True) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.validate_payloads = validate_payloads
        self.bucket = bucket or TokenBucket(rate, headroom=headroom)
        self.budget = budget
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._sleep = sleep
        self._rng = rng
        self._auth_request = _AuthRequest(self.session, timeout)
        self._token_lock = threading.Lock()

    @classmethod
    def from_service_account_file(cls, path: str | PathLike[str], **kwargs: Any
                                  ) -> GoogleWalletClient:
        """A client for the service-account key file at ``path`` (``WALLET_GOOGLE_CREDENTIALS``)."""
        return cls(credentials=load_credentials(path), **kwargs)

    @property
    def service_account_email(self) -> str:
        email: str = self.credentials.service_account_email
        return email

    def close(self) -> None:
        """Close the session (when the client created it)."""
        if self._own_session:
            self.session.close()

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """Calls made inside go ahead of background ones in the shared ``budget``, and are
        tried at most ``URGENT_ATTEMPTS`` times, ``URGENT_BACKOFF_CAP`` seconds apart at most:
        a customer is waiting for them (the save link, spec §3.3)."""
        token = _URGENT.set(True)
        try:
            yield
        finally:
            _URGENT.reset(token)

    def __enter__(self) -> GoogleWalletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- classes -----------------------------------------------------------------------------

    def get_class(self, class_id: str) -> dict[str, Any]:
        """``loyaltyclass.get``; ``GoogleNotFound`` when unknown."""
        return self._call("GET", f"loyaltyClass/{quote(class_id, safe='')}")

    def insert_class(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``loyaltyclass.insert``; ``GoogleConflict`` when the id exists (§1.5)."""
        self._check("LoyaltyClass", payload)
        return self._call("POST", "loyaltyClass", body=payload)

    def patch_class(self, class_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``loyaltyclass.patch``: only the fields sent change; arrays are replaced (§1.4)."""
        self._check("LoyaltyClass", payload, partial=True)
        return self._call("PATCH", f"loyaltyClass/{quote(class_id, safe='')}", body=payload,
                          notifying=payload.get("notifyPreference") == "NOTIFY_ON_UPDATE")

    def update_class(self, class_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``loyaltyclass.update`` (PUT): replaces the whole class (§1.4)."""
        self._check("LoyaltyClass", payload)
        return self._call("PUT", f"loyaltyClass/{quote(class_id, safe='')}", body=payload)

    def upsert_class(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Insert the class; when it exists (409), patch it with the same body (§1.5)."""
        try:
            return self.insert_class(payload)
        except GoogleConflict:
            return self.patch_class(payload["id"], payload)

    def add_class_message(self, class_id: str, header: str, body: str, *, notify: bool,
                          message_id: str | None = None) -> dict[str, Any]:
        """``loyaltyclass.addmessage``: shown to every holder of every object of the class;
        with ``notify`` each of them gets a push (§7.14). Returns the updated class."""
        request = {"message": loyalty_message(header, body, notify=notify,
                                              message_id=message_id or uuid.uuid4().hex)}
        self._check("AddMessageRequest", request)
        answer = self._call("POST", f"loyaltyClass/{quote(class_id, safe='')}/addMessage",
                            body=request, notifying=notify)
        resource: dict[str, Any] = answer.get("resource", {})
        return resource

    # -- objects -----------------------------------------------------------------------------

    def get_object(self, object_id: str) -> dict[str, Any]:
        """``loyaltyobject.get`` (the answer includes ``classReference``; never send it back)."""
        return self._call("GET", f"loyaltyObject/{quote(object_id, safe='')}")

    def insert_object(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``loyaltyobject.insert``; ``GoogleConflict`` when the id exists (§1.5)."""
        self._check("LoyaltyObject", payload)
        return self._call("POST", "loyaltyObject", body=payload)

    def patch_object(self, object_id: str, payload: Mapping[str, Any], *,
                     notify: bool = False) -> dict[str, Any]:
        """``loyaltyobject.patch`` (§1.4). ``notify=True`` sends ``notifyPreference:
        NOTIFY_ON_UPDATE`` with it, for a push about allow-listed fields such as the points
        balance (§2.6); only when the caller's 3-per-24-hours budget allows. A quota answer
        then raises ``NotificationQuotaExceeded``: patch again with ``notify=False``."""
        body = dict(payload)
        body.pop("notifyPreference", None)
        if notify:
            body["notifyPreference"] = "NOTIFY_ON_UPDATE"
        self._check("LoyaltyObject", body, partial=True)
        return self._call("PATCH", f"loyaltyObject/{quote(object_id, safe='')}", body=body,
                          notifying=notify)

    def update_object(self, object_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``loyaltyobject.update`` (PUT): replaces the whole object (§1.4)."""
        self._check("LoyaltyObject", payload)
        return self._call("PUT", f"loyaltyObject/{quote(object_id, safe='')}", body=payload)

    def upsert_object(self, payload: Mapping[str, Any], *,
                      notify: bool = False) -> dict[str, Any]:
        """Insert the object; when it exists (409) patch it with the same fields (§1.5).

        ``notify`` applies to the patch only (an insert never notifies).
        """
        try:
            return self.insert_object(payload)
        except GoogleConflict:
            return self.patch_object(payload["id"], payload, notify=notify)

    def add_message(self, object_id: str, header: str | Mapping[str, str],
                    body: str | Mapping[str, str], *, notify: bool,
                    message_id: str | None = None) -> dict[str, Any]:
        """``loyaltyobject.addmessage`` (§2.6): ``TEXT_AND_NOTIFY`` when ``notify`` (a push,
        counts against the 3-per-24-hours budget), else ``TEXT`` (free). ``message_id``
        defaults to a random one. ``header`` and ``body`` are one text, or one per language
        (``{"ru": …, "en": …}``, the first language the default, §2.3 LocalizedString). A
        quota answer to a notifying message raises ``NotificationQuotaExceeded``: send it
        again with ``notify=False``. Returns the updated object. Objects keep at most 10
        messages (§7.15): make room first (``kept_messages`` in a PATCH)."""
        request = {"message": loyalty_message(header, body, notify=notify,
                                              message_id=message_id or uuid.uuid4().hex)}
        self._check("AddMessageRequest", request)
        answer = self._call("POST", f"loyaltyObject/{quote(object_id, safe='')}/addMessage",
                            body=request, notifying=notify)
        resource: dict[str, Any] = answer.get("resource", {})
        return resource

    def save_url(self, object_ids: Sequence[str], origins: Sequence[str], *,
                 now: float | None = None) -> str:
        """The save link for objects inserted already, signed with this client's key (§3)."""
        return save_url(self.credentials, object_ids, origins, now=now)

    # -- plumbing ----------------------------------------------------------------------------

    def _check(self, kind: str, payload: Mapping[str, Any], *, partial: bool = False) -> None:
        if self.validate_payloads:
            validate(kind, payload, partial=partial)

    def _token(self, *, force: bool = False) -> str:
        with self._token_lock:
            if force or not self.credentials.valid:
                try:
                    self.credentials.refresh(  # type: ignore[no-untyped-call]
                        self._auth_request)
                except google.auth.exceptions.RefreshError as e:
                    detail = e.args[0] if e.args and isinstance(e.args[0], str) else ""
                    raise GoogleAuthError(
                        f"the token endpoint refused the service account (spec §1.2): {detail}"
                    ) from e
                except google.auth.exceptions.TransportError as e:
                    raise GoogleUnavailable("the token endpoint did not answer") from e
                logger.debug("Google access token obtained for %s",
                             self.credentials.service_account_email)
            token = self.credentials.token
            if not isinstance(token, str):
                raise GoogleAuthError("the token endpoint returned no access token")
            return token

    def _call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
              notifying: bool = False) -> dict[str, Any]:
        url = self.base_url + _API_PATH + path
        force_token = False
        urgent = _URGENT.get()
        max_attempts = min(self.max_attempts, URGENT_ATTEMPTS) if urgent else self.max_attempts
        cap = min(self.backoff_cap, URGENT_BACKOFF_CAP) if urgent else self.backoff_cap
        for attempt in range(1, max_attempts + 1):
            self.bucket.acquire()
            if self.budget is not None:
                self.budget.acquire(urgent=urgent)
            headers = {"Authorization": f"Bearer {self._token(force=force_token)}",
                       "Accept": "application/json"}
            force_token = False
            try:
                response = self.session.request(method, url, json=body, headers=headers,
                                                timeout=self.timeout)
            except requests.RequestException as e:
                GOOGLE_REQUESTS.labels(method, "none").inc()
                error = GoogleUnavailable(f"{method} {path}: no answer ({type(e).__name__})",
                                          method=method, path=path, attempts=attempt)
                if attempt < max_attempts:
                    self._backoff(attempt, None, method, path, type(e).__name__, cap)
                    continue
                raise error from e
            GOOGLE_REQUESTS.labels(method, str(response.status_code)).inc()
            if response.status_code < 300:
                return _json(response)
            answer = _json(response)
            kind = classify_error(response.status_code, answer)
            reason, message = error_details(answer)
            if response.status_code == 401 and attempt == 1 and attempt < max_attempts:
                force_token = True  # revoked or expired early: one fresh token
                continue
            if notifying and kind is ErrorKind.QUOTA:
                raise NotificationQuotaExceeded(
                    f"{method} {path}: notification quota exceeded ({reason}); send it again "
                    "without notification (spec §2.6)", status_code=response.status_code,
                    reason=reason, google_message=message, method=method, path=path,
                    attempts=attempt)
            if kind.retryable and attempt < max_attempts:
                self._backoff(attempt, _retry_after(response), method, path,
                              f"{response.status_code} {reason}", cap)
                continue
            raise _ERRORS[kind](
                f"{method} {path}: {response.status_code} {reason or ''} {message or ''}".strip(),
                status_code=response.status_code, reason=reason, google_message=message,
                method=method, path=path, attempts=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None, method: str, path: str,
                 why: str, cap: float) -> None:
        delay = backoff_delay(attempt, base=self.backoff_base, cap=cap,
                              rng=self._rng, retry_after=retry_after)
        logger.info("Google Wallet %s %s: %s; attempt %d, retrying in %.2fs",
                    method, path, why, attempt, delay)
        self._sleep(delay)


def _json(response: requests.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
