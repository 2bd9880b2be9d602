"""The operations a merchant posts to a card: earn, redeem, refund and adjust.

Each works out a :class:`~.ledger.Change` from the request and the locked card and hands it
to :func:`.ledger.apply_change`; a member's first purchase also pays the referral bonuses
(:mod:`.bonuses`). See :mod:`.ledger` for locking, idempotency and refunds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from dataclasses import replace
from decimal import ROUND_FLOOR
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import run
from ..db import utcnow
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..errors import WalletError
from ..models import LoyaltyProgram
from ..rules import is_excluded
from ..rules import purchase_earns
from ..rules import stamps_for_purchase
from ..rules import to_minor
from . import ledger
from . import webhooks
from .bonuses import grant_referral
from .bonuses import referral_paid_with
from .outbox import in_ids
from .outbox import in_values

TXN = ledger.TXN


@dataclass(frozen=True)
class Line:
    """A receipt line: what was bought and its total."""

    amount: Decimal
    sku: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Operation:
    """One request to change a card, already checked for shape at the edge."""

    type: str
    points: int | None = None
    stamps: int | None = None
    amount: Decimal | None = None
    lines: tuple[Line, ...] | None = None
    purchase_amount: Decimal | None = None
    original_id: int | None = None
    reason: str | None = None


def post_transaction(
    session: Session,
    merchant_id: int,
    member_id: int,
    data: Operation,
    *,
    idempotency_key: str | None = None,
    actor: ledger.Actor = ledger.NOBODY,
) -> ledger.Posted:
    """Apply one earn, redeem, adjust or refund to a member's card (the ``transaction``
    operation of an idempotency key), posted by ``actor``. A member's first purchase also
    pays the referral bonuses; the referred card's bonus comes back in ``follow_ups``, so the
    answer's balance counts it (a replay's too).

    If a concurrent request commits the same idempotency key for another member first, the
    insert or the commit raises ``IntegrityError``; the caller rolls back and calls again,
    and the retry refuses the key (or replays it, for the same request).

    :raises ResourceNotFound: the member (or the refunded purchase) is missing or another
        merchant's.
    :raises InsufficientBalance: the balance would go below zero.
    :raises ResourceConflict: the card is closed, a stamp limit is reached, or the purchase
        is refunded already.
    :raises ValidationFailed: the idempotency key was used in another scope
        (:func:`.ledger.replay`), or the request does not fit the program's kind.
    """
    return _post(session, merchant_id, member_id, data, "transaction", idempotency_key, actor)


def post_stamps(
    session: Session,
    merchant_id: int,
    member_id: int,
    count: int,
    reason: str | None = None,
    *,
    idempotency_key: str | None = None,
    actor: ledger.Actor = ledger.NOBODY,
) -> ledger.Posted:
    """Stamp a card: an earn of ``count`` stamps, as :func:`post_transaction` posts it, with
    an idempotency key of the ``stamps`` operation.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ResourceConflict: the card is closed or the stamp limit is reached.
    :raises ValidationFailed: the idempotency key was used in another scope, or the program
        has no stamps.
    """
    return _post(session, merchant_id, member_id,
                 Operation(type="earn", stamps=count, reason=reason), "stamps",
                 idempotency_key, actor)


#: Items of a batch posted under one savepoint while none fails (:func:`post_batch`).
_BATCH_CHUNK = 50


@dataclass(frozen=True)
class BatchItem:
    """One operation of a batch, already checked for shape: what :func:`post_transaction`
    takes for one member, with the item's idempotency key."""

    member_id: int
    operation: Operation
    idempotency_key: str


def post_batch(session: Session, merchant_id: int, items: Sequence[BatchItem], *,
               actor: ledger.Actor = ledger.NOBODY) -> list[ledger.Posted | WalletError]:
    """Apply each item as :func:`post_transaction` would, as if each were in a savepoint of
    its own, so one that fails (a member of another merchant, a balance too low, a key used
    in another scope) is rolled back alone and answered by its error; the others stay. An
    item's key is the ``transaction`` scope's key on its member, the same as on the single
    route (:class:`.ledger.IdempotencyScope`), so a retried batch replays what it already did.

    Every card of the batch is locked first, in the order of their ids, so two batches (or a
    batch and single requests) on the same cards queue instead of deadlocking.

    :returns: one ``Posted`` or error per item, in the order of ``items``.
    """
    cards = _lock_cards(session, merchant_id, {item.member_id for item in items})
    at_once = _post_at_once(session, merchant_id, items, cards, actor)
    if at_once is not None:
        return at_once
    results: list[ledger.Posted | WalletError] = []
    for start in range(0, len(items), _BATCH_CHUNK):
        chunk = items[start:start + _BATCH_CHUNK]
        try:
            # Items rarely fail: a chunk goes in one savepoint; when one of its items fails,
            # the chunk is rolled back and posted again item by item.
            with session.begin_nested():
                done = [post_transaction(session, merchant_id, item.member_id, item.operation,
                                         idempotency_key=item.idempotency_key, actor=actor)
                        for item in chunk]
        except (WalletError, IntegrityError):
            results.extend(_post_in_savepoint(session, merchant_id, item, actor)
                           for item in chunk)
        else:
            results.extend(done)
    return results


