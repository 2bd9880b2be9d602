"""The ``GoogleWalletError`` family: every failure of the Google Wallet adapter::

    WalletError                            (wallet_service.errors)
    └── GoogleWalletError (502)            anything that went wrong talking to Google Wallet
        ├── SchemaViolation (500)          a payload breaks the Discovery schema (§6.5)
        ├── CallbackRejected (400)         a save/delete callback failed verification (§4.3)
        └── GoogleApiError (502)           Google answered with an error (§1.6)
            ├── GoogleAuthError            401, 403 permissionDenied, token endpoint refusal (§1.2)
            ├── GoogleInvalidRequest       400 invalidResource or another schema complaint
            ├── GoogleNotFound             404 unknown class or object id
            ├── GoogleConflict             409 insert of an id that exists (§1.5)
            ├── GoogleRateLimited          429 / 403 quota, still refused after every attempt (§1.8)
            │   └── NotificationQuotaExceeded   quota error on a notifying call (§2.6): send
            │                                   again without notification (TEXT / no
            │                                   notifyPreference)
            └── GoogleUnavailable          5xx or no answer, after every attempt
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ..errors import WalletError

__all__ = [
    "CallbackRejected",
    "GoogleApiError",
    "GoogleAuthError",
    "GoogleConflict",
    "GoogleInvalidRequest",
    "GoogleNotFound",
    "GoogleRateLimited",
    "GoogleUnavailable",
    "GoogleWalletError",
    "NotificationQuotaExceeded",
    "SchemaViolation",
]


class GoogleWalletError(WalletError):
    """Root of the Google Wallet adapter's errors."""

    status = HTTPStatus.BAD_GATEWAY
    title = "Google Wallet error"


class SchemaViolation(GoogleWalletError):
    """A payload does not match the walletobjects v1 Discovery schema (spec §6.5).

    ``path`` (also ``field``) is the JSON path of the offending value, such as
    ``$.loyaltyPoints.balance.int``.
    """

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    title = "Google Wallet payload invalid"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}", field=path)
        self.path = path


class CallbackRejected(GoogleWalletError):
    """A save/delete callback failed ECv2SigningOnly verification (spec §4.3).

    ``reason`` is one of ``malformed``, ``protocol``, ``intermediate_signature``,
    ``key_expired``, ``message_signature``, ``recipient``, ``message_expired``, ``no_root_keys``.
    """

    status = HTTPStatus.BAD_REQUEST
    title = "Google Wallet callback rejected"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class GoogleApiError(GoogleWalletError):
    """Google Wallet answered with an error (spec §1.6).

    ``status_code`` is the HTTP status (None when no answer came), ``reason`` the first
    ``error.errors[].reason`` (or ``error.status``), ``google_message`` Google's text,
    ``method``/``path`` the request and ``attempts`` how many times it was sent.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 reason: str | None = None, google_message: str | None = None,
                 method: str | None = None, path: str | None = None, attempts: int = 1,
                 **extra: Any) -> None:
        super().__init__(message, status_code=status_code, reason=reason, **extra)
        self.status_code = status_code
        self.reason = reason
        self.google_message = google_message
        self.method = method
        self.path = path
        self.attempts = attempts


class GoogleAuthError(GoogleApiError):
    """No usable access token, or the service account may not act for the issuer (§1.2, §7.1)."""


class GoogleInvalidRequest(GoogleApiError):
    """400: Google refused the request body or id (§1.6, §7.2–7.3)."""


class GoogleNotFound(GoogleApiError):
    """404: no class or object with that id (§1.6)."""


class GoogleConflict(GoogleApiError):
    """409: insert of an id that already exists (§1.5); patch instead."""


class GoogleRateLimited(GoogleApiError):
    """429, or 403 with a quota/rate reason, on every attempt (§1.6, §1.8)."""


class NotificationQuotaExceeded(GoogleRateLimited):
    """A notifying call (``TEXT_AND_NOTIFY`` message, ``notifyPreference`` patch) hit a quota
    (§2.6, §7.12). It is not retried: send the same change again without notification."""


class GoogleUnavailable(GoogleApiError):
    """5xx or no answer at all (connection error, timeout), on every attempt.
    ``retry_after``: whole seconds until asking again is worth it, when known."""

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
