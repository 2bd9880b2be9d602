"""The embedded first run: a demo merchant and program on whatever database is configured."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import urls
from .local_time import local_date
from .migrate import upgrade
from .models import ConsoleUser
from .models import LoyaltyProgram
from .models import Merchant
from .permissions import Role
from .permissions import Scope
from .schemas import ProgramCreate
from .services.merchants import create_api_key
from .services.programs import create_program
from .state import WalletState

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


def prepare_demo(state: WalletState, base_url: str) -> Iterator[str]:
    """Create (or reuse) the demo merchant and program; yield what to print."""
    upgrade(state.engine)
    with state.sessions() as session:
        merchant = session.scalar(select(Merchant).where(Merchant.name == DEMO_MERCHANT))
        if merchant is None:
            merchant = Merchant(name=DEMO_MERCHANT,
                                time_zone=state.settings.default_time_zone)
            session.add(merchant)
            session.flush()
        program = session.scalar(
            select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id)
        )
        if program is None:
            program = create_program(session, merchant.id,
                                     ProgramCreate.model_validate(DEMO_PROGRAM))
        _key, raw = create_api_key(session, merchant.id, "demo", scope=Scope.ADMIN)
        console_password = _demo_console_user(session, merchant.id)
        session.commit()
        merchant_id, program_id = merchant.id, program.id
        join_token = program.join_token

    api = f"{base_url}/api/v1"
    yield f"database: {state.settings.database_url}"
    yield f"demo merchant {merchant_id}, program {program_id}"
    yield f"API key (shown once): {raw}"
    yield (f"Console: {base_url}/console/  e-mail {DEMO_CONSOLE_EMAIL}  "
           f"password (shown once) {console_password}")
    yield f"Sign-up page for customers: {urls.join_url(base_url, join_token)}"
    yield f"Printable poster with its QR code: {urls.poster_url(base_url, join_token)}"
    yield ""
    yield "Try it:"
    yield (f"  curl -s -X POST {api}/programs/{program_id}/members"
           f" -H 'Authorization: Bearer {raw}' -H 'Content-Type: application/json'"
           " -d '{\"name\": \"Anna\", \"phone\": \"+7 912 345-67-89\"}'")
    yield (f"  curl -s -X POST {api}/members/MEMBER_ID/transactions"
           f" -H 'Authorization: Bearer {raw}' -H 'Content-Type: application/json'"
           " -d '{\"type\": \"earn\", \"amount\": \"450.00\"}'")
    yield "  (MEMBER_ID is the \"id\" of the member the first command returns)"
    yield f"API docs: {api}/docs"
    yield ""


DEMO_CONSOLE_EMAIL = "owner@demo.example"


def _demo_console_user(session: Session, merchant_id: int) -> str:
    """The demo merchant's console owner, with a new password each run (printed once)."""
    from .services import accounts

    password = accounts.generate_password()
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.email == DEMO_CONSOLE_EMAIL))
    if user is None:
        accounts.create_user(session, merchant_id, DEMO_CONSOLE_EMAIL, Role.OWNER,
                             password=password, locale="ru")
    else:
        accounts.set_password(session, user, password)
    return password


SCENARIOS = ("coffee-shop",)

_COFFEE_STAMPS = {
    "name": "Кофейня «Зерно» — кофейная карта",
    "kind": "stamps",
    # The scripted week runs in seconds, so the per-hour stamp limit is off here.
    "stamps": {"goal": 6, "reward": "бесплатный кофе", "max_per_window": None},
    "bonuses": {"welcome": 1},
}
_COFFEE_POINTS = {
    **DEMO_PROGRAM,
    "name": "Кофейня «Зерно» — бонусы и уровни",
    "tier_window_days": 90,
    "tiers": [
        {"name": "Bronze", "threshold": 0, "multiplier": "1"},
        {"name": "Silver", "threshold": 300, "multiplier": "1.25"},
        {"name": "Gold", "threshold": 600, "multiplier": "1.5"},
    ],
    "points_validity_days": 180,
    "excluded": {"categories": ["alcohol"]},
    "bonuses": {"welcome": 50, "birthday": 200, "referrer": 100, "referred": 50,
                "actions": {"review": 30}},
}
_CUSTOMERS = (("Анна", "+7 912 345-67-01"), ("Борис", "+7 912 345-67-02"),
              ("Вера", "+7 912 345-67-03"))
