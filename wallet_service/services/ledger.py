"""The points ledger: every balance change is an immutable row written together with the
card's new balance, tier and version, in the caller's transaction.

Concurrency: the card row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serializes writers with ``BEGIN IMMEDIATE``) before the balance is read, so concurrent
requests on one card queue instead of overwriting each other.

Idempotency: a request carrying an ``Idempotency-Key`` stores the key and a hash of the
request on its transaction row (unique per merchant). A retry finds that row and answers
with the same result; the same key with a different request is refused.

This is the hottest path of the service, so it works on columns and Core statements
rather than loading ORM objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
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
from ..schemas import TransactionCreate
from .cards import next_last_modified
from .cards import publish_change
from .tiers import minor_units
from .tiers import points_for_amount
from .tiers import tier_for

TXN = LedgerTransaction.__table__
CARD = LoyaltyCard.__table__

# Statements are built once: constructing them costs more than running them on this path.
_LOCK_CARD = (
    select(
        CARD.c.id, CARD.c.status, CARD.c.balance, CARD.c.tier, CARD.c.version,
        CARD.c.updated_at, CARD.c.last_modified, CARD.c.lifetime_points, CARD.c.lifetime_spend_minor,
        LoyaltyProgram.currency, LoyaltyProgram.rules,
    )
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(CARD.c.member_id == bindparam("member_id"),
           CARD.c.merchant_id == bindparam("merchant_id"))
    .with_for_update(of=CARD)
)
_FIND_KEY = (
    select(TXN, CARD.c.member_id, LoyaltyProgram.currency)
    .join(CARD, CARD.c.id == TXN.c.card_id)
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(TXN.c.merchant_id == bindparam("merchant_id"),
           TXN.c.idempotency_key == bindparam("key"))
)
_INSERT_TXN = insert(TXN).returning(TXN.c.id)
_UPDATE_CARD = (
    update(CARD)
    .where(CARD.c.id == bindparam("card_id"))
    .values({c: bindparam(c) for c in ("balance", "tier", "lifetime_points",
                                       "lifetime_spend_minor", "version", "updated_at",
                                       "last_modified")})
)


@dataclass(frozen=True)
class Entry:
    """One ledger row, as the API shows it."""

    id: int
    member_id: int
    type: str
    points: int
    amount_minor: int | None
    reason: str | None
    balance_after: int
    tier_after: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Posted:
    entry: Entry
    currency: str
    replayed: bool


def request_fingerprint(member_id: int, data: TransactionCreate) -> str:
    body = json.dumps({"member_id": member_id, **data.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def to_minor(currency: str, amount: Decimal) -> int:
    """:raises InvalidInput: more decimals than the currency has."""
    scaled = amount * minor_units(currency)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"amount: {amount} has more decimals than {currency} allows", field="amount"
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

    If a concurrent request commits the same idempotency key for another member first, the
    insert or the commit raises ``IntegrityError``; the caller rolls back and calls again,
    and the retry answers with that request's result (or refuses the mismatch).

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises InsufficientBalance: the balance would go below zero.
    :raises ResourceConflict: the card is closed.
    :raises ValidationFailed: the idempotency key was used for a different request.
    """
    card = session.execute(
        _LOCK_CARD, {"member_id": member_id, "merchant_id": merchant_id}
    ).first()
    if card is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    # Checked under the card lock, so a retry that raced its first attempt sees its row.
    fingerprint = request_fingerprint(member_id, data) if idempotency_key else None
    if idempotency_key and (done := _replay(session, merchant_id, idempotency_key, fingerprint)):
        return done
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")

    rules, currency = card.rules, card.currency
    amount_minor = to_minor(currency, data.amount) if data.amount is not None else None
    if data.type == "earn":
        points = (data.points if amount_minor is None
                  else points_for_amount(rules, currency, amount_minor, card.tier))
    elif data.type == "redeem":
        points = -(data.points or 0)
    else:
        points = data.points or 0

    balance = card.balance + points
    if balance < 0:
        raise InsufficientBalance(
            f"points: the balance is {card.balance}, {-points} cannot be taken",
            field="points",
            balance=card.balance,
        )
    lifetime_points = card.lifetime_points
    if data.type in ("earn", "adjust"):
        lifetime_points = max(0, lifetime_points + points)
    lifetime_spend = card.lifetime_spend_minor + (amount_minor or 0)
    tier = tier_for(rules, currency, lifetime_points=lifetime_points,
                    lifetime_spend_minor=lifetime_spend)

    now = utcnow()
    visible = (balance, tier) != (card.balance, card.tier)
    version = card.version + 1 if visible else card.version
    session.execute(_UPDATE_CARD, {
        "card_id": card.id, "balance": balance, "tier": tier,
        "lifetime_points": lifetime_points, "lifetime_spend_minor": lifetime_spend,
        "version": version,
        "updated_at": now if visible else card.updated_at,
        "last_modified": (next_last_modified(card.last_modified, now) if visible
                          else card.last_modified),
    })
    if visible:
        publish_change(session, card.id, version, now)
    txn_id = session.execute(_INSERT_TXN, {
        "merchant_id": merchant_id, "card_id": card.id, "type": data.type, "points": points,
        "amount_minor": amount_minor, "reason": data.reason, "balance_after": balance,
        "tier_after": tier, "idempotency_key": idempotency_key, "request_hash": fingerprint,
        "created_at": now,
    }).scalar_one()
    entry = Entry(txn_id, member_id, data.type, points, amount_minor, data.reason, balance,
                  tier, now)
    return Posted(entry, currency, replayed=False)


def _replay(
    session: Session, merchant_id: int, key: str, fingerprint: str | None
) -> Posted | None:
    row = session.execute(_FIND_KEY, {"merchant_id": merchant_id, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise ValidationFailed(
            "Idempotency-Key: this key was already used for a different request",
            field="Idempotency-Key",
        )
    return Posted(_entry(row, row.member_id), row.currency, replayed=True)


def _entry(row: object, member_id: int) -> Entry:
    r = row._mapping  # type: ignore[attr-defined]
    return Entry(r["id"], member_id, r["type"], r["points"], r["amount_minor"], r["reason"],
                 r["balance_after"], r["tier_after"], r["created_at"])


def list_transactions(
    session: Session,
    merchant_id: int,
    member_id: int,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[Entry], str]:
    """The member's transactions, newest first, and the program's currency.

    :raises ResourceNotFound: the member is missing or another merchant's.
    """
    found = session.execute(
        select(CARD.c.id, LoyaltyProgram.currency)
        .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
        .where(CARD.c.member_id == member_id, CARD.c.merchant_id == merchant_id)
    ).first()
    if found is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    card_id, currency = found
    query = select(TXN).where(TXN.c.card_id == card_id).order_by(TXN.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(TXN.c.id < before_id)
    return [_entry(r, member_id) for r in session.execute(query)], currency
