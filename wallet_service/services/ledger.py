"""The points ledger: every balance change is an immutable row written together with the
card's new balance, tier and version, in the caller's transaction. What each operation
(earn, redeem, refund, adjust) changes is worked out in :mod:`.transactions`, bonuses in
:mod:`.bonuses`; the card rules themselves (stamp wrap, zero floor, tiers) are in
:mod:`wallet_service.rules`.

Concurrency: the card row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serializes writers with ``BEGIN IMMEDIATE``) before the balance is read, so concurrent
requests on one card queue instead of overwriting each other.

Idempotency: a request carrying an ``Idempotency-Key`` stores the key on its transaction
row (unique per merchant) with its scope (:class:`IdempotencyScope`): the operation, the
member (the row's card) and a hash of the body. A retry in the same scope finds that row and
answers with the same result; the key in any other scope is refused (:func:`replay`). The
service's own keys for entries it writes once (``expire:<lot>``, ``birthday:<card>:<year>``,
``referral:<card>:referrer``) are *natural keys*, unique per merchant in a column of their
own (:func:`natural_key_is`), so no client key can take one or be taken by one.

Program kinds: a *points* card earns points per purchase; a *stamps* card collects
stamps, and every ``goal`` stamps turn into one reward ready to claim (``balance`` counts
them, so a card at 5/6 given 2 stamps shows 1/6 and one reward); a *cashback* card keeps a
share of each purchase as money in minor units, payable up to a share of a purchase; a
*discount* card earns nothing but spend and visits, which set its tier and so its discount.

Receipt lines: goods whose sku or category is on the program's ``excluded`` list earn
nothing; the rest earn by the program's rule.

Refunds reverse what the purchase earned, in proportion to the refunded share of its
amount; partial refunds add up to exactly the purchase's points. The balance never goes
below zero: if the member already spent the points, the refund takes what is left and
records the rest as ``unrecovered`` in its ``details`` (the merchant may settle it at the
till). A stamp refund takes stamps back from the current count first; a reward they no
longer cover goes back into stamps (5/6 and a reward, refunded by one stamp, is 5/6 again),
and what a reward already claimed lacks becomes the card's ``stamp_debt``, which the next
stamps pay off before they count (``rules.take_back_stamps``, ``rules.add_stamps``).

Tiers: transactions only ever raise the tier (an upgrade is immediate); the daily job
(``automations.run_daily``) lowers tiers whose basis fell below the threshold.

Points expiry: when the program has ``points_validity_days``, every credit is a lot that
expires that many days later; spending, refunds and expiry take from the oldest lot first.
A card's expiry reminder (set by the daily job) follows its lots: a debit that leaves fewer
of those points restates it, one that leaves none takes it off.

This is the hottest path of the service, so it works on columns and Core statements
rather than loading ORM objects; a points program that uses none of the features above
runs the same four statements as before they existed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import run
from ..db import utcnow
from ..errors import InsufficientBalance
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..i18n import expiry_reminder
from ..local_time import local_date
from ..local_time import start_of_day
from ..metrics import LEDGER_OPERATIONS
from ..metrics import count_after_commit
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import PointLot
from ..rules import Totals
from ..rules import add_stamps
from ..rules import apply_points
from ..rules import take_back_stamps
from ..rules import tier_for
from ..rules import tier_rank
from . import bulk
from . import webhooks
from .merchants import time_zone_of
from .outbox import next_last_modified
from .outbox import publish_change
from .outbox import publish_changes

TXN = LedgerTransaction.__table__
CARD = LoyaltyCard.__table__
LOT = PointLot.__table__

# Statements are built once: constructing them costs more than running them on this path.
_CARD_COLUMNS = (
    CARD.c.id, CARD.c.member_id, CARD.c.status, CARD.c.balance, CARD.c.tier, CARD.c.version,
    CARD.c.updated_at, CARD.c.last_modified, CARD.c.lifetime_points,
    CARD.c.lifetime_spend_minor, CARD.c.stamps, CARD.c.stamp_debt, CARD.c.visits,
    CARD.c.last_visit_at, CARD.c.referred_by_id, CARD.c.message, CARD.c.reminder,
    CARD.c.reminder_expires_on,
    LoyaltyProgram.id.label("program_id"), LoyaltyProgram.kind, LoyaltyProgram.currency,
    LoyaltyProgram.rules, LoyaltyProgram.languages,
    # Whether the merchant has an enabled webhook endpoint: without one, an entry records
    # no event (:func:`apply_change`) and saves the round trip that would find none.
    exists().where(webhooks.ENDPOINTS.c.merchant_id == CARD.c.merchant_id,
                   webhooks.ENDPOINTS.c.enabled.is_(True)).label("webhooks"),
)
LOCK_CARD = (
    select(*_CARD_COLUMNS)
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(CARD.c.member_id == bindparam("member_id"),
           CARD.c.merchant_id == bindparam("merchant_id"))
    .with_for_update(of=CARD)
)
#: :data:`LOCK_CARD` and whether the request's idempotency key (``key``, None without one)
#: is used already (``key_used``), in one round trip: a new key needs no :func:`replay`.
LOCK_CARD_AND_KEY = (
    select(*_CARD_COLUMNS,
           select(TXN.c.id)
           .where(TXN.c.merchant_id == bindparam("merchant_id"),
                  TXN.c.idempotency_key == bindparam("key"))
           .scalar_subquery().label("key_used"))
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(CARD.c.member_id == bindparam("member_id"),
           CARD.c.merchant_id == bindparam("merchant_id"))
    .with_for_update(of=CARD)
)
_LOCK_CARD_BY_ID = (
    select(*_CARD_COLUMNS)
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(CARD.c.id == bindparam("card_id"))
    .with_for_update(of=CARD)
)
FIND_KEY = (
    select(TXN, CARD.c.member_id, LoyaltyProgram.currency)
    .join(CARD, CARD.c.id == TXN.c.card_id)
    .join(LoyaltyProgram, LoyaltyProgram.id == CARD.c.program_id)
    .where(TXN.c.merchant_id == bindparam("merchant_id"),
           TXN.c.idempotency_key == bindparam("key"))
)
_INSERT_TXN = insert(TXN).returning(TXN.c.id)
_CARD_FIELDS = ("balance", "tier", "lifetime_points", "lifetime_spend_minor", "stamps",
                "stamp_debt", "visits", "last_visit_at", "message", "reminder",
                "reminder_expires_on", "version", "updated_at", "last_modified")
_UPDATE_CARD = (
    update(CARD)
    .where(CARD.c.id == bindparam("card_id"))
    .values({c: bindparam(c) for c in _CARD_FIELDS})
)

NOTHING_PENDING = Totals()

#: Entry types that count as earning for lifetime points and windowed tiers.
EARNING_TYPES = ("earn", "bonus", "refund")


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
    stamps: int = 0
    reference_id: int | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class Posted:
    """What a request did to a card: its ``entry``, and the entries the same request wrote
    on the card after it (``follow_ups``: the referral bonus a first purchase pays)."""

    entry: Entry
    currency: str
    replayed: bool
    follow_ups: tuple[Entry, ...] = ()

    @property
    def balance(self) -> int:
        """The card's balance after everything the request credited."""
        return (self.follow_ups[-1] if self.follow_ups else self.entry).balance_after

    @property
    def tier(self) -> str | None:
        """The card's tier after everything the request did."""
        return (self.follow_ups[-1] if self.follow_ups else self.entry).tier_after


