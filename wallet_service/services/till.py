"""The till: staff post purchases, stamps and redemptions on a shared phone or tablet, with
the fraud controls merchants expect (spec: /work/shared/product/cockpit.md, "The till flow").

A *till device* is registered once by the owner or a manager as a till of one store location
(:func:`register_device`); it keeps a long-lived random token (only its SHA-256 hash is
stored). Staff then sign in on it with a personal PIN (:func:`sign_in`), hashed with
Argon2id; five wrong PINs in a row lock the PIN for 15 minutes. A signed-in staff user at a
device is a :class:`TillContext`, and every ledger row it posts records the user and the
store (:class:`.ledger.Actor`).

Everything the till posts goes through the same services as the API (:mod:`.transactions`,
:mod:`.rewards`), so the program's rules, the stamp window (``max_per_window`` per
``window_minutes``) and idempotency hold at the till as they do on the API. On top, the
owner's *limits* (:class:`Limits`): most points or stamps in one transaction, for one
customer in a day, and by one staff user in a day, a day being a day of the merchant's
calendar (:mod:`wallet_service.local_time`). A post runs in a savepoint; when the entry it
wrote breaks a limit, the savepoint is rolled back, the hit is recorded as a till event and
:class:`LimitReached` is raised, so the caller commits (keeping the record) and answers 409.

Staff may undo their own earn or redeem within :data:`UNDO_MINUTES` (:func:`undo`): a
reversal with the rules of a refund (:func:`.transactions.reverse_entry`).

The console's unusual-activity feed reads :func:`activity`: per staff user and store, the
till's transactions, customers found by typing instead of scanning, undos and limits hit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InvalidInput
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..local_time import local_date
from ..local_time import start_of_day
from ..models import ConsoleUser
from ..models import Location
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Reward
from ..models import StaffPin
from ..models import TillDevice
from ..models import TillEvent
from ..models import TillLimit
from ..permissions import ROLES
from ..permissions import Permission
from ..permissions import Role
from ..rules import discount_percent
from ..rules import purchase_earns
from ..rules import stamps_for_purchase
from ..rules import standing
from ..rules import to_minor
from . import ledger
from . import rewards
from . import transactions
from .locations import get_location
from .members import find_members
from .merchants import time_zone_of

TXN = ledger.TXN

#: Wrong PINs in a row that lock a PIN, and for how long.
PIN_FAILURES_TO_LOCK = 5
PIN_LOCK = dt.timedelta(minutes=15)
#: How long after posting an entry its staff user may undo it.
UNDO_MINUTES = 5
#: The till's entry types, for the activity feed.
_POSTED_TYPES = ("earn", "redeem", "refund", "reward", "coupon", "adjust")

_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- devices ----------------------------------------------------------------------------


def register_device(session: Session, merchant_id: int, location_id: int, name: str, *,
                    registered_by: int | None) -> tuple[TillDevice, str]:
    """Make this device a till of the merchant's store ``location_id``. Returns the device
    and its token, which is shown (set as a cookie) once.

    :raises ResourceNotFound: the location is missing, deleted or another merchant's.
    :raises ValidationFailed: the name is empty or longer than 100 characters.
    """
    location = get_location(session, merchant_id, location_id)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("name: 1 to 100 characters", field="name")
    token = secrets.token_urlsafe(32)
    device = TillDevice(merchant_id=merchant_id, location_id=location.id, name=name,
                        token_hash=token_hash(token), registered_by=registered_by)
    session.add(device)
    session.flush()
    return device, token


def device_for_token(session: Session, token: str | None) -> TillDevice | None:
    """The registered, not revoked device whose token is ``token``."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    device = session.scalar(select(TillDevice).where(TillDevice.token_hash == digest,
                                                     TillDevice.revoked_at.is_(None)))
    if device is None or not hmac.compare_digest(device.token_hash, digest):
        return None
    return device


def location_name(session: Session, device: TillDevice) -> str | None:
    """The name of the store the device is a till of."""
    location = session.get(Location, device.location_id)
    return location.name if location is not None else None


def list_devices(session: Session, merchant_id: int) -> list[TillDevice]:
    return list(session.scalars(select(TillDevice).where(
        TillDevice.merchant_id == merchant_id, TillDevice.revoked_at.is_(None))
        .order_by(TillDevice.id)))


