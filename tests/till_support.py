"""A till for tests: a store, staff with PINs and a registered device, driven through the
till's own JSON calls as its page drives them (importable from any test module)."""

from __future__ import annotations

import itertools
from typing import Any

from api_support import Api
from console_support import PASSWORD
from console_support import make_user
from flask import Flask

from wallet_service.services import till

PIN = "4711"
_keys = itertools.count(1)


def set_pin(app: Flask, merchant_id: int, user_id: int, pin: str = PIN) -> None:
    with app.extensions["wallet"].sessions() as s:
        till.set_pin(s, merchant_id, user_id, pin)
        s.commit()


def set_limits(app: Flask, merchant_id: int, user_id: int | None, **limits: int) -> None:
    with app.extensions["wallet"].sessions() as s:
        till.set_limits(s, merchant_id, user_id, till.Limits(**limits))
        s.commit()


def store(api: Api, name: str = "Tverskaya") -> int:
    r = api.post("/locations", {"name": name, "address": f"{name} 1", "latitude": 55.75,
                                "longitude": 37.61})
    assert r.status_code == 201, r.json
    return int(r.json["id"])


class Till:
    """One device registered as a till of ``location_id``; ``sign_in`` a staff user."""

    def __init__(self, app: Flask, api: Api, location_id: int | None = None,
                 manager: tuple[int, str] | None = None) -> None:
        self.app = app
        self.api = api
        self.client = app.test_client()
        self.location_id = location_id or store(api)
        self.manager_id, manager_email = manager or make_user(
            app, api.merchant_id, "manager", email=f"manager{next(_keys)}@example.test")
        r = self.post("/till/api/device", {"email": manager_email, "password": PASSWORD,
                                           "location_id": self.location_id, "name": "Till 1"})
        assert r.status_code == 201, r.json

    def csrf(self) -> str:
        return str(self.client.get("/till/api/state").json["csrf"])

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body,
                                headers={"X-CSRF-Token": self.csrf(), **(headers or {})})

    def staff(self, role: str = "staff", email: str | None = None) -> int:
        user_id, _ = make_user(self.app, self.api.merchant_id, role,
                               email=email or f"staff{next(_keys)}@example.test")
        set_pin(self.app, self.api.merchant_id, user_id)
        return user_id

    def sign_in(self, user_id: int, pin: str = PIN) -> Any:
        return self.post("/till/api/sign-in", {"user_id": user_id, "pin": pin})

    def lookup(self, code: str, scanned: bool = True) -> Any:
        return self.post("/till/api/lookup", {"code": code, "scanned": scanned})

    def act(self, member_id: int, key: str | None = None, **body: Any) -> Any:
        key = key or f"device-key-{next(_keys)}"
        return self.post(f"/till/api/members/{member_id}/actions", body,
                         headers={"Idempotency-Key": key})