#: Operations a batch can post at once: they read nothing beyond the locked card.
_AT_ONCE = ("earn", "redeem", "adjust")

# What :data:`.ledger.LOCK_CARD` reads of the card itself, and of its program. A batch reads
# each program once, not once per card: decoding its rules for every card of a batch costs
# more than the rest of reading them.
_OWN_COLUMNS = [c for c in ledger.LOCK_CARD.selected_columns
                if getattr(c, "table", None) is ledger.CARD]
_PROGRAM_COLUMNS = [c for c in ledger.LOCK_CARD.selected_columns if c not in _OWN_COLUMNS]


def _lock_cards(session: Session, merchant_id: int, member_ids: set[int]
                ) -> dict[int, SimpleNamespace]:
    """The cards of ``member_ids`` that are the merchant's, by member, each with the columns
    :data:`.ledger.LOCK_CARD` gives, locked in the order of their ids so that concurrent
    batches over the same cards queue rather than deadlock. Each is mutable, for
    :class:`.ledger.Deferred`."""
    rows = session.execute(
        select(*_OWN_COLUMNS, ledger.CARD.c.program_id)
        .where(in_ids(session, ledger.CARD.c.member_id, sorted(member_ids)),
               ledger.CARD.c.merchant_id == merchant_id)
        .order_by(ledger.CARD.c.id)
        .with_for_update()).all()
    programs = {r.program_id: r._asdict() for r in session.execute(
        select(*_PROGRAM_COLUMNS).where(
            LoyaltyProgram.id.in_({r.program_id for r in rows})))} if rows else {}
    return {r.member_id: SimpleNamespace(**{**r._asdict(), **programs[r.program_id]})
            for r in rows}


def _post_at_once(session: Session, merchant_id: int, items: Sequence[BatchItem],
                  cards: dict[int, SimpleNamespace], actor: ledger.Actor
                  ) -> list[ledger.Posted | WalletError] | None:
    """The common batch, set-based: new keys only, on cards whose entries need nothing but
    the card (no lots, tier window, referral bonus or stamps). Each item is
    worked out from the locked card as :func:`post_transaction` would (an item that fails
    writes nothing and leaves the card as it was for the next), and the writes of all go in
    a few multi-row statements (:class:`.ledger.Deferred`). None when the batch is not
    such a one, or when another request took one of its keys meanwhile: the caller posts
    it item by item then, with the same results."""
    keys = [item.idempotency_key for item in items]
    if (len(set(keys)) != len(keys)
            or any(item.operation.type not in _AT_ONCE or item.operation.stamps is not None
                   for item in items)
            or any(c.kind == "stamps" or c.referred_by_id is not None
                   or c.rules.get("points_validity_days") or c.rules.get("tier_window_days")
                   for c in cards.values())
            or session.scalar(select(TXN.c.id).where(
                TXN.c.merchant_id == merchant_id,
                in_values(session, TXN.c.idempotency_key, keys, String)).limit(1))
            is not None):
        return None
    deferred = ledger.Deferred(events=webhooks.has_endpoints(session, merchant_id))
    results: list[ledger.Posted | WalletError] = []
    posted: list[tuple[int, ledger.Entry, str]] = []
    for item in items:
        card, data = cards.get(item.member_id), item.operation
        try:
            if card is None:
                raise ResourceNotFound(f"member {item.member_id} not found", field="member_id")
            if card.status != "active":
                raise ResourceConflict("the card is closed", field="member_id")
            scope = ledger.IdempotencyScope.of(item.idempotency_key, "transaction",
                                               item.member_id, _body(data))
            now = utcnow()
            change = (_earn(session, card, data, now) if data.type == "earn"
                      else _redeem(card, data) if data.type == "redeem"
                      else _adjust(card, data))
            entry = ledger.apply_change(session, merchant_id, card, change, now=now,
                                        idempotency=scope, actor=actor, deferred=deferred)
        except WalletError as exc:
            results.append(exc)
            continue
        posted.append((len(results), entry, card.currency))
        results.append(None)  # type: ignore[arg-type]  # posted below, with its id
    try:
        with session.begin_nested():
            ids = deferred.flush(session)
    except IntegrityError:
        return None  # a key was taken meanwhile: its item replays or refuses it
    for (index, entry, currency), txn_id in zip(posted, ids, strict=True):
        results[index] = ledger.Posted(replace(entry, id=txn_id), currency, replayed=False)
    return results