def revoke_device(session: Session, merchant_id: int, device_id: int) -> None:
    """:raises ResourceNotFound: missing or another merchant's."""
    device = session.get(TillDevice, device_id)
    if device is None or device.merchant_id != merchant_id:
        raise ResourceNotFound(f"device {device_id} not found", field="device_id")
    device.revoked_at = device.revoked_at or utcnow()


# --- PINs -------------------------------------------------------------------------------


def _staff_user(session: Session, merchant_id: int, user_id: int) -> ConsoleUser:
    user = session.get(ConsoleUser, user_id)
    if user is None or user.merchant_id != merchant_id or user.disabled_at is not None:
        raise ResourceNotFound(f"user {user_id} not found", field="user_id")
    return user


def set_pin(session: Session, merchant_id: int, user_id: int, pin: str) -> None:
    """Set (or replace) a console user's till PIN: 4 to 8 digits. Clears a lock.

    :raises ResourceNotFound: the user is missing, disabled or another merchant's.
    :raises ValidationFailed: the PIN is not 4 to 8 digits, or all one digit.
    """
    _staff_user(session, merchant_id, user_id)
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8) or len(set(pin)) == 1:
        raise ValidationFailed("pin: 4 to 8 digits, not all the same", field="pin")
    row = session.get(StaffPin, user_id) or StaffPin(user_id=user_id, merchant_id=merchant_id)
    row.pin_hash, row.failures, row.locked_until = _hasher.hash(pin), 0, None
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


@dataclass(frozen=True)
class StaffMember:
    """Someone who can sign in at the merchant's tills: a console user with a PIN."""

    user_id: int
    label: str
    role: str


def staff_for_device(session: Session, device: TillDevice) -> list[StaffMember]:
    """The device's merchant's users who have a PIN and may post at the till."""
    rows = session.execute(
        select(ConsoleUser.id, ConsoleUser.email, ConsoleUser.role)
        .join(StaffPin, StaffPin.user_id == ConsoleUser.id)
        .where(ConsoleUser.merchant_id == device.merchant_id,
               ConsoleUser.disabled_at.is_(None))
        .order_by(ConsoleUser.email)
    ).all()
    return [StaffMember(r.id, r.email.split("@")[0], r.role) for r in rows
            if Permission.TRANSACTIONS_WRITE in _role_permissions(r.role)]


def _role_permissions(role: str) -> frozenset[Permission]:
    try:
        return ROLES[Role(role)]
    except ValueError:
        return frozenset()


