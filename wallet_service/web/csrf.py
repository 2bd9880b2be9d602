"""Cross-site request forgery protection for the customer-facing HTML forms.

The token lives in the signed session cookie and is repeated in a hidden form field; a
form posted from another site cannot read it, so it cannot send it back."""

from __future__ import annotations

import hmac
import secrets

from flask import request
from flask import session

FIELD = "csrf_token"
#: The header that carries the token for requests without a form (the console's htmx calls).
HEADER = "X-CSRF-Token"
_KEY = "csrf"


def csrf_token() -> str:
    """The visitor's token (created on first use), for the form's hidden field."""
    token = session.get(_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_KEY] = token
    return token


def csrf_valid() -> bool:
    """Whether the posted form (or the ``X-CSRF-Token`` header) carries the visitor's
    token."""
    expected = session.get(_KEY)
    sent = request.form.get(FIELD, "") or request.headers.get(HEADER, "")
    if not isinstance(expected, str) or not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