#: The fields of an :class:`Operation`, in order.
_OPERATION_FIELDS = tuple(f.name for f in fields(Operation))


def _body(data: Operation) -> dict[str, Any]:
    """``asdict(data)``, the body an item's key is bound to, without copying its values
    (a batch works out hundreds)."""
    body = {name: getattr(data, name) for name in _OPERATION_FIELDS}
    if data.lines is not None:
        body["lines"] = tuple(asdict(line) for line in data.lines)
    return body


def _post_in_savepoint(session: Session, merchant_id: int, item: BatchItem,
                       actor: ledger.Actor) -> ledger.Posted | WalletError:
    for attempt in (1, 2):
        try:
            with session.begin_nested():  # rolled back alone when the item fails
                return post_transaction(session, merchant_id, item.member_id, item.operation,
                                        idempotency_key=item.idempotency_key, actor=actor)
        except WalletError as exc:
            return exc
        except IntegrityError:
            # A concurrent request committed the same key first: the retry under the card's
            # lock finds its entry and replays it or refuses the key (as post_once does).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _post(session: Session, merchant_id: int, member_id: int, data: Operation,
          operation: str, idempotency_key: str | None,
          actor: ledger.Actor) -> ledger.Posted:
    # The key is looked up with the lock: a key that a concurrent request commits while this
    # one waits for the card is not seen, and its insert fails instead; the caller retries
    # then (``IntegrityError``, see post_transaction) and replays it.
    rows = run(session, ledger.LOCK_CARD_AND_KEY,
               {"member_id": member_id, "merchant_id": merchant_id, "key": idempotency_key})
    card = rows[0] if rows else None
    if card is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    scope = ledger.IdempotencyScope.of(idempotency_key, operation, member_id, asdict(data))
    done = ledger.replay(session, merchant_id, scope) if card.key_used is not None else None
    if done:
        bonus = (referral_paid_with(session, merchant_id, card.id, done.entry)
                 if card.referred_by_id is not None else None)
        return ledger.Posted(done.entry, done.currency, True, (bonus,) if bonus else ())
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")

    now = utcnow()
    if data.type == "earn":
        change = _earn(session, card, data, now)
    elif data.type == "redeem":
        change = _redeem(card, data)
    elif data.type == "refund":
        change = _refund(session, card, data)
    else:
        change = _adjust(card, data)
    entry = ledger.apply_change(session, merchant_id, card, change, now=now, idempotency=scope,
                                actor=actor)
    bonus = None
    if change.visit and card.visits == 0 and card.referred_by_id is not None:
        bonus = grant_referral(session, merchant_id, card.id, card.referred_by_id, card.rules,
                               entry.id, actor=actor)
    return ledger.Posted(entry, card.currency, replayed=False,
                         follow_ups=(bonus,) if bonus else ())


def _purchase(card: Any, data: Operation) -> tuple[int, list[tuple[int, str | None]],
                                                           dict[str, Any]]:
    """The purchase's amount in minor units, its eligible lines and what the entry keeps
    about them."""
    currency, rules = card.currency, card.rules
    details: dict[str, Any] = {}
    if data.lines is None:
        assert data.amount is not None
        amount = to_minor(currency, data.amount)
        return amount, [(amount, None)], details
    eligible: list[tuple[int, str | None]] = []
    kept = []
    for index, line in enumerate(data.lines):
        minor = to_minor(currency, line.amount, f"lines.{index}.amount")
        out = is_excluded(rules, line.sku, line.category)
        if not out:
            eligible.append((minor, line.category))
        kept.append({"sku": line.sku, "category": line.category, "amount_minor": minor,
                     **({"excluded": True} if out else {})})
    details["lines"] = kept
    amount = sum(line["amount_minor"] for line in kept)
    return amount, eligible, details


