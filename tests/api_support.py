"""A merchant's view of the API for tests (importable from any test module)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask.testing import FlaskClient


class Api:
    """A merchant's view of the API: every call carries its key."""

    def __init__(self, client: FlaskClient, key: str, merchant_id: int) -> None:
        self.client = client
        self.key = key
        self.merchant_id = merchant_id

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, json=json,
                                headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch("/api/v1" + path, json=json,
                                 headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete("/api/v1" + path, headers=self._headers(kw.pop("headers", None)), **kw)

    def program(self, **fields: Any) -> dict[str, Any]:
        r = self.post("/programs", {"name": "Coffee", "kind": "points", **fields})
        assert r.status_code == 201, r.json
        return r.json  # type: ignore[no-any-return]

    def member(self, program_id: int, **fields: Any) -> dict[str, Any]:
        body = {"name": "Anna", "phone": "+7 912 345-67-89", **fields}
        r = self.post(f"/programs/{program_id}/members", body)
        assert r.status_code == 201, r.json
        return r.json  # type: ignore[no-any-return]

    def run_daily(self, day: dt.date) -> dict[str, Any]:
        """The merchant's daily job for ``day``, called as the worker calls it: how tests
        move time forward (the API runs no day to come). Returns the report."""
        from wallet_service.services.automations import run_daily

        state = self.client.application.extensions["wallet"]
        with state.sessions() as s:
            report = run_daily(s, day, merchant_id=self.merchant_id)
            s.commit()
        return report


def make_merchant(app: Flask, name: str = "Merchant",
                  time_zone: str | None = None) -> tuple[int, str]:
    """A merchant and its API key; its time zone is the service's default unless given."""
    from wallet_service.services.merchants import create_merchant

    zone = time_zone or app.extensions["wallet"].settings.default_time_zone
    with app.extensions["wallet"].sessions() as s:
        merchant, _key, raw = create_merchant(s, name, time_zone=zone)
        s.commit()
        return merchant.id, raw
