"""The daily job: expiry, reminders, birthday and win-back bonuses, tier review.

Bonuses are paid through :mod:`.bonuses` (natural idempotency keys, so a day run twice
gives nothing twice).

:func:`run_daily` is the one entry point the worker calls once a day (any number of times is
harmless). It takes the day to run for, so tests move the clock by passing another day:

1. expire what is left of point lots whose ``expires_on`` has come (oldest first);
2. remind on the card of points expiring within ``expiry_reminder_days``;
3. birthday bonuses (members born on 29 February get theirs on 28 February in common years);
4. win-back bonuses for members without a purchase for ``winback_after_days``;
5. tier review: cards whose tier basis fell below their tier move down.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import Any

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Coupon
from ..models import CouponGrant
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import PointLot
from ..rules import Totals
from ..rules import tier_for
from ..rules import tier_rank
from . import ledger
from .bonuses import grant_bonus
from .campaigns import set_messages
from .outbox import publish_cards

CARDS = LoyaltyCard.__table__
LOTS = PointLot.__table__


# --- the daily job ----------------------------------------------------------------------


def is_birthday(birthday: dt.date, today: dt.date) -> bool:
    """Whether ``today`` is the birthday; 29 February counts on 28 February in common years."""
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    return ((birthday.month, birthday.day) == (2, 29) and (today.month, today.day) == (2, 28)
            and not calendar.isleap(today.year))


def run_daily(session: Session, today: dt.date, *, merchant_id: int | None = None
              ) -> dict[str, Any]:
    """Run the day's automations for every program (or one merchant's); idempotent.

    The caller commits. Returns counts of what was done.
    """
    now = dt.datetime.combine(today, dt.time(6), dt.UTC)
    query = select(LoyaltyProgram).order_by(LoyaltyProgram.id)
    if merchant_id is not None:
        query = query.where(LoyaltyProgram.merchant_id == merchant_id)
    report = {"day": today, "expired": 0, "reminded": 0, "birthdays": 0, "winbacks": 0,
              "downgrades": 0, "coupons_refreshed": 0}
    for program in session.scalars(query).all():
        rules = program.rules
        if rules.get("points_validity_days"):
            report["expired"] += _expire(session, program, today, now)
            report["reminded"] += _remind(session, program, today, now)
        bonuses = rules.get("bonuses") or {}
        if bonuses.get("birthday"):
            report["birthdays"] += _birthdays(session, program, int(bonuses["birthday"]),
                                              today, now)
        if bonuses.get("winback"):
            report["winbacks"] += _winbacks(session, program, bonuses, today, now)
        if rules.get("tiers"):
            report["downgrades"] += _review_tiers(session, program, today, now)
        report["coupons_refreshed"] += _coupon_windows(session, program, now)
    return report


def _coupon_windows(session: Session, program: LoyaltyProgram, now: dt.datetime) -> int:
    """Cards whose unused coupon started or ended since the card last changed get a new
    version, so the coupon appears on (or leaves) the phone. A refreshed card has
    ``updated_at`` past the boundary, so running the day again changes nothing."""
    boundaries = (Coupon.valid_from, Coupon.valid_until)
    stale: set[int] = set()
    for boundary in boundaries:
        stale.update(session.scalars(
            select(CARDS.c.id)
            .join(CouponGrant, CouponGrant.card_id == CARDS.c.id)
            .join(Coupon, Coupon.id == CouponGrant.coupon_id)
            .where(Coupon.program_id == program.id, CouponGrant.used_at.is_(None),
                   boundary.is_not(None), boundary <= now, CARDS.c.updated_at < boundary)
        ))
    return publish_cards(session, sorted(stale), now)


def _expire(session: Session, program: LoyaltyProgram, today: dt.date, now: dt.datetime) -> int:
    lots = session.execute(
        select(LOTS.c.id, LOTS.c.card_id, LOTS.c.expires_on, LOTS.c.transaction_id)
        .join(CARDS, CARDS.c.id == LOTS.c.card_id)
        .where(CARDS.c.program_id == program.id, LOTS.c.expires_on <= today,
               LOTS.c.remaining > 0)
        .order_by(LOTS.c.card_id, LOTS.c.expires_on, LOTS.c.id)
    ).all()
    done = 0
    for lot in lots:
        card = ledger.lock_card(session, lot.card_id)
        remaining = session.scalar(select(LOTS.c.remaining).where(LOTS.c.id == lot.id))
        if not remaining:
            continue  # spent meanwhile
        ledger.apply_change(session, program.merchant_id, card, ledger.Change(
            "expire", points=-int(remaining), cap_at_zero=True, expire_lot=lot.id,
            reference_id=lot.transaction_id,
            reason=f"points valid until {lot.expires_on.isoformat()} expired",
            details={"rule": "expiry", "lot_id": lot.id}),
            now=now, idempotency_key=f"expire:{lot.id}")
        done += 1
    return done


_REMINDER = {
    "ru": "{points} баллов сгорят {date}. Успейте потратить!",
    "en": "{points} points expire on {date}. Use them before then!",
}


def _remind(session: Session, program: LoyaltyProgram, today: dt.date, now: dt.datetime) -> int:
    horizon = today + dt.timedelta(days=int(program.rules.get("expiry_reminder_days", 14)))
    rows = session.execute(
        select(LOTS.c.card_id, LOTS.c.expires_on, LOTS.c.remaining)
        .join(CARDS, CARDS.c.id == LOTS.c.card_id)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               LOTS.c.expires_on > today, LOTS.c.expires_on <= horizon, LOTS.c.remaining > 0)
    ).all()
    first: dict[int, dt.date] = {}
    for r in rows:
        first[r.card_id] = min(first.get(r.card_id, r.expires_on), r.expires_on)
    per_date: dict[int, int] = defaultdict(int)
    for r in rows:
        if r.expires_on == first[r.card_id]:
            per_date[r.card_id] += r.remaining
    language = program.languages[0] if program.languages else "en"
    template = _REMINDER.get(language, _REMINDER["en"])
    reminded = 0
    for card_id, points in per_date.items():
        text = template.format(points=points,
                               date=format_date(first[card_id], "long", locale=language))
        reminded += set_messages(session, [card_id], text, None, now)
    return reminded


def _birthdays(session: Session, program: LoyaltyProgram, amount: int, today: dt.date,
               now: dt.datetime) -> int:
    rows = session.execute(
        select(CARDS.c.id, Member.birthday)
        .join(Member, Member.id == CARDS.c.member_id)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               Member.birthday.is_not(None))
    ).all()
    granted = 0
    for r in rows:
        if is_birthday(r.birthday, today) and grant_bonus(
                session, program.merchant_id, r.id, amount, "birthday",
                key=f"birthday:{r.id}:{today.year}", reason=f"birthday bonus {today.year}",
                now=now):
            granted += 1
    return granted


def _winbacks(session: Session, program: LoyaltyProgram, bonuses: dict[str, Any],
              today: dt.date, now: dt.datetime) -> int:
    days = int(bonuses.get("winback_after_days", 60))
    before = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(), dt.UTC)
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.last_visit_at)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               CARDS.c.last_visit_at.is_not(None), CARDS.c.last_visit_at < before)
    ).all()
    granted = 0
    for r in rows:
        # Once per spell of inactivity: the key names the last visit.
        if grant_bonus(session, program.merchant_id, r.id, int(bonuses["winback"]), "winback",
                       key=f"winback:{r.id}:{r.last_visit_at.date().isoformat()}",
                       reason=f"we miss you: no visit since {r.last_visit_at.date()}", now=now):
            granted += 1
    return granted


def _review_tiers(session: Session, program: LoyaltyProgram, today: dt.date,
                  now: dt.datetime) -> int:
    rules = program.rules
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.tier, CARDS.c.lifetime_points, CARDS.c.lifetime_spend_minor,
               CARDS.c.visits)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               CARDS.c.tier.is_not(None))
    ).all()
    lowered = 0
    for r in rows:
        if rules.get("tier_window_days"):
            totals = ledger.window_totals(session, r.id, rules, today)
        else:
            totals = Totals(r.lifetime_points, r.lifetime_spend_minor, r.visits)
        due = tier_for(rules, program.currency, totals)
        if tier_rank(rules, due) >= tier_rank(rules, r.tier) and tier_rank(rules, r.tier) >= 0:
            continue
        card = ledger.lock_card(session, r.id)
        ledger.apply_change(session, program.merchant_id, card, ledger.Change(
            "tier", set_tier=True, tier=due,
            reason=f"tier review {today.isoformat()}: {r.tier} → {due or 'none'}",
            details={"rule": "tier_review", "from": r.tier, "to": due,
                     "basis": rules.get("tier_basis"),
                     "value": [totals.points, totals.spend_minor, totals.visits]}), now=now)
        lowered += 1
    return lowered