def _earn(session: Session, card: Any, data: Operation, now: dt.datetime) -> ledger.Change:
    kind, rules = card.kind, card.rules
    change = ledger.Change("earn", reason=data.reason)
    if data.points is not None:
        if kind not in ("points", "cashback"):
            raise ValidationFailed(f"points: a {kind} program does not earn points; "
                                   "give stamps or a purchase", field="points")
        change.points = change.lifetime_points = data.points
        return change
    if data.stamps is not None:
        if kind != "stamps":
            raise ValidationFailed(f"stamps: a {kind} program has no stamps", field="stamps")
        allowed = _stamp_allowance(session, card, now)
        if allowed is not None and data.stamps > allowed:
            raise ResourceConflict(
                f"stamps: the stamp limit of this card allows {allowed} more now",
                field="stamps", allowed=allowed)
        change.stamps, change.visit = data.stamps, True
        return change
    amount, eligible, change.details = _purchase(card, data)
    eligible_minor = sum(minor for minor, _ in eligible)
    change.amount_minor, change.spend_minor, change.visit = amount, amount, True
    if eligible_minor != amount:
        change.details["eligible_minor"] = eligible_minor
    change.points = purchase_earns(kind, rules, card.currency, eligible, card.tier)
    if kind == "stamps":
        stamps = stamps_for_purchase(rules, card.currency, eligible_minor)
        if stamps:
            allowed = _stamp_allowance(session, card, now)
            if allowed is not None and stamps > allowed:
                change.details["stamp_limit"] = stamps - allowed
                stamps = allowed
            change.stamps = stamps
    change.lifetime_points = change.points
    return change


def _stamp_allowance(session: Session, card: Any, now: dt.datetime) -> int | None:
    """How many stamps the card may still get within the program's stamp window."""
    rule = card.rules["stamps"]
    limit = rule.get("max_per_window")
    if limit is None:
        return None
    since = now - dt.timedelta(minutes=int(rule.get("window_minutes", 60)))
    given = session.scalar(
        select(func.coalesce(func.sum(TXN.c.stamps), 0))
        .where(TXN.c.card_id == card.id, TXN.c.type == "earn", TXN.c.created_at > since)
    )
    return max(int(limit) - int(given or 0), 0)


def _redeem(card: Any, data: Operation) -> ledger.Change:
    kind, rules = card.kind, card.rules
    if kind == "discount":
        raise ValidationFailed("type: a discount program has no balance to redeem", field="type")
    if kind == "cashback":
        if data.amount is None:
            raise ValidationFailed("amount: give the amount of money to pay with cashback",
                                   field="amount")
        minor = to_minor(card.currency, data.amount)
        share = Decimal(str((rules.get("cashback") or {}).get("max_redeem_percent", 100)))
        if data.purchase_amount is not None or share < 100:
            if data.purchase_amount is None:
                raise ValidationFailed(
                    f"purchase_amount: required; cashback pays at most {share}% of a purchase",
                    field="purchase_amount")
            purchase = to_minor(card.currency, data.purchase_amount, "purchase_amount")
            ceiling = int((Decimal(purchase) * share / 100).to_integral_value(ROUND_FLOOR))
            if minor > ceiling:
                raise ValidationFailed(
                    f"amount: cashback pays at most {share}% of the purchase here",
                    field="amount", allowed=ceiling)
        return ledger.Change("redeem", points=-minor, amount_minor=minor, reason=data.reason)
    if data.amount is not None:
        raise ValidationFailed("amount: not allowed for redeem; give points", field="amount")
    assert data.points is not None
    return ledger.Change("redeem", points=-data.points, reason=data.reason)


def _adjust(card: Any, data: Operation) -> ledger.Change:
    if data.stamps is not None and card.kind != "stamps":
        raise ValidationFailed(f"stamps: a {card.kind} program has no stamps", field="stamps")
    points = data.points or 0
    return ledger.Change("adjust", points=points, stamps=data.stamps or 0,
                  lifetime_points=points, reason=data.reason)


