"""Shared values and helpers for the pass tests (imported by conftest and test modules)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from wallet_service.apple import CardContent
from wallet_service.apple import Design
from wallet_service.apple import MerchantContact
from wallet_service.apple import StoreLocation

PASS_TYPE_ID = "pass.com.example.loyalty"
TEAM_ID = "ABCDE12345"
TEMPLATE_NAMES = ("points", "stamps", "tiers", "cashback")


def make_design(**changes: Any) -> Design:
    """A fully filled program design; tests override single fields."""
    values: dict[str, Any] = {
        "organization_name": "Example Coffee",
        "description": "Example Coffee loyalty card",
        "logo_text": "Example Coffee",
        "rules_text": "1 point for every 100 spent.",
        "terms_text": "Points expire after 12 months without purchases.",
        "contact": MerchantContact(
            phone="+7 495 123-45-67", website="https://coffee.example.com", email="hi@example.com"
        ),
        "locations": (
            StoreLocation(55.7558, 37.6173, "Tverskaya store: show your card"),
            StoreLocation(59.9343, 30.3351),
        ),
        "languages": ("en", "ru"),
    }
    values.update(changes)
    return Design(**values)


def make_content(**changes: Any) -> CardContent:
    """A fixed member; tests override single fields."""
    values: dict[str, Any] = {
        "serial_number": "6f1c1f3e-0e4b-4a1b-9a4e-2b1e0f3c9d77",
        "pass_type_identifier": PASS_TYPE_ID,
        "team_identifier": TEAM_ID,
        "member_name": "Anna Ivanova",
        "card_number": "CARD00012345",
        "balance": 1250,
        "tier": "Gold",
        "stamps": 7,
        "stamps_goal": 10,
        "cashback_percent": 5,
        "authentication_token": "w8Yc0m1x0v6nq2l0bq3V4rJmH0cA6dTz",
        "web_service_url": "https://wallet.example.com/apple",
        "card_url": "https://wallet.example.com/c/6f1c1f3e",
        "locale": "en",
    }
    values.update(changes)
    return CardContent(**values)


def open_pkpass(data: bytes) -> dict[str, bytes]:
    """All members of a .pkpass archive, by name (fails on duplicate names)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert len(names) == len(set(names)), "duplicate zip entries"
        return {name: archive.read(name) for name in names}