#: The operations a client's ``Idempotency-Key`` can be sent to (:class:`IdempotencyScope`).
OPERATIONS = ("transaction", "stamps", "action", "reward.redeem", "coupon.redeem")

# Rows written before keys had operations (migrated, or written by the release before while
# this one rolled out) have none: their entry's type tells it.
_OPERATION_OF_TYPE = {"earn": "transaction", "redeem": "transaction", "adjust": "transaction",
                      "refund": "transaction", "reward": "reward.redeem"}


@dataclass(frozen=True)
class IdempotencyScope:
    """What a client's ``Idempotency-Key`` is bound to: one ``operation`` (one of
    :data:`OPERATIONS`) on one member, with one body (its ``fingerprint``). Keys are the
    merchant's. The same key in the same scope replays the first answer; in any other scope
    (another body, member or operation) it is refused, so a key never answers for another
    member or another operation (:func:`replay`). The service's own keys are natural keys,
    in a namespace of their own (:func:`natural_key_is`): a client's key can look like one.

    A key used in a batch item is the same as the same key on the single route for the same
    operation and member.
    """

    key: str
    operation: str
    member_id: int
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, operation: str, member_id: int,
           body: Mapping[str, Any]) -> IdempotencyScope | None:
        """The scope of a request sent with ``key`` (None without a key). ``body`` is what
        the request asks for, in plain values; the fingerprint hashes it with the member (for
        a transaction, the hash its entries have always kept)."""
        if key is None:
            return None
        if operation not in OPERATIONS:
            raise ValueError(f"{operation!r} is not one of {OPERATIONS}")
        text = json.dumps({"member_id": member_id, **body}, sort_keys=True, default=str)
        return cls(key, operation, member_id, hashlib.sha256(text.encode()).hexdigest())


