"""Sample programs and cards for the Google Wallet adapter tests."""

from __future__ import annotations

from dataclasses import replace

from wallet_service.google import GoogleCard
from wallet_service.google import GoogleProgram
from wallet_service.google import GoogleStore

ISSUER = "3388000000012345678"

PROGRAM = GoogleProgram(
    program_id=42,
    name={"ru": "Кофейные баллы", "en": "Coffee Points"},
    merchant_name={"ru": "Кофейня Акме", "en": "Acme Coffee"},
    logo_url="https://cdn.example.com/acme/logo-660.v3.png",
    hero_url="https://cdn.example.com/acme/hero.v1.png",
    background_color="#1A73E8",
    languages=("ru", "en"),
    logo_text="ACME",
    points_label={"ru": "Баллы", "en": "Points"},
    rules={"ru": "1 балл за 100 ₽", "en": "1 point per 100 RUB"},
    terms="https://acme.example/terms",
    phone="+7 (495) 123-45-67",
    website="https://acme.example",
    stores=tuple(GoogleStore(55.75 + i / 100, 37.61 + i / 100, f"Store {i}") for i in range(10)),
    barcode_format="qr",
    tiers=True,
    country_code="RU",
    callback_url="https://cards.example.com/wallet/google/callback",
)

MINIMAL_PROGRAM = GoogleProgram(
    program_id="p-1", name="Rewards", merchant_name="Shop",
    logo_url="https://cdn.example.com/logo.png", background_color="#fff", languages=("en",))

CARD = GoogleCard(serial="2000000000015", member_name="Анна Петрова", balance=1250, tier="Gold",
                  card_url="https://cards.example.com/c/Zx81opaque")


def card(**changes: object) -> GoogleCard:
    return replace(CARD, **changes)  # type: ignore[arg-type]


def program(**changes: object) -> GoogleProgram:
    return replace(PROGRAM, **changes)  # type: ignore[arg-type]
