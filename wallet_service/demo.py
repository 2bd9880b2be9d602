"""The embedded first run: a demo merchant and program on whatever database is configured."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from sqlalchemy import select

from .migrate import upgrade
from .models import LoyaltyProgram
from .models import Merchant
from .schemas import ProgramCreate
from .services.merchants import create_api_key
from .services.programs import create_program

DEMO_MERCHANT = "Demo Coffee"

DEMO_PROGRAM = {
    "name": "Кофейня «Зерно» — бонусы",
    "kind": "points",
    "currency": "RUB",
    "languages": ["ru", "en"],
    "template": "points",
    "design": {
        "background_color": "#3c2a21",
        "foreground_color": "#ffffff",
        "label_color": "#e5c07b",
        "logo_text": "Зерно",
        "description": "Бонусная карта кофейни «Зерно»",
        "rules_text": "10 баллов за каждые 100 ₽. 1 балл = 1 ₽ при оплате.",
        "contact": {"phone": "+7 495 000-00-00", "website": "https://example.com"},
    },
    "earning": {"points": 10, "per_amount": "100"},
    "tier_basis": "lifetime_points",
    "tiers": [
        {"name": "Bronze", "threshold": 0, "multiplier": "1"},
        {"name": "Silver", "threshold": 500, "multiplier": "1.25"},
        {"name": "Gold", "threshold": 1500, "multiplier": "1.5"},
    ],
}


def prepare_demo(app: Flask, base_url: str) -> Iterator[str]:
    """Create (or reuse) the demo merchant and program; yield what to print."""
    state = app.extensions["wallet"]
    upgrade(state.engine)
    with state.sessionmaker() as session:
        merchant = session.scalar(select(Merchant).where(Merchant.name == DEMO_MERCHANT))
        if merchant is None:
            merchant = Merchant(name=DEMO_MERCHANT)
            session.add(merchant)
            session.flush()
        program = session.scalar(
            select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id)
        )
        if program is None:
            program = create_program(session, merchant.id, ProgramCreate.model_validate(DEMO_PROGRAM))
        _key, raw = create_api_key(session, merchant.id, "demo")
        session.commit()
        merchant_id, program_id = merchant.id, program.id
        join_token = program.join_token

    api = f"{base_url}/api/v1"
    yield f"database: {state.settings.database_url}"
    yield f"demo merchant {merchant_id}, program {program_id}"
    yield f"API key (shown once): {raw}"
    yield f"Sign-up page for customers: {base_url}/join/{join_token}"
    yield f"Printable poster with its QR code: {base_url}/join/{join_token}/poster"
    yield ""
    yield "Try it:"
    yield (f"  curl -s -X POST {api}/programs/{program_id}/members -H 'Authorization: Bearer {raw}'"
           " -H 'Content-Type: application/json' -d '{\"name\": \"Anna\", \"phone\": \"+7 912 345-67-89\"}'")
    yield (f"  curl -s -X POST {api}/members/MEMBER_ID/transactions -H 'Authorization: Bearer {raw}'"
           " -H 'Content-Type: application/json' -d '{\"type\": \"earn\", \"amount\": \"450.00\"}'")
    yield "  (MEMBER_ID is the \"id\" of the member the first command returns)"
    yield f"API docs: {api}/docs"
    yield ""