@dataclass(frozen=True)
class TillContext:
    """A staff user signed in at a till device: who posts, where."""

    merchant_id: int
    user_id: int
    location_id: int
    device_id: int
    role: str

    @property
    def actor(self) -> ledger.Actor:
        return ledger.Actor(staff_user_id=self.user_id, location_id=self.location_id)

    @property
    def permissions(self) -> frozenset[Permission]:
        return _role_permissions(self.role)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a PIN: ``context`` when it matched; else ``locked_until`` when the PIN
    is locked (now or by this attempt), or the ``attempts_left`` before it locks."""

    context: TillContext | None
    locked_until: dt.datetime | None = None
    attempts_left: int | None = None


def sign_in(session: Session, device: TillDevice, user_id: int, pin: str, *,
            now: dt.datetime | None = None) -> SignIn:
    """Check ``pin`` for the user at ``device``. A wrong PIN counts towards the lock and
    is recorded (``pin_failed``, ``pin_locked``); the caller commits either way. A locked
    PIN is not even checked."""
    now = now or utcnow()
    row = session.get(StaffPin, user_id)
    user = session.get(ConsoleUser, user_id)
    if (row is None or user is None or user.merchant_id != device.merchant_id
            or row.merchant_id != device.merchant_id or user.disabled_at is not None
            or Permission.TRANSACTIONS_WRITE not in _role_permissions(user.role)):
        # Spend the same time as a real check, so a missing user does not answer faster.
        _verify(_DUMMY_HASH, pin)
        return SignIn(None, attempts_left=PIN_FAILURES_TO_LOCK)
    if row.locked_until is not None and row.locked_until > now:
        return SignIn(None, locked_until=row.locked_until)
    if _verify(row.pin_hash, pin):
        row.failures, row.locked_until = 0, None
        device.last_seen_at = now
        return SignIn(TillContext(device.merchant_id, user_id, device.location_id, device.id,
                                  user.role))
    row.failures += 1
    kind = "pin_failed"
    if row.failures >= PIN_FAILURES_TO_LOCK:
        row.failures, row.locked_until, kind = 0, now + PIN_LOCK, "pin_locked"
    _record(session, device.merchant_id, user_id, device.location_id, device.id, kind)
    if row.locked_until is not None and row.locked_until > now:
        return SignIn(None, locked_until=row.locked_until)
    return SignIn(None, attempts_left=PIN_FAILURES_TO_LOCK - row.failures)


_DUMMY_HASH = _hasher.hash("not a pin")


def _verify(pin_hash: str, pin: str) -> bool:
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def context_for(session: Session, device: TillDevice, user_id: int) -> TillContext | None:
    """The context of a user signed in earlier on ``device`` (from the device's session),
    or None when the user may no longer post (disabled, PIN removed, role changed)."""
    user = session.get(ConsoleUser, user_id)
    if (user is None or user.merchant_id != device.merchant_id or user.disabled_at is not None
            or session.get(StaffPin, user_id) is None
            or Permission.TRANSACTIONS_WRITE not in _role_permissions(user.role)):
        return None
    return TillContext(device.merchant_id, user.id, device.location_id, device.id, user.role)


# --- limits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a staff user may post at the till; None: no limit."""

    points_per_transaction: int | None = None
    stamps_per_transaction: int | None = None
    points_per_customer_day: int | None = None
    stamps_per_customer_day: int | None = None
    points_per_staff_day: int | None = None
    stamps_per_staff_day: int | None = None


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


def set_limits(session: Session, merchant_id: int, user_id: int | None,
               limits: Limits) -> None:
    """The limits of one staff user, or (``user_id`` None) of every staff user without
    limits of their own.

    :raises ResourceNotFound: the user is missing or another merchant's.
    :raises ValidationFailed: a limit below zero (names it).
    """
    if user_id is not None:
        _staff_user(session, merchant_id, user_id)
    for name in LIMIT_NAMES:
        value = getattr(limits, name)
        if value is not None and value < 0:
            raise ValidationFailed(f"{name}: 0 or more, or none", field=name)
    row = session.scalar(select(TillLimit).where(
        TillLimit.merchant_id == merchant_id,
        TillLimit.user_id.is_(None) if user_id is None else TillLimit.user_id == user_id))
    if row is None:
        row = TillLimit(merchant_id=merchant_id, user_id=user_id)
        session.add(row)
    for name in LIMIT_NAMES:
        setattr(row, name, getattr(limits, name))
    row.updated_at = utcnow()
    session.flush()


def limits_for(session: Session, merchant_id: int, user_id: int) -> Limits:
    """The user's own limits, else the merchant's limits for every staff user, else none."""
    rows = {r.user_id: r for r in session.scalars(select(TillLimit).where(
        TillLimit.merchant_id == merchant_id,
        (TillLimit.user_id == user_id) | TillLimit.user_id.is_(None)))}
    row = rows.get(user_id) or rows.get(None)
    if row is None:
        return Limits()
    return Limits(**{name: getattr(row, name) for name in LIMIT_NAMES})


class LimitReached(ResourceConflict):
    """A post at the till would break one of the owner's limits (named in ``limit``); the
    hit is recorded, so the caller commits before answering."""

    title = "Limit reached"


def _check_limits(session: Session, ctx: TillContext, card_id: int, entry: ledger.Entry,
                  now: dt.datetime) -> None:
    """:raises LimitReached: ``entry`` (just written) breaks one of the user's limits."""
    gained = {"points": max(entry.points, 0) if entry.type == "earn" else 0,
              "stamps": max(entry.stamps, 0) if entry.type == "earn" else 0}
    if not any(gained.values()):
        return
    limits = limits_for(session, ctx.merchant_id, ctx.user_id)
    for unit in ("points", "stamps"):
        cap = getattr(limits, f"{unit}_per_transaction")
        if cap is not None and gained[unit] > cap:
            raise _limit(f"{unit}_per_transaction", unit, cap, gained[unit])
    zone = time_zone_of(session, ctx.merchant_id)
    since = start_of_day(local_date(now, zone), zone)
    # The till's credits today (this entry included): earns, less the undos of them.
    day = (TXN.c.created_at >= since, TXN.c.staff_user_id.is_not(None),
           TXN.c.type.in_(("earn", "refund")), TXN.c.merchant_id == ctx.merchant_id)
    sums = (func.coalesce(func.sum(TXN.c.points), 0), func.coalesce(func.sum(TXN.c.stamps), 0))
    for scope, where in (("customer_day", TXN.c.card_id == card_id),
                         ("staff_day", TXN.c.staff_user_id == ctx.user_id)):
        points, stamps = session.execute(select(*sums).where(*day, where)).one()
        for unit, total in (("points", int(points)), ("stamps", int(stamps))):
            cap = getattr(limits, f"{unit}_per_{scope}")
            if cap is not None and gained[unit] and total > cap:
                raise _limit(f"{unit}_per_{scope}", unit, cap, gained[unit],
                             left=max(cap - (total - gained[unit]), 0))


def _limit(name: str, unit: str, cap: int, asked: int, left: int | None = None) -> LimitReached:
    what = {"points_per_transaction": "in one transaction",
            "stamps_per_transaction": "in one transaction",
            "points_per_customer_day": "for one customer a day",
            "stamps_per_customer_day": "for one customer a day",
            "points_per_staff_day": "by one staff member a day",
            "stamps_per_staff_day": "by one staff member a day"}[name]
    extra = {} if left is None else {"left": left}
    return LimitReached(f"{unit}: the limit is {cap} {unit} {what}; this gives {asked}",
                        field=unit, limit=name, cap=cap, asked=asked, **extra)


# --- what the till shows ----------------------------------------------------------------


def _record(session: Session, merchant_id: int, user_id: int | None, location_id: int | None,
            device_id: int | None, kind: str, card_id: int | None = None,
            details: dict[str, Any] | None = None) -> None:
    session.add(TillEvent(merchant_id=merchant_id, user_id=user_id, location_id=location_id,
                          device_id=device_id, kind=kind, card_id=card_id, details=details))
    session.flush()


def record(session: Session, ctx: TillContext, kind: str, card_id: int | None = None,
           details: dict[str, Any] | None = None) -> None:
    """Record a till event of ``ctx`` (``limit``, ``manual``, ``undo``)."""
    _record(session, ctx.merchant_id, ctx.user_id, ctx.location_id, ctx.device_id, kind,
            card_id, details)


def find_member(session: Session, ctx: TillContext, code: str, *, scanned: bool,
                default_region: str) -> int:
    """The member whose card number is ``code`` (scanned, or typed), or whose phone it is
    (typed). One merchant's till never finds another's card: the lookup is the merchant's.
    A customer found by typing is recorded (``manual``) for the activity feed.

    :raises ResourceNotFound: no card of this merchant has this number or phone.
    """
    code = code.strip()
    found = find_members(session, ctx.merchant_id, barcode=code, default_region=default_region,
                         limit=1) if code else []
    if not found and not scanned and code:
        try:
            found = find_members(session, ctx.merchant_id, phone=code,
                                 default_region=default_region, limit=2)
        except InvalidInput:  # not a phone number either
            found = []
        if len(found) > 1:  # one phone in several programs: the card number decides
            found = []
    if not found:
        raise ResourceNotFound("code: no card with this number or phone", field="code")
    member = found[0]
    if not scanned:
        record(session, ctx, "manual", member.card.id)
    return member.id


@dataclass(frozen=True)
class ReadyItem:
    id: int
    name: Any  # one text or one per language
    cost: int | None = None


@dataclass(frozen=True)
class MemberView:
    """What the till shows of a member: the card as the customer sees it, what can be
    redeemed now, and the last transactions."""

    member_id: int
    name: str
    card_number: str
    status: str
    standing: Any  # rules.Standing
    balance: int
    rewards: tuple[ReadyItem, ...]
    coupons: tuple[ReadyItem, ...]
    last: tuple[ledger.Entry, ...]
    currency: str
    kind: str
    max_redeem_percent: Decimal | None


def member_view(session: Session, merchant_id: int, member_id: int) -> MemberView:
    """:raises ResourceNotFound: the member is missing or another merchant's."""
    row = session.execute(
        select(Member.name, LoyaltyCard, LoyaltyProgram)
        .join(LoyaltyCard, LoyaltyCard.member_id == Member.id)
        .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
        .where(Member.id == member_id, Member.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    name, card, program = row
    shown = standing(program.kind, program.rules, program.currency, card)
    catalog = session.scalars(select(Reward).where(Reward.program_id == program.id,
                                                   Reward.active.is_(True))
                              .order_by(Reward.id)).all()
    ready = tuple(
        ReadyItem(r.id, r.name, r.cost_stamps if r.cost_stamps is not None else r.cost_points)
        for r in catalog
        if (r.cost_stamps is not None and card.stamps >= r.cost_stamps)
        or (r.cost_stamps is None and card.balance >= (r.cost_points or 0)))
    coupons = tuple(ReadyItem(c.coupon_id, c.title)
                    for c in rewards.member_coupons(session, card.id, active_at=utcnow()))
    last, _ = ledger.list_transactions(session, merchant_id, member_id, limit=5)
    share = None
    if program.kind == "cashback":
        share = Decimal(str((program.rules.get("cashback") or {})
                            .get("max_redeem_percent", 100)))
    return MemberView(member_id, name, card.serial_number, card.status, shown, card.balance,
                      ready, coupons, tuple(last), program.currency, program.kind, share)


@dataclass(frozen=True)
class Quote:
    """What a purchase of ``amount_minor`` would give, shown before confirming."""

    amount_minor: int
    points: int
    stamps: int
    discount_percent: Decimal | None
    discount_minor: int


def quote_purchase(session: Session, merchant_id: int, member_id: int,
                   amount: Decimal) -> Quote:
    """Points, cashback, stamps or the discount a purchase of ``amount`` (before any
    discount) gives this member now, by the program's rules and the card's tier.

    :raises ResourceNotFound: the member is missing or another merchant's.
    :raises ValidationFailed: the amount is not a valid amount of the currency.
    """
    row = session.execute(
        select(LoyaltyCard.tier, LoyaltyProgram.kind, LoyaltyProgram.rules,
               LoyaltyProgram.currency)
        .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
        .where(LoyaltyCard.member_id == member_id, LoyaltyCard.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    minor = to_minor(row.currency, amount)
    if minor <= 0:
        raise ValidationFailed("amount: more than zero", field="amount")
    points = purchase_earns(row.kind, row.rules, row.currency, [(minor, None)], row.tier)
    stamps = stamps_for_purchase(row.rules, row.currency, minor) if row.kind == "stamps" else 0
    share = discount_percent(row.rules, row.tier)
    off = int(Decimal(minor) * share / 100) if share else 0
    return Quote(minor, points, stamps, share, off)


# --- posting ----------------------------------------------------------------------------


def post(session: Session, ctx: TillContext, member_id: int,
         do: Callable[[ledger.Actor], ledger.Posted]) -> ledger.Posted:
    """Run ``do`` (a service call posting for ``member_id`` as the given actor) under the
    till's rules: in a savepoint, checked against the user's limits, the hits recorded.

    :raises PermissionDenied: (by the caller) the user's role may not post.
    :raises LimitReached: the entry breaks a limit (rolled back, the hit recorded), or the
        program's stamp window refuses the stamps (recorded as ``stamp_window``).
    """
    card_id = session.scalar(select(LoyaltyCard.id).where(
        LoyaltyCard.member_id == member_id, LoyaltyCard.merchant_id == ctx.merchant_id))
    try:
        with session.begin_nested():
            posted = do(ctx.actor)
            if not posted.replayed and card_id is not None:
                _check_limits(session, ctx, card_id, posted.entry, posted.entry.created_at)
    except LimitReached as exc:
        record(session, ctx, "limit", card_id, {"limit": exc.extra["limit"], **exc.extra})
        raise
    except ResourceConflict as exc:
        if exc.field == "stamps" and "allowed" in exc.extra:
            record(session, ctx, "limit", card_id,
                   {"limit": "stamp_window", "allowed": exc.extra["allowed"]})
            raise LimitReached(exc.message, field="stamps", limit="stamp_window",
                               **exc.extra) from exc
        raise
    capped = (posted.entry.details or {}).get("stamp_limit")
    if capped and not posted.replayed:
        record(session, ctx, "limit", card_id, {"limit": "stamp_window", "held_back": capped})
    return posted


def undo(session: Session, ctx: TillContext, member_id: int, entry_id: int, *,
         idempotency_key: str | None, now: dt.datetime | None = None) -> ledger.Posted:
    """Undo the user's own earn or redeem of the last :data:`UNDO_MINUTES` minutes
    (:func:`.transactions.reverse_entry`), recorded for the activity feed.

    :raises ResourceConflict: another user posted it, or it is too old to undo here (a
        manager refunds it in the console), or it is undone already.
    """
    now = now or utcnow()

    def check(original: Any) -> None:
        if original.staff_user_id != ctx.user_id:
            raise ResourceConflict("entry_id: only who posted it can undo it here",
                                   field="entry_id")
        if original.created_at < now - dt.timedelta(minutes=UNDO_MINUTES):
            raise ResourceConflict(
                f"entry_id: undo works for {UNDO_MINUTES} minutes; refund it instead",
                field="entry_id")

    posted = transactions.reverse_entry(session, ctx.merchant_id, member_id, entry_id,
                                        idempotency_key=idempotency_key, actor=ctx.actor,
                                        check=check)
    if not posted.replayed:
        card_id = session.scalar(select(LoyaltyCard.id).where(
            LoyaltyCard.member_id == member_id, LoyaltyCard.merchant_id == ctx.merchant_id))
        record(session, ctx, "undo", card_id, {"entry_id": entry_id})
    return posted


# --- the unusual-activity feed ----------------------------------------------------------


@dataclass(frozen=True)
class ActivityRow:
    """One staff user at one store over a period."""

    user_id: int
    location_id: int | None
    transactions: int
    manual: int
    undos: int
    limits_hit: int

    @property
    def undo_rate(self) -> float:
        return self.undos / self.transactions if self.transactions else 0.0

    @property
    def manual_rate(self) -> float:
        looked_up = self.transactions or 1
        return min(self.manual / looked_up, 1.0)

    @property
    def unusual(self) -> bool:
        """Worth a look: a limit hit, one undo in five transactions or more, or most
        customers typed in rather than scanned (a card number read out loud)."""
        return (self.limits_hit > 0 or (self.transactions >= 5 and self.undo_rate >= 0.2)
                or (self.manual >= 5 and self.manual_rate >= 0.5))


def activity(session: Session, merchant_id: int, since: dt.datetime,
             until: dt.datetime | None = None) -> list[ActivityRow]:
    """The till's activity per staff user and store from ``since`` (to ``until``), the
    unusual first."""
    until = until or utcnow()
    counts: dict[tuple[int, int | None], dict[str, int]] = {}
    posted = session.execute(
        select(TXN.c.staff_user_id, TXN.c.location_id, func.count())
        .where(TXN.c.merchant_id == merchant_id, TXN.c.staff_user_id.is_not(None),
               TXN.c.created_at >= since, TXN.c.created_at < until,
               TXN.c.type.in_(_POSTED_TYPES))
        .group_by(TXN.c.staff_user_id, TXN.c.location_id))
    for user, location, n in posted:
        counts.setdefault((user, location), {})["transactions"] = int(n)
    events = session.execute(
        select(TillEvent.user_id, TillEvent.location_id, TillEvent.kind, func.count())
        .where(TillEvent.merchant_id == merchant_id, TillEvent.user_id.is_not(None),
               TillEvent.created_at >= since, TillEvent.created_at < until)
        .group_by(TillEvent.user_id, TillEvent.location_id, TillEvent.kind))
    for user, location, kind, n in events:
        counts.setdefault((user, location), {})[kind] = int(n)
    rows = [ActivityRow(user, location, c.get("transactions", 0), c.get("manual", 0),
                        c.get("undo", 0), c.get("limit", 0))
            for (user, location), c in counts.items()]
    return sorted(rows, key=lambda r: (not r.unusual, r.user_id, r.location_id or 0))


def recent_events(session: Session, merchant_id: int, *, kinds: tuple[str, ...] = ("limit",),
                  limit: int = 50) -> list[TillEvent]:
    """The merchant's latest till events of ``kinds``, newest first."""
    return list(session.scalars(select(TillEvent).where(
        TillEvent.merchant_id == merchant_id, TillEvent.kind.in_(kinds))
        .order_by(TillEvent.id.desc()).limit(limit)))


# --- what the console shows and changes -------------------------------------------------


def own_limits(session: Session, merchant_id: int) -> dict[int | None, Limits]:
    """The merchant's limit rows: per staff user id, and (key None) the default."""
    return {row.user_id: Limits(**{name: getattr(row, name) for name in LIMIT_NAMES})
            for row in session.scalars(select(TillLimit).where(
                TillLimit.merchant_id == merchant_id))}


def clear_limits(session: Session, merchant_id: int, user_id: int) -> None:
    """The user follows the default limits again.

    :raises ResourceNotFound: the user is missing or another merchant's.
    """
    _staff_user(session, merchant_id, user_id)
    row = session.scalar(select(TillLimit).where(TillLimit.merchant_id == merchant_id,
                                                 TillLimit.user_id == user_id))
    if row is not None:
        session.delete(row)
        session.flush()


def users_with_pin(session: Session, merchant_id: int) -> set[int]:
    """The ids of the merchant's users who have a till PIN."""
    return set(session.scalars(select(StaffPin.user_id).where(
        StaffPin.merchant_id == merchant_id)))
