"""Bonuses outside purchases: welcome, referral and actions (a survey, a review).

Every bonus is a ledger entry of type ``bonus`` whose ``details.rule`` names the rule
(``welcome``, ``birthday``, ``referral``, ``winback``, ``action``) and whose natural key
(``birthday:<card>:<year>``) makes granting it twice give nothing twice. Natural keys have a
namespace of their own (:func:`.ledger.natural_key_is`): a client's ``Idempotency-Key`` that
looks like one neither stops a bonus nor is taken by it. An action earns once per reference
it is reported with; without one, once per member per ``bonuses.action_period_days`` (once
ever when the program sets no period).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..models import LoyaltyCard
from . import ledger

CARDS = LoyaltyCard.__table__
TXNS = ledger.TXN


def grant_bonus(
    session: Session, merchant_id: int, card_id: int, amount: int, rule: str, *,
    key: str | None, reason: str | None = None, details: dict[str, Any] | None = None,
    now: dt.datetime | None = None, reference_id: int | None = None,
    idempotency: ledger.IdempotencyScope | None = None,
    actor: ledger.Actor = ledger.NOBODY,
) -> ledger.Entry | None:
    """Credit ``amount`` in the program's balance unit (stamps in a stamp program), once per
    natural ``key``; the entry also keeps a client's key with its scope (``idempotency``),
    when the bonus was asked for with one. Returns None when the natural key was used
    already, the card is closed, or the program has no balance (discount programs)."""
    card = ledger.lock_card(session, card_id)
    if key is not None and ledger.natural_key_used(session, merchant_id, key):
        return None
    if card.status != "active" or card.kind == "discount" or amount <= 0:
        return None
    change = ledger.Change("bonus", reason=reason or f"{rule} bonus", reference_id=reference_id,
                           details={"rule": rule, **(details or {})})
    if card.kind == "stamps":
        change.stamps = amount
    else:
        change.points = change.lifetime_points = amount
    return ledger.apply_change(session, merchant_id, card, change, now=now,
                               natural_key=key, idempotency=idempotency, actor=actor)


def grant_referral(session: Session, merchant_id: int, card_id: int, referrer_id: int,
                   rules: dict[str, Any], purchase_id: int, *,
                   actor: ledger.Actor = ledger.NOBODY) -> ledger.Entry | None:
    """Both sides' bonuses once the referred member made a first purchase (``purchase_id``,
    which both entries reference). Returns the referred card's entry, if it got one."""
    bonuses = rules.get("bonuses") or {}
    referred = grant_bonus(session, merchant_id, card_id, int(bonuses.get("referred", 0)),
                           "referral", key=_referred_key(card_id), reference_id=purchase_id,
                           details={"referrer_card_id": referrer_id}, actor=actor)
    grant_bonus(session, merchant_id, referrer_id, int(bonuses.get("referrer", 0)), "referral",
                key=f"referral:{card_id}:referrer", reference_id=purchase_id,
                details={"referred_card_id": card_id}, actor=actor)
    return referred


def referral_paid_with(session: Session, merchant_id: int, card_id: int,
                       purchase: ledger.Entry) -> ledger.Entry | None:
    """The referral bonus the card got with ``purchase``, its first, if any (a replayed
    request answers with it, as the first answer did)."""
    row = session.execute(
        select(TXNS).where(TXNS.c.merchant_id == merchant_id,
                           ledger.natural_key_is(_referred_key(card_id)),
                           TXNS.c.reference_id == purchase.id)
    ).first()
    return None if row is None else ledger.entry_from_row(row, purchase.member_id)


def _referred_key(card_id: int) -> str:
    return f"referral:{card_id}:referred"


def record_action(session: Session, merchant_id: int, member_id: int, action: str,
                  reference: str | None, *, now: dt.datetime | None = None,
                  idempotency_key: str | None = None,
                  actor: ledger.Actor = ledger.NOBODY) -> ledger.Posted:
    """The bonus the program gives for ``action`` (a survey, a review): once per
    ``reference``; without one, once per member per ``bonuses.action_period_days`` (once
    ever when the program sets no period). With ``idempotency_key`` (the ``action``
    operation), a retry answers with the first bonus instead of a conflict.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ValidationFailed: the program gives no bonus for this action, or the idempotency
        key was used in another scope (:func:`.ledger.replay`).
    :raises ResourceConflict: this action (same reference, or none within the period) earned
        its bonus already, or the card is closed.
    """
    card_id = session.scalar(select(CARDS.c.id).where(CARDS.c.member_id == member_id,
                                                      CARDS.c.merchant_id == merchant_id))
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    card = ledger.lock_card(session, card_id)
    scope = ledger.IdempotencyScope.of(idempotency_key, "action", member_id,
                                       {"action": action, "reference": reference})
    done = ledger.replay(session, merchant_id, scope)
    if done:
        return done
    bonuses = card.rules.get("bonuses") or {}
    actions = bonuses.get("actions") or {}
    if action not in actions:
        raise ValidationFailed(f"action: the program gives no bonus for {action!r}",
                               field="action")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    now = now or utcnow()
    if reference:
        key = f"action:{card_id}:{action}:{reference}"
    else:
        key = _unreferenced_action_key(session, card_id, action,
                                       bonuses.get("action_period_days"), now)
    entry = grant_bonus(session, merchant_id, card_id, int(actions[action]), "action",
                        key=key, reason=f"{action} bonus", now=now,
                        details={"action": action, "reference": reference}, idempotency=scope,
                        actor=actor)
    if entry is None:
        raise ResourceConflict(f"reference: {action} {reference!r} earned its bonus already",
                               field="reference")
    return ledger.Posted(entry, card.currency, replayed=False)


def _unreferenced_action_key(session: Session, card_id: int, action: str,
                             period_days: int | None, now: dt.datetime) -> str:
    """The natural key of an action reported without a reference, if it may earn now.

    Such keys are ``action:<card>:<action>@<n>``, the card's n-th such bonus (counted under
    the card's lock): an action name has no ``@``, so they never meet the keys of referenced
    actions (``action:<card>:<action>:<reference>``).

    :raises ResourceConflict: it earned within the period (or ever, without one).
    """
    prefix = f"action:{card_id}:{action}@"
    paid, last = session.execute(
        select(func.count(), func.max(TXNS.c.created_at))
        .where(TXNS.c.card_id == card_id, TXNS.c.type == "bonus",
               ledger.natural_key_starts(prefix))).one()
    if last is not None:
        if period_days is None:
            raise ResourceConflict(
                f"action: {action} without a reference earned its bonus on {last.date()}; "
                "it earns once (bonuses.action_period_days is not set); give a reference "
                "for another one", field="action")
        again = last + dt.timedelta(days=int(period_days))
        if now < again:
            raise ResourceConflict(
                f"action: {action} without a reference earned its bonus on {last.date()}; "
                f"it earns once every {period_days} days (bonuses.action_period_days), "
                f"next from {again.isoformat(timespec='seconds')}", field="action")
    return f"{prefix}{int(paid) + 1}"
