"""Tiers the merchant assigns (a paid or VIP membership), and the tier a program's rules give
a card on a day.

An assigned tier takes effect at once: a ``tier_set`` ledger entry sets it, so the history
explains it, and the card gets a new version if the tier changed. It is kept on the card
(``manual_tier``, ``manual_tier_until``) and the daily tier review
(:func:`.automations.run_daily`) does not lower the card below it through its last day;
the first review after that day recomputes the tier by the program's rules and forgets the
assignment. Purchases may still raise the card above it, as they raise any tier.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceConflict
from ..errors import ValidationFailed
from ..local_time import local_date
from ..models import LoyaltyCard
from ..models import Member
from ..rules import tier_for
from . import ledger
from .members import get_member
from .merchants import time_zone_of

CARDS = LoyaltyCard.__table__


def assign_tier(session: Session, merchant_id: int, member_id: int, tier: str,
                until: dt.date | None, *, today: dt.date | None = None,
                actor: ledger.Actor = ledger.NOBODY) -> Member:
    """Give the member's card ``tier`` now and hold it against the daily review through
    ``until`` (for ever without one), a day of the merchant's calendar like ``today``
    (default: the merchant's date now). The name is matched regardless of case.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ValidationFailed: the program has no such tier (``tier``); ``until`` is before
        ``today`` (``until``).
    :raises ResourceConflict: the card is closed.
    """
    member = get_member(session, merchant_id, member_id)
    card = ledger.lock_card(session, member.card.id)
    names = {t["name"].casefold(): t["name"] for t in card.rules.get("tiers") or ()}
    name = names.get(tier.casefold())
    if name is None:
        known = ", ".join(names.values()) or "none"
        raise ValidationFailed(f"tier: the program has no tier {tier!r} (its tiers: {known})",
                               field="tier")
    today = today or local_date(utcnow(), time_zone_of(session, merchant_id))
    if until is not None and until < today:
        raise ValidationFailed(f"until: {until.isoformat()} is in the past; give today or a "
                               "later day", field="until")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    held = f" until {until.isoformat()}" if until is not None else ""
    ledger.apply_change(session, merchant_id, card, ledger.Change(
        "tier_set", set_tier=True, tier=name,
        reason=f"tier {name} assigned by the merchant{held}",
        details={"rule": "manual_tier", "from": card.tier, "to": name,
                 "until": until.isoformat() if until is not None else None}), actor=actor)
    session.execute(update(CARDS).where(CARDS.c.id == card.id)
                    .values(manual_tier=name, manual_tier_until=until))
    session.refresh(member.card)
    return member


def end_manual_tier(session: Session, merchant_id: int, member_id: int, *,
                    today: dt.date | None = None,
                    actor: ledger.Actor = ledger.NOBODY) -> Member:
    """End the merchant's tier assignment now: the card takes the tier the program's rules
    give it today (it may go down), recorded as ``tier_set``. Ending when no assignment
    holds changes nothing.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ResourceConflict: the card is closed.
    """
    member = get_member(session, merchant_id, member_id)
    card = ledger.lock_card(session, member.card.id)
    held = session.execute(select(CARDS.c.manual_tier, CARDS.c.manual_tier_until)
                           .where(CARDS.c.id == card.id)).one()
    if held.manual_tier is None:
        return member
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    time_zone = time_zone_of(session, merchant_id)
    today = today or local_date(utcnow(), time_zone)
    due = tier_for(card.rules, card.currency,
                   ledger.tier_totals(session, card, card.rules, today, time_zone=time_zone))
    ledger.apply_change(session, merchant_id, card, ledger.Change(
        "tier_set", set_tier=True, tier=due,
        reason=f"tier {held.manual_tier} assigned by the merchant ended; by the program's "
               f"rules: {due or 'none'}",
        details={"rule": "manual_tier_end", "from": card.tier, "to": due,
                 "until": (held.manual_tier_until.isoformat()
                           if held.manual_tier_until is not None else None)}), actor=actor)
    session.execute(update(CARDS).where(CARDS.c.id == card.id)
                    .values(manual_tier=None, manual_tier_until=None))
    session.refresh(member.card)
    return member
