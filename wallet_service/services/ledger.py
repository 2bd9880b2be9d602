"""The points ledger: every balance change is an immutable row written together with the
card's new balance, tier and version, in the caller's transaction.

Concurrency: the card row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serializes writers with ``BEGIN IMMEDIATE``) before the balance is read, so concurrent
requests on one card queue instead of overwriting each other.

Idempotency: a request carrying an ``Idempotency-Key`` stores the key and a hash of the
request on its transaction row (unique per merchant). A retry finds that row and answers
with the same result; the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_FLOOR
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InsufficientBalance
from ..errors import InvalidInput
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..schemas import TransactionCreate
from .programs import earning_rule
from .tiers import minor_units
from .tiers import multiplier_for
from .tiers import tier_for


@dataclass(frozen=True)
class Posted:
    transaction: LedgerTransaction
    member_id: int
    replayed: bool


def request_fingerprint(member_id: int, data: TransactionCreate) -> str:
    body = json.dumps(
        {"member_id": member_id, **data.model_dump(mode="json")}, sort_keys=True
    )
    return hashlib.sha256(body.encode()).hexdigest()


def points_for_amount(program: LoyaltyProgram, amount_minor: int, tier: str | None) -> int:
    """Points earned for a purchase: the earning rule times the tier multiplier, rounded down."""
    rule = earning_rule(program)
    per_minor = rule.per_amount * minor_units(program)
    raw = Decimal(amount_minor) * rule.points * multiplier_for(program, tier) / per_minor
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))


def to_minor(program: LoyaltyProgram, amount: Decimal) -> int:
    """:raises InvalidInput: more decimals than the currency has."""
    scaled = amount * minor_units(program)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"amount: {amount} has more decimals than {program.currency} allows", field="amount"
        )
    return int(scaled)


def post_transaction(
    session: Session,
    merchant_id: int,
    member_id: int,
    data: TransactionCreate,
    *,
    idempotency_key: str | None = None,
) -> Posted:
    """Apply one earn, redeem or adjust to a member's card.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises InsufficientBalance: the balance would go below zero.
    :raises ResourceConflict: the card is closed.
    :raises ValidationFailed: the idempotency key was used for a different request.
    """
    fingerprint = request_fingerprint(member_id, data) if idempotency_key else None
    if idempotency_key and (done := _replay(session, merchant_id, idempotency_key, fingerprint)):
        return done

    card = session.scalar(
        select(LoyaltyCard)
        .where(LoyaltyCard.member_id == member_id, LoyaltyCard.merchant_id == merchant_id)
        .with_for_update()
    )
    if card is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    # A retry that waited on the lock above sees the first attempt's row now.
    if idempotency_key and (done := _replay(session, merchant_id, idempotency_key, fingerprint)):
        return done
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")

    program = session.get_one(LoyaltyProgram, card.program_id)
    amount_minor = to_minor(program, data.amount) if data.amount is not None else None
    if data.type == "earn":
        points = (
            data.points
            if amount_minor is None
            else points_for_amount(program, amount_minor, card.tier)
        )
    elif data.type == "redeem":
        points = -(data.points or 0)
    else:
        points = data.points or 0

    new_balance = card.balance + points
    if new_balance < 0:
        raise InsufficientBalance(
            f"points: the balance is {card.balance}, {-points} cannot be taken",
            field="points",
            balance=card.balance,
        )
    lifetime_points = card.lifetime_points
    if data.type == "earn" or data.type == "adjust":
        lifetime_points = max(0, lifetime_points + points)
    lifetime_spend = card.lifetime_spend_minor + (amount_minor or 0)
    new_tier = tier_for(program, lifetime_points=lifetime_points, lifetime_spend_minor=lifetime_spend)

    txn = LedgerTransaction(
        merchant_id=merchant_id,
        card_id=card.id,
        type=data.type,
        points=points,
        amount_minor=amount_minor,
        reason=data.reason,
        balance_after=new_balance,
        tier_after=new_tier,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            if (new_balance, new_tier) != (card.balance, card.tier):
                card.version += 1
                card.updated_at = txn.created_at
            card.balance = new_balance
            card.tier = new_tier
            card.lifetime_points = lifetime_points
            card.lifetime_spend_minor = lifetime_spend
            session.add(txn)
            session.flush()
    except IntegrityError:
        # The same key was committed concurrently for another member's request.
        done = _replay(session, merchant_id, idempotency_key or "", fingerprint)
        if done is None:
            raise
        return done
    return Posted(txn, member_id, replayed=False)


def _replay(
    session: Session, merchant_id: int, key: str, fingerprint: str | None
) -> Posted | None:
    row = session.execute(
        select(LedgerTransaction, Member.id)
        .join(LoyaltyCard, LoyaltyCard.id == LedgerTransaction.card_id)
        .join(Member, Member.id == LoyaltyCard.member_id)
        .where(
            LedgerTransaction.merchant_id == merchant_id,
            LedgerTransaction.idempotency_key == key,
        )
    ).first()
    if row is None:
        return None
    txn, member_id = row
    if txn.request_hash != fingerprint:
        raise ValidationFailed(
            "Idempotency-Key: this key was already used for a different request",
            field="Idempotency-Key",
        )
    return Posted(txn, member_id, replayed=True)


def list_transactions(
    session: Session,
    merchant_id: int,
    member_id: int,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[LedgerTransaction]:
    """The member's transactions, newest first.

    :raises ResourceNotFound: the member is missing or another merchant's.
    """
    card_id = session.scalar(
        select(LoyaltyCard.id).where(
            LoyaltyCard.member_id == member_id, LoyaltyCard.merchant_id == merchant_id
        )
    )
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    query = (
        select(LedgerTransaction)
        .where(LedgerTransaction.card_id == card_id)
        .order_by(LedgerTransaction.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(LedgerTransaction.id < before_id)
    return list(session.scalars(query))