@dataclass(frozen=True)
class Actor:
    """Who posts an entry, kept on its row: an API key (``api_key_id``), or a staff user
    (``staff_user_id``, a console user's id) at a till of a store (``location_id``). The
    service's own entries (expiry, the daily job) have none."""

    api_key_id: int | None = None
    staff_user_id: int | None = None
    location_id: int | None = None


NOBODY = Actor()


@dataclass
class Change:
    """What one ledger entry does to a card, before the card's own rules (stamp wrapping,
    tiers, lots, the zero floor) are applied by :func:`apply_change`."""

    type: str
    points: int = 0
    stamps: int = 0
    amount_minor: int | None = None
    spend_minor: int = 0
    lifetime_points: int = 0
    visit: bool = False
    reason: str | None = None
    reference_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Negative points beyond the balance: refused (False) or capped at the balance (True).
    cap_at_zero: bool = False
    # Negative stamps of a refund: they also take back rewards they no longer cover, and
    # what a claimed reward lacks becomes the card's stamp debt (rules.take_back_stamps).
    reclaim_rewards: bool = False
    message: str | None = None
    # A lot to take from first (a refund reverses its own purchase's lot first).
    lot_of: int | None = None
    expire_lot: int | None = None
    # A scheduled tier review sets the tier outright (it may lower it).
    set_tier: bool = False
    tier: str | None = None
    # Something else the card shows changed (a coupon used).
    force_visible: bool = False


def lock_card(session: Session, card_id: int) -> Any:
    """The card row with its program's columns, locked for this transaction."""
    return session.execute(_LOCK_CARD_BY_ID, {"card_id": card_id}).one()


