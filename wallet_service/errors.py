"""The exceptions wallet-service raises.

Every error the service raises on purpose derives from ``WalletError``; the web layer turns
each into a JSON problem (RFC 9457) with the status given by the class::

    WalletError (500)
    ├── InvalidInput (400)            a value is malformed; names the field
    │   ├── ValidationFailed (422)    well-formed but breaks a rule (unknown kind, bad tier order)
    │   ├── InputTooLarge (413)       a value is larger than the service takes (an image's side)
    │   └── UnsupportedMediaType (415) a body of a media type the operation does not take
    ├── AuthenticationFailed (401)    no or a wrong credential
    ├── PermissionDenied (403)        a valid credential that may not do this
    ├── ResourceNotFound (404)        missing, or owned by another merchant
    ├── ResourceConflict (409)        the request clashes with the current state
    │   └── InsufficientBalance (409) a redeem would take the balance below zero
    └── ConfigurationError            a setting is missing or wrong (raised at start-up)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class WalletError(Exception):
    """Root of every error the service raises on purpose."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    title: str = "Internal error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class InvalidInput(WalletError):
    """A value in the request is malformed. ``field`` names it (dotted path)."""

    status = HTTPStatus.BAD_REQUEST
    title = "Invalid input"


class ValidationFailed(InvalidInput):
    """The request is well-formed but breaks a rule of the domain."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Validation failed"


class InputTooLarge(InvalidInput):
    """A value is larger than the service takes, such as an image's size; refused before the
    work it would cause."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    title = "Input too large"


class UnsupportedMediaType(InvalidInput):
    """The request's body is of a media type (``Content-Type``) the operation does not take."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported media type"


class AuthenticationFailed(WalletError):
    """No credential, or a credential that does not match."""

    status = HTTPStatus.UNAUTHORIZED
    title = "Authentication required"


class PermissionDenied(WalletError):
    """The credential is valid but may not do this."""

    status = HTTPStatus.FORBIDDEN
    title = "Forbidden"


class ResourceNotFound(WalletError):
    """The resource does not exist, or belongs to another merchant."""

    status = HTTPStatus.NOT_FOUND
    title = "Not found"


class ResourceConflict(WalletError):
    """The request conflicts with the current state of the resource."""

    status = HTTPStatus.CONFLICT
    title = "Conflict"


class InsufficientBalance(ResourceConflict):
    """A redeem would take the balance below zero."""

    title = "Insufficient balance"


class ConfigurationError(WalletError):
    """A setting is missing or wrong; raised at start-up and by ``doctor``."""

    title = "Configuration error"
