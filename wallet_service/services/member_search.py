"""Finding a merchant's members as a person types: by name, phone or card number, narrowed by
tier, last visit and balance (the console's Members page).

Digits typed (three or more) match inside phone numbers and card numbers; anything else
matches inside names, regardless of case. The phone's E.164 form is matched as well, so "8 912
345" finds "+7 912 345-67-89" in Russia. Erased members have no name or phone left to match;
their card number still finds them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from ..db import utcnow
from ..models import LoyaltyCard
from ..models import Member

#: Most members one search returns.
MAX_RESULTS = 50
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class MemberFilter:
    """What the person typed and chose. ``visited``: ``30d``/``90d`` (a purchase within so
    many days), ``lapsed`` (none in 90 days, but some before) or ``never``."""

    text: str = ""
    tier: str | None = None
    visited: str | None = None
    balance_min: int | None = None
    balance_max: int | None = None
    status: str | None = None  # "active" or "closed"


def search_members(session: Session, merchant_id: int, query: MemberFilter, *,
                   limit: int = MAX_RESULTS, now: dt.datetime | None = None) -> list[Member]:
    """The merchant's members matching ``query``, most recent first (with their cards)."""
    now = now or utcnow()
    statement = (
        select(Member).join(LoyaltyCard, LoyaltyCard.member_id == Member.id)
        .options(joinedload(Member.card))
        .where(Member.merchant_id == merchant_id)
        .order_by(Member.id.desc()).limit(max(1, min(limit, MAX_RESULTS))))
    text = " ".join(query.text.split())[:100]
    if text:
        statement = statement.where(_matches(session, text))
    if query.tier:
        statement = statement.where(LoyaltyCard.tier == query.tier)
    if query.visited in ("30d", "90d"):
        days = 30 if query.visited == "30d" else 90
        statement = statement.where(LoyaltyCard.last_visit_at >= now - dt.timedelta(days=days))
    elif query.visited == "lapsed":
        statement = statement.where(LoyaltyCard.last_visit_at < now - dt.timedelta(days=90))
    elif query.visited == "never":
        statement = statement.where(LoyaltyCard.last_visit_at.is_(None))
    if query.balance_min is not None:
        statement = statement.where(LoyaltyCard.balance >= query.balance_min)
    if query.balance_max is not None:
        statement = statement.where(LoyaltyCard.balance <= query.balance_max)
    if query.status in ("active", "closed"):
        statement = statement.where(LoyaltyCard.status == query.status)
    return list(session.scalars(statement).unique())


def _matches(session: Session, text: str) -> ColumnElement[bool]:
    digits = "".join(_DIGITS.findall(text))
    conditions: list[ColumnElement[bool]] = []
    if len(digits) >= 3 and len(digits) >= len(text.replace(" ", "").strip("+()-")) - 2:
        conditions.append(LoyaltyCard.serial_number.contains(digits, autoescape=True))
        conditions.append(Member.phone.contains(digits, autoescape=True))
        if digits.startswith("8") and len(digits) > 3:
            # A Russian number typed with its trunk prefix: 8 912 … is +7 912 …
            conditions.append(Member.phone.contains("7" + digits[1:], autoescape=True))
    if session.get_bind().dialect.name == "postgresql":
        conditions.append(Member.name.ilike(f"%{_escape(text)}%", escape="\\"))
    else:
        # SQLite folds the case of ASCII letters only: try the spellings a name has.
        for variant in {text, text.lower(), text.upper(), text.capitalize(), text.title()}:
            conditions.append(Member.name.contains(variant, autoescape=True))
    conditions.append(Member.email.contains(text.lower(), autoescape=True))
    return or_(*conditions)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tiers_in_use(session: Session, merchant_id: int) -> list[str]:
    """The tiers the merchant's cards have now, for the tier filter."""
    return sorted(t for t in session.scalars(
        select(LoyaltyCard.tier).where(LoyaltyCard.merchant_id == merchant_id,
                                       LoyaltyCard.tier.is_not(None)).distinct()) if t)