def apply_change(
    session: Session,
    merchant_id: int,
    card: Any,
    change: Change,
    *,
    now: dt.datetime | None = None,
    idempotency: IdempotencyScope | None = None,
    natural_key: str | None = None,
    actor: Actor = NOBODY,
    deferred: Deferred | None = None,
) -> Entry:
    """Write ``change`` to the locked ``card`` and the ledger, and publish it if visible.
    The entry keeps the client's key with its scope (``idempotency``, checked by
    :func:`replay` first) and the service's own ``natural_key``, either or both, and who
    posted it (``actor``). With ``deferred`` (a batch of simple cards, see
    :class:`Deferred`) the writes are collected for :meth:`Deferred.flush` instead, and the
    entry's ``id`` is 0 until then.

    :raises InsufficientBalance: the balance would go below zero and the change may not be
        capped.
    """
    now = now or utcnow()
    rules = card.rules
    details = dict(change.details)
    points = change.points

    stamps, stamp_debt = card.stamps, card.stamp_debt
    if change.stamps:
        goal = int((rules.get("stamps") or {}).get("goal", 0))
        if change.stamps < 0 and change.reclaim_rewards:
            wrapped = take_back_stamps(stamps, -change.stamps, goal,
                                       ready=max(card.balance + points, 0), debt=stamp_debt)
        else:
            wrapped = add_stamps(stamps, change.stamps, goal, debt=stamp_debt)
        stamps, stamp_debt = wrapped.stamps, wrapped.debt
        if wrapped.unrecovered:
            details["unrecovered_stamps"] = wrapped.unrecovered
        if wrapped.rewards:
            points += wrapped.rewards
            details["rewards"] = wrapped.rewards
        if stamp_debt > card.stamp_debt:
            details["stamp_debt"] = stamp_debt - card.stamp_debt
        elif stamp_debt < card.stamp_debt:
            details["stamp_debt_paid"] = card.stamp_debt - stamp_debt

    after = apply_points(card.balance, points, cap_at_zero=change.cap_at_zero)
    if after is None:
        raise InsufficientBalance(
            f"points: the balance is {card.balance}, {-points} cannot be taken",
            field="points", balance=card.balance)
    if after.unrecovered:
        details["unrecovered"] = after.unrecovered
    points, balance = after.points, after.balance

    lifetime_points = max(0, card.lifetime_points + change.lifetime_points)
    lifetime_spend = max(0, card.lifetime_spend_minor + change.spend_minor)
    visits = card.visits + (1 if change.visit else 0)
    last_visit = now if change.visit else card.last_visit_at

    tier = card.tier
    if change.set_tier:
        tier = change.tier
    elif rules.get("tiers"):
        if rules.get("tier_window_days"):
            zone = time_zone_of(session, merchant_id)
            totals = window_totals(session, card.id, rules, local_date(now, zone),
                                   pending=Totals(change.lifetime_points, change.spend_minor,
                                                  1 if change.visit else 0),
                                   time_zone=zone)
        else:
            totals = Totals(lifetime_points, lifetime_spend, visits)
        reached = tier_for(rules, card.currency, totals)
        if tier_rank(rules, reached) > tier_rank(rules, tier):
            details["upgrade"] = {"from": tier, "to": reached}
            tier = reached

    message = change.message if change.message is not None else card.message
    reminder, reminder_on = card.reminder, card.reminder_expires_on
    lots = bool(rules.get("points_validity_days"))
    if lots and points < 0:
        _take_from_lots(session, card.id, -points, change)
        if reminder_on is not None:
            reminder, reminder_on = _reminder_after(session, card, reminder_on)
    visible = change.force_visible or (balance, tier, stamps, stamp_debt, message, reminder) != (
        card.balance, card.tier, card.stamps, card.stamp_debt, card.message, card.reminder)
    version = card.version + 1 if visible else card.version
    card_values = {
        "card_id": card.id, "balance": balance, "tier": tier,
        "lifetime_points": lifetime_points, "lifetime_spend_minor": lifetime_spend,
        "stamps": stamps, "stamp_debt": stamp_debt, "visits": visits,
        "last_visit_at": last_visit, "message": message, "reminder": reminder,
        "reminder_expires_on": reminder_on, "version": version,
        "updated_at": now if visible else card.updated_at,
        "last_modified": (next_last_modified(card.last_modified, now) if visible
                          else card.last_modified),
    }
    if deferred is None:
        run(session, _UPDATE_CARD, card_values)
    if visible and deferred is None:
        publish_change(session, card.id, version, now)
    stored = details or None
    txn_values = {
        "merchant_id": merchant_id, "card_id": card.id, "type": change.type, "points": points,
        "stamps": change.stamps, "amount_minor": change.amount_minor, "reason": change.reason,
        "balance_after": balance, "tier_after": tier, "reference_id": change.reference_id,
        "details": stored, "created_at": now, "natural_key": natural_key,
        "idempotency_key": idempotency.key if idempotency else None,
        "idempotency_operation": idempotency.operation if idempotency else None,
        "request_hash": idempotency.fingerprint if idempotency else None,
        "api_key_id": actor.api_key_id, "staff_user_id": actor.staff_user_id,
        "location_id": actor.location_id,
    }
    count_after_commit(session, LEDGER_OPERATIONS, type=change.type)
    if deferred is not None:
        deferred.add(card, card_values, visible, txn_values)
        return Entry(0, card.member_id, change.type, points, change.amount_minor,
                     change.reason, balance, tier, now, change.stamps, change.reference_id,
                     stored)
    txn_id = run(session, _INSERT_TXN, txn_values)[0].id
    if lots and points > 0:
        # Points are valid through a date of the merchant's calendar, not the server's.
        today = local_date(now, time_zone_of(session, merchant_id))
        expires = today + dt.timedelta(days=int(rules["points_validity_days"]))
        session.execute(insert(LOT), {"card_id": card.id, "transaction_id": txn_id,
                                      "points": points, "remaining": points,
                                      "expires_on": expires, "created_at": now})
    entry = Entry(txn_id, card.member_id, change.type, points, change.amount_minor,
                  change.reason, balance, tier, now, change.stamps, change.reference_id, stored)
    if not getattr(card, "webhooks", True):  # read with the card's lock: no endpoint
        return entry
    webhooks.record(session, merchant_id, webhooks.TRANSACTION_CREATED,
                    {"transaction": webhooks.transaction_data(entry, card.currency)},
                    member_id=card.member_id, at=now)
    if tier != card.tier:
        webhooks.record(session, merchant_id, webhooks.TIER_CHANGED, {
            "member_id": card.member_id, "from": card.tier, "to": tier,
            "cause": _TIER_CAUSES.get(change.type, "upgrade"), "transaction_id": txn_id,
        }, member_id=card.member_id, at=now)
    return entry