def _refund(session: Session, card: Any, data: Operation) -> ledger.Change:
    original = session.execute(
        select(TXN).where(TXN.c.id == data.original_id, TXN.c.card_id == card.id,
                          TXN.c.type == "earn")
    ).first()
    if original is None or original.amount_minor is None:
        raise ResourceNotFound(f"original_id: no purchase {data.original_id} on this card",
                               field="original_id")
    earlier = session.execute(
        select(TXN.c.amount_minor, TXN.c.details)
        .where(TXN.c.card_id == card.id, TXN.c.type == "refund",
               TXN.c.reference_id == original.id)
    ).all()
    refunded = sum(r.amount_minor or 0 for r in earlier)
    left = original.amount_minor - refunded
    if left <= 0:
        raise ResourceConflict(f"original_id: purchase {original.id} is refunded already",
                               field="original_id")
    amount = left if data.amount is None else to_minor(card.currency, data.amount)
    if amount > left:
        raise ValidationFailed(
            f"amount: only {left} minor units of this purchase are left to refund",
            field="amount", allowed=left)
    reversed_before = sum((r.details or {}).get("reversed_points", 0) for r in earlier)
    stamps_before = sum((r.details or {}).get("reversed_stamps", 0) for r in earlier)
    # Cumulative targets, so partial refunds add up to exactly what the purchase earned.
    earned = original.points if card.kind != "stamps" else 0
    points = earned * (refunded + amount) // original.amount_minor - reversed_before
    stamps = original.stamps * (refunded + amount) // original.amount_minor - stamps_before
    return ledger.Change(
        "refund", points=-points, stamps=-stamps, amount_minor=amount, spend_minor=-amount,
        lifetime_points=-points, reason=data.reason, reference_id=original.id,
        details={"reversed_points": points, "reversed_stamps": stamps}, cap_at_zero=True,
        reclaim_rewards=True, lot_of=original.id,
    )




def reverse_entry(
    session: Session,
    merchant_id: int,
    member_id: int,
    entry_id: int,
    *,
    idempotency_key: str | None = None,
    actor: ledger.Actor = ledger.NOBODY,
    check: Any = None,
) -> ledger.Posted:
    """Undo one earn or points redeem of the member's card whole (the ``transaction``
    operation of an idempotency key, with the body ``{"undo": entry_id}``).

    An earn is reversed by a ``refund`` with the rules of a refund of all of it: what it
    earned is taken back (capped at the balance, the rest ``unrecovered``), and stamps take
    back a reward they completed, or become the card's stamp debt when that reward is
    claimed already (``rules.take_back_stamps``). A redeem is reversed by an ``adjust``
    giving back what it took. Either references the undone entry and says
    ``details.undo``. ``check(original_row)`` runs under the card's lock before anything is
    written (the till's own rules: who may undo and for how long).

    :raises ResourceNotFound: the member or the entry is missing, another card's, or of a
        kind that cannot be undone.
    :raises ResourceConflict: the card is closed, or the entry is refunded or undone already.
    """
    card = session.execute(
        ledger.LOCK_CARD, {"member_id": member_id, "merchant_id": merchant_id}
    ).first()
    if card is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    scope = ledger.IdempotencyScope.of(idempotency_key, "transaction", member_id,
                                       {"undo": entry_id})
    done = ledger.replay(session, merchant_id, scope)
    if done:
        return done
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    original = session.execute(
        select(TXN).where(TXN.c.id == entry_id, TXN.c.card_id == card.id,
                          TXN.c.type.in_(("earn", "redeem")))
    ).first()
    if original is None:
        raise ResourceNotFound(f"entry_id: no purchase, earn or redeem {entry_id} on this card",
                               field="entry_id")
    if session.scalar(select(func.count()).select_from(TXN).where(
            TXN.c.card_id == card.id, TXN.c.reference_id == original.id,
            TXN.c.type.in_(("refund", "adjust")))):
        raise ResourceConflict(f"entry_id: {entry_id} is refunded or undone already",
                               field="entry_id")
    if check is not None:
        check(original)
    reason = f"undo of {entry_id}"
    if original.type == "redeem":
        change = ledger.Change("adjust", points=-original.points, reason=reason,
                               reference_id=original.id, details={"undo": entry_id})
    else:
        points = original.points if card.kind != "stamps" else 0
        amount = original.amount_minor
        change = ledger.Change(
            "refund", points=-points, stamps=-original.stamps, amount_minor=amount,
            spend_minor=-(amount or 0), lifetime_points=-points, reason=reason,
            reference_id=original.id, cap_at_zero=True, reclaim_rewards=True,
            lot_of=original.id,
            details={"undo": entry_id, "reversed_points": points,
                     "reversed_stamps": original.stamps})
    entry = ledger.apply_change(session, merchant_id, card, change, idempotency=scope,
                                actor=actor)
    return ledger.Posted(entry, card.currency, replayed=False)