# Per day of the week: (customer index, receipt lines) for the points program.
_WEEK = (
    ((0, [("LATTE", "coffee", "250"), ("CROISSANT", "bakery", "180")]),
     (1, [("FLAT", "coffee", "270")])),
    ((0, [("CAPPU", "coffee", "230")]), (2, [("BEANS-1KG", "beans", "1900")])),
    ((1, [("LATTE", "coffee", "250"), ("WINE", "alcohol", "900")]),),
    ((0, [("LATTE", "coffee", "250")]), (2, [("CAKE", "bakery", "420")])),
    ((0, [("BEANS-1KG", "beans", "1900"), ("LATTE", "coffee", "250")]),),
    ((1, [("CAPPU", "coffee", "230")]), (2, [("FLAT", "coffee", "270")])),
    ((0, [("LATTE", "coffee", "250")]),),
)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def play_scenario(state: WalletState, name: str, base_url: str | None = None, *,
                  clock: Callable[[], dt.datetime] = _utc_now) -> Iterator[str]:
    """A week at a coffee shop: a stamp card and a points program with tiers, three
    customers, daily purchases, a referral, a review bonus, a refund and the daily job.

    The week starts on the merchant's today by ``clock`` (it returns the current moment,
    aware); each of its days the daily job runs for that day, called as the worker calls it
    (the API runs no day to come)."""
    from decimal import Decimal

    from .services import automations
    from .services import bonuses
    from .services.members import NewMember
    from .services.members import enroll_member
    from .services.transactions import Line
    from .services.transactions import Operation
    from .services.transactions import post_transaction

    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; try {', '.join(SCENARIOS)}")
    upgrade(state.engine)
    region = state.settings.default_region
    with state.sessions() as session:
        merchant = Merchant(name=f"{DEMO_MERCHANT} (scenario)",
                            time_zone=state.settings.default_time_zone)
        session.add(merchant)
        session.flush()
        stamps = create_program(session, merchant.id, ProgramCreate.model_validate(_COFFEE_STAMPS))
        points = create_program(session, merchant.id, ProgramCreate.model_validate(_COFFEE_POINTS))
        today = local_date(clock(), merchant.time_zone)
        yield (f"merchant {merchant.id}: stamp program {stamps.id}, points program {points.id}; "
               f"the week starts on {today.isoformat()}")
        cards, stamp_cards = [], []
        for index, (who, phone) in enumerate(_CUSTOMERS):
            referral = cards[0].card.referral_code if index == 2 else None
            cards.append(enroll_member(session, merchant.id, points.id, NewMember(
                name=who, phone=phone, referral_code=referral), default_region=region))
            stamp_cards.append(enroll_member(session, merchant.id, stamps.id, NewMember(
                name=who, phone=phone), default_region=region))
        refundable = None
        for day, sales in enumerate(_WEEK):
            date = today + dt.timedelta(days=day)
            for who, lines in sales:
                receipt = tuple(Line(sku=s, category=c, amount=Decimal(a)) for s, c, a in lines)
                posted = post_transaction(session, merchant.id, cards[who].id,
                                          Operation(type="earn", lines=receipt))
                if lines[0][0] == "BEANS-1KG" and refundable is None:
                    refundable = (cards[who].id, posted.entry.id)
                post_transaction(session, merchant.id, stamp_cards[who].id,
                                 Operation(type="earn", stamps=1))
                e = posted.entry
                yield (f"day {day + 1}: {_CUSTOMERS[who][0]} +{e.points} points "
                       f"(balance {e.balance_after}, tier {e.tier_after})")
            if day == 3:
                bonuses.record_action(session, merchant.id, cards[1].id, "review", "r-1")
                yield f"day {day + 1}: {_CUSTOMERS[1][0]} +30 points for a review"
            if day == 5 and refundable is not None:
                e = post_transaction(session, merchant.id, refundable[0], Operation(
                    type="refund", original_id=refundable[1], amount=Decimal("950"))).entry
                yield f"day {day + 1}: half of the coffee beans returned: {e.points} points"
            automations.run_daily(session, date, merchant_id=merchant.id)
        session.commit()
        yield ""
        for member, stamp_member in zip(cards, stamp_cards, strict=True):
            session.refresh(member.card)
            session.refresh(stamp_member.card)
            yield (f"{member.name}: {member.card.balance} points, tier {member.card.tier}; "
                   f"stamps {stamp_member.card.stamps}/6, free coffees {stamp_member.card.balance}")
        if base_url is not None:
            _key, raw = create_api_key(session, merchant.id, "scenario", scope=Scope.ADMIN)
            session.commit()
            yield ""
            yield f"API key of the scenario's merchant (shown once): {raw}"
            for program in (stamps, points):
                join = urls.join_url(base_url, program.join_token)
                yield f"Sign-up page of {program.name}: {join}"
            for member, stamp_member in zip(cards, stamp_cards, strict=True):
                yield (f"{member.name}'s cards: "
                       f"{urls.card_url(base_url, member.card.download_token)} and "
                       f"{urls.card_url(base_url, stamp_member.card.download_token)}")
            yield f"API docs: {base_url}/api/v1/docs"
