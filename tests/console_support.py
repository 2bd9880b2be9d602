"""A console user's view of the console for tests (importable from any test module)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(app: Flask, merchant_id: int, role: str = "owner", *,
              email: str | None = None, password: str = PASSWORD,
              locale: str = "en") -> tuple[int, str]:
    """A console user of ``merchant_id`` with ``role``; returns (id, e-mail)."""
    from wallet_service.services.accounts import create_user

    email = email or f"{role}-{merchant_id}@example.test"
    with app.extensions["wallet"].sessions() as s:
        user = create_user(s, merchant_id, email, role, password=password, locale=locale)
        s.commit()
        return user.id, user.email


class Console:
    """A browser-like client of the console: it keeps the session cookie and sends the
    CSRF token with every POST (``csrf=False`` leaves it out)."""

    def __init__(self, client: FlaskClient, merchant_id: int) -> None:
        self.client = client
        self.merchant_id = merchant_id
        client.set_cookie("console_lang", "en")  # English pages before sign-in too
        self.user_id: int | None = None
        self.email: str | None = None

    def token(self) -> str:
        """The session's CSRF token (a page is fetched first when there is none yet)."""
        with self.client.session_transaction() as s:
            token = s.get("csrf")
        if not token:
            page = self.client.get("/console/sign-in").get_data(as_text=True)
            match = _CSRF.search(page)
            assert match, "no CSRF field on the sign-in page"
            token = match.group(1)
        return str(token)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kw: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token()
        return self.client.post(path, data=form, **kw)

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.post("/console/sign-in", {"email": email, "password": password})

    def sign_in_as(self, app: Flask, role: str = "owner", **kw: Any) -> Console:
        """Create a user of ``role`` in this merchant and sign in as them."""
        self.user_id, self.email = make_user(app, self.merchant_id, role, **kw)
        response = self.sign_in(self.email, kw.get("password", PASSWORD))
        assert response.status_code == 303, response.get_data(as_text=True)
        return self