class Deferred:
    """The writes of a batch's entries, collected by :func:`apply_change` and run
    set-based by :meth:`flush`: one ``UPDATE`` per card (its final state), the card changes,
    the entries and (with ``events``, for a merchant with a webhook endpoint) their webhook
    events each in one statement. For cards whose entries need nothing else: no lots, no
    tier window, no referral bonus (the caller checks; see ``transactions.post_batch``).
    Each ``card`` given to :func:`apply_change` must be mutable (``SimpleNamespace``): it
    takes its new values, so the next entry on the same card starts from them, as it would
    after a write."""

    def __init__(self, *, events: bool = False) -> None:
        self.cards: dict[int, dict[str, Any]] = {}
        self.changes: list[tuple[int, int, dt.datetime]] = []
        self.entries: list[dict[str, Any]] = []
        # Per entry, what its events need beyond its row: (member, currency, tier before).
        self.events: list[tuple[int, str, str | None]] | None = [] if events else None

    def add(self, card: Any, card_values: dict[str, Any], visible: bool,
            txn_values: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.append((card.member_id, card.currency, card.tier))
        self.cards[card.id] = card_values
        for name in _CARD_FIELDS:
            setattr(card, name, card_values[name])
        if visible:
            self.changes.append((card.id, card_values["version"], card_values["updated_at"]))
        self.entries.append(txn_values)

    def flush(self, session: Session) -> list[int]:
        """Run the collected writes; returns the entries' ids, in the order they were
        added."""
        if session.get_bind().dialect.name == "postgresql":
            ids = self._flush_documents(session)
        else:
            if self.cards:
                session.execute(_UPDATE_CARD, list(self.cards.values()))
            if self.changes:
                publish_changes(session, self.changes)
            ids = list(session.scalars(
                insert(TXN).returning(TXN.c.id, sort_by_parameter_order=True),
                self.entries)) if self.entries else []
        if self.events:
            self._record_events(session, ids)
        return ids

    def _flush_documents(self, session: Session) -> list[int]:
        # One document per statement (services.bulk): a multi-row INSERT of a batch's
        # thousands of parameters costs more to send and parse than the writes themselves.
        bulk.update(session, CARD, "card_id", list(self.cards.values()))
        if self.changes:
            publish_changes(session, self.changes)
        ids = bulk.new_ids(session, TXN, len(self.entries)) if self.entries else []
        bulk.insert(session, TXN, [{"id": txn_id, **entry}
                                   for txn_id, entry in zip(ids, self.entries, strict=True)])
        return ids

    def _record_events(self, session: Session, ids: list[int]) -> None:
        """The events :func:`apply_change` records for each entry, in the same order."""
        assert self.events is not None
        events: list[tuple[str, dict[str, Any], int | None, dt.datetime]] = []
        for txn_id, v, (member_id, currency, tier_before) in zip(
                ids, self.entries, self.events, strict=True):
            at = v["created_at"]
            entry = Entry(txn_id, member_id, v["type"], v["points"], v["amount_minor"],
                          v["reason"], v["balance_after"], v["tier_after"], at, v["stamps"],
                          v["reference_id"], v["details"])
            events.append((webhooks.TRANSACTION_CREATED,
                           {"transaction": webhooks.transaction_data(entry, currency)},
                           member_id, at))
            if v["tier_after"] != tier_before:
                events.append((webhooks.TIER_CHANGED, {
                    "member_id": member_id, "from": tier_before, "to": v["tier_after"],
                    "cause": _TIER_CAUSES.get(v["type"], "upgrade"), "transaction_id": txn_id,
                }, member_id, at))
        webhooks.record_many(session, self.entries[0]["merchant_id"], events)


#: Why a card's tier changed, by the type of the entry that changed it (``tier.changed``).
_TIER_CAUSES = {"tier": "review", "tier_set": "manual"}


def _take_from_lots(session: Session, card_id: int, take: int, change: Change) -> None:
    """A debit takes from the given lot first (the expiring one, or the refunded purchase's),
    then from the oldest."""
    first = change.expire_lot
    if first is None and change.lot_of is not None:
        first = session.scalar(select(LOT.c.id).where(LOT.c.transaction_id == change.lot_of))
    lots = session.execute(
        select(LOT.c.id, LOT.c.remaining)
        .where(LOT.c.card_id == card_id, LOT.c.remaining > 0)
        .order_by(case((LOT.c.id == (first or 0), 0), else_=1), LOT.c.expires_on, LOT.c.id)
    ).all()
    for lot in lots:
        if take <= 0:
            break
        used = min(take, lot.remaining)
        session.execute(update(LOT).where(LOT.c.id == lot.id)
                        .values(remaining=lot.remaining - used))
        take -= used


def _reminder_after(session: Session, card: Any,
                    expires_on: dt.date) -> tuple[str | None, dt.date | None]:
    """The card's expiry reminder once a debit took from its lots: the points still left
    that expire on ``expires_on``, or no reminder when they are all spent or expired."""
    left = int(session.scalar(
        select(func.coalesce(func.sum(LOT.c.remaining), 0))
        .where(LOT.c.card_id == card.id, LOT.c.expires_on == expires_on)) or 0)
    if left <= 0:
        return None, None
    language = card.languages[0] if card.languages else "en"
    return expiry_reminder(language, left, expires_on), expires_on


def reminder_texts(session: Session, card: Any,
                   languages: Sequence[str]) -> dict[str, str] | None:
    """The card's expiry reminder in each of ``languages``, for the pass and the Google card
    to show each phone its own (the card keeps the first language's), or None when the card
    has none."""
    if card.reminder is None or card.reminder_expires_on is None:
        return None
    left = int(session.scalar(
        select(func.coalesce(func.sum(LOT.c.remaining), 0))
        .where(LOT.c.card_id == card.id, LOT.c.expires_on == card.reminder_expires_on)) or 0)
    if left <= 0:
        return None
    return {lang: expiry_reminder(lang, left, card.reminder_expires_on) for lang in languages}


def tier_totals(session: Session, card: Any, rules: Any, today: dt.date, *,
                time_zone: str = "UTC") -> Totals:
    """What the program's tier thresholds are compared with on ``today``: the totals within
    the tier window when the program has one, else the card's lifetime totals. ``card`` is a
    row with the card's ``id`` and lifetime columns; ``today`` is a date in ``time_zone``."""
    if rules.get("tier_window_days"):
        return window_totals(session, card.id, rules, today, time_zone=time_zone)
    return Totals(card.lifetime_points, card.lifetime_spend_minor, card.visits)


def window_totals(session: Session, card_id: int, rules: Any, today: dt.date,
                  pending: Totals = NOTHING_PENDING, *, time_zone: str = "UTC") -> Totals:
    """Points earned, spend and visits within the program's tier window ending ``today``,
    plus the ``pending`` change not written yet."""
    since = start_of_day(today - dt.timedelta(days=int(rules["tier_window_days"])), time_zone)
    row = session.execute(
        select(
            func.coalesce(func.sum(case((TXN.c.type.in_(EARNING_TYPES), TXN.c.points),
                                        else_=0)), 0),
            func.coalesce(func.sum(case((TXN.c.type == "earn", TXN.c.amount_minor),
                                        (TXN.c.type == "refund", -TXN.c.amount_minor),
                                        else_=0)), 0),
            func.count(case((and_(TXN.c.type == "earn", TXN.c.amount_minor.is_not(None)), 1))),
        ).where(TXN.c.card_id == card_id, TXN.c.created_at >= since)
    ).one()
    return Totals(max(0, int(row[0]) + pending.points),
                  max(0, int(row[1]) + pending.spend_minor), int(row[2]) + pending.visits)


def replay(session: Session, merchant_id: int,
           scope: IdempotencyScope | None) -> Posted | None:
    """The answer stored under the scope's key, or None for a new key (or no key). Called
    under the card's lock, so a retry that raced its first attempt sees its row.

    :raises ValidationFailed: the key was used in another scope: another operation, another
        member or another body. The problem names ``Idempotency-Key`` and says the operation
        and the member it was used for, and nothing else of that entry.
    """
    if scope is None:
        return None
    row = session.execute(FIND_KEY, {"merchant_id": merchant_id, "key": scope.key}).first()
    if row is None:
        return None
    used = row.idempotency_operation or _OPERATION_OF_TYPE.get(row.type, row.type)
    used_for = {"operation": used, "member_id": row.member_id}
    if used != scope.operation or row.member_id != scope.member_id:
        whom = "this member" if row.member_id == scope.member_id else f"member {row.member_id}"
        raise ValidationFailed(
            f"Idempotency-Key: this key was used for {used} on {whom}; a key belongs to one "
            f"operation on one member, so send this {scope.operation} with a new key",
            field="Idempotency-Key", used_for=used_for)
    if row.request_hash != scope.fingerprint:
        raise ValidationFailed(
            f"Idempotency-Key: this key was used for a different {used} request on this "
            "member; a retry repeats the first request exactly, a new request needs a new key",
            field="Idempotency-Key", used_for=used_for)
    return Posted(entry_from_row(row, row.member_id), row.currency, replayed=True)


# The release before natural keys kept them in ``idempotency_key``, and does while this one
# rolls out (migration 0011 copied the older ones). No client's key wrote a bonus or an
# expiry then, so on such a row without an operation the key is a natural one.
_NATURAL_KEY_OF_BEFORE = and_(TXN.c.natural_key.is_(None),
                              TXN.c.idempotency_operation.is_(None),
                              TXN.c.type.in_(("bonus", "expire")))


def natural_key_is(key: str) -> ColumnElement[bool]:
    """Rows under the service's natural ``key`` (each side of the ``OR`` is an index
    lookup: the two unique constraints)."""
    return or_(TXN.c.natural_key == key,
               and_(TXN.c.idempotency_key == key, _NATURAL_KEY_OF_BEFORE))


def natural_key_starts(prefix: str) -> ColumnElement[bool]:
    """Rows whose natural key starts with ``prefix``."""
    return or_(TXN.c.natural_key.startswith(prefix, autoescape=True),
               and_(TXN.c.idempotency_key.startswith(prefix, autoescape=True),
                    _NATURAL_KEY_OF_BEFORE))


def natural_key_used(session: Session, merchant_id: int, key: str) -> bool:
    """Whether an entry with the service's natural ``key`` exists (bonuses and expiry are
    written once per key)."""
    return session.scalar(
        select(TXN.c.id).where(TXN.c.merchant_id == merchant_id, natural_key_is(key)).limit(1)
    ) is not None


def entry_from_row(row: object, member_id: int) -> Entry:
    """An :class:`Entry` from a selected ledger row."""
    r = row._mapping  # type: ignore[attr-defined]
    return Entry(r["id"], member_id, r["type"], r["points"], r["amount_minor"], r["reason"],
                 r["balance_after"], r["tier_after"], r["created_at"], r["stamps"],
                 r["reference_id"], r["details"])


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
    return [entry_from_row(r, member_id) for r in session.execute(query)], currency


