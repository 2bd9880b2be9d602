"""Bonuses outside purchases: welcome, referral and actions (a survey, a review).

Every bonus is a ledger entry of type ``bonus`` whose ``details.rule`` names the rule
(``welcome``, ``birthday``, ``referral``, ``winback``, ``action``) and whose idempotency key
is natural (``birthday:<card>:<year>``), so granting it twice gives nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..models import LoyaltyCard
from . import ledger

CARDS = LoyaltyCard.__table__


def grant_bonus(
    session: Session, merchant_id: int, card_id: int, amount: int, rule: str, *,
    key: str | None, reason: str | None = None, details: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ledger.Entry | None:
    """Credit ``amount`` in the program's balance unit (stamps in a stamp program). Returns
    None when the key was used already, the card is closed, or the program has no balance
    (discount programs)."""
    card = ledger.lock_card(session, card_id)
    if key is not None and ledger.key_used(session, merchant_id, key):
        return None
    if card.status != "active" or card.kind == "discount" or amount <= 0:
        return None
    change = ledger.Change("bonus", reason=reason or f"{rule} bonus",
                           details={"rule": rule, **(details or {})})
    if card.kind == "stamps":
        change.stamps = amount
    else:
        change.points = change.lifetime_points = amount
    return ledger.apply_change(session, merchant_id, card, change, now=now,
                               idempotency_key=key)


def grant_referral(session: Session, merchant_id: int, card_id: int, referrer_id: int,
                   rules: dict[str, Any]) -> None:
    """Both sides' bonuses once the referred member made a first purchase."""
    bonuses = rules.get("bonuses") or {}
    grant_bonus(session, merchant_id, card_id, int(bonuses.get("referred", 0)), "referral",
                key=f"referral:{card_id}:referred", details={"referrer_card_id": referrer_id})
    grant_bonus(session, merchant_id, referrer_id, int(bonuses.get("referrer", 0)), "referral",
                key=f"referral:{card_id}:referrer", details={"referred_card_id": card_id})


def record_action(session: Session, merchant_id: int, member_id: int, action: str,
                  reference: str | None) -> ledger.Entry:
    """The bonus the program gives for ``action`` (a survey, a review).

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ValidationFailed: the program gives no bonus for this action.
    :raises ResourceConflict: this action (same reference) earned its bonus already, or the
        card is closed.
    """
    card_id = session.scalar(select(CARDS.c.id).where(CARDS.c.member_id == member_id,
                                                      CARDS.c.merchant_id == merchant_id))
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    card = ledger.lock_card(session, card_id)
    actions = (card.rules.get("bonuses") or {}).get("actions") or {}
    if action not in actions:
        raise ValidationFailed(f"action: the program gives no bonus for {action!r}",
                               field="action")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    key = f"action:{card_id}:{action}:{reference}" if reference else None
    entry = grant_bonus(session, merchant_id, card_id, int(actions[action]), "action",
                        key=key, reason=f"{action} bonus",
                        details={"action": action, "reference": reference})
    if entry is None:
        raise ResourceConflict(f"reference: {action} {reference!r} earned its bonus already",
                               field="reference")
    return entry
