"""The rewards catalog and coupons.

A reward costs points (or stamps, in a stamp program); claiming it is a ledger entry of type
``reward`` referencing the reward. A coupon is given to the cards of a segment when it is
created (each gets a *grant*, and the card shows it); redeeming marks the grant used with a
conditional ``UPDATE ... WHERE used_at IS NULL``, so of two concurrent redemptions exactly
one wins, on either database, and writes a ``coupon`` ledger entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InsufficientBalance
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..models import Coupon
from ..models import CouponGrant
from ..models import LoyaltyCard
from ..models import Reward
from . import ledger
from .campaigns import Segment
from .campaigns import segment_card_ids
from .outbox import publish_cards
from .programs import get_program

CARDS = LoyaltyCard.__table__
GRANTS = CouponGrant.__table__


@dataclass(frozen=True)
class NewReward:
    """A catalog reward: its cost in points or in stamps (exactly one)."""

    name: str
    description: str | None = None
    cost_points: int | None = None
    cost_stamps: int | None = None


@dataclass(frozen=True)
class NewCoupon:
    """A coupon for the cards of ``segment``, valid within the period given."""

    title: str
    description: str | None = None
    segment: Segment = Segment()
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


def create_reward(session: Session, merchant_id: int, program_id: int,
                  data: NewReward) -> Reward:
    """:raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: a stamp cost in a program without stamps, or the reverse."""
    program = get_program(session, merchant_id, program_id)
    if data.cost_stamps is not None and program.kind != "stamps":
        raise ValidationFailed("cost_stamps: only stamp programs have stamps",
                               field="cost_stamps")
    if data.cost_points is not None and program.kind not in ("points", "cashback", "stamps"):
        raise ValidationFailed(f"cost_points: a {program.kind} program has no balance",
                               field="cost_points")
    reward = Reward(program_id=program.id, name=data.name, description=data.description,
                    cost_points=data.cost_points, cost_stamps=data.cost_stamps, active=True)
    session.add(reward)
    session.flush()
    return reward


def list_rewards(session: Session, merchant_id: int, program_id: int) -> list[Reward]:
    program = get_program(session, merchant_id, program_id)
    return list(session.scalars(select(Reward).where(Reward.program_id == program.id,
                                                     Reward.active.is_(True))
                                .order_by(Reward.id)))


def _card_id(session: Session, merchant_id: int, member_id: int) -> int:
    card_id = session.scalar(select(CARDS.c.id).where(CARDS.c.member_id == member_id,
                                                      CARDS.c.merchant_id == merchant_id))
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    return int(card_id)


def redeem_reward(session: Session, merchant_id: int, member_id: int, reward_id: int, *,
                  idempotency_key: str | None = None) -> ledger.Posted:
    """Claim a catalog reward for its cost, atomically with the balance check.

    :raises ResourceNotFound: the member or reward is missing, or another program's.
    :raises InsufficientBalance: not enough points or stamps.
    :raises ResourceConflict: the card is closed.
    """
    card = ledger.lock_card(session, _card_id(session, merchant_id, member_id))
    if idempotency_key is not None:
        replay = session.execute(ledger.FIND_KEY, {"merchant_id": merchant_id,
                                                    "key": idempotency_key}).first()
        if replay is not None:
            if replay.type != "reward" or replay.reference_id != reward_id:
                raise ValidationFailed("Idempotency-Key: this key was already used for a "
                                       "different request", field="Idempotency-Key")
            return ledger.Posted(ledger.entry_from_row(replay, member_id), card.currency, True)
    reward = session.get(Reward, reward_id)
    if reward is None or reward.program_id != card.program_id or not reward.active:
        raise ResourceNotFound(f"reward {reward_id} not found", field="reward_id")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    change = ledger.Change("reward", reason=reward.name, reference_id=reward.id,
                           details={"reward": reward.name})
    if reward.cost_stamps is not None:
        if card.stamps < reward.cost_stamps:
            raise InsufficientBalance(
                f"stamps: the card has {card.stamps}, the reward costs {reward.cost_stamps}",
                field="stamps", balance=card.stamps)
        change.stamps = -reward.cost_stamps
    else:
        change.points = -(reward.cost_points or 0)
    entry = ledger.apply_change(session, merchant_id, card, change,
                                idempotency_key=idempotency_key)
    return ledger.Posted(entry, card.currency, False)


# --- coupons ----------------------------------------------------------------------------


def create_coupon(session: Session, merchant_id: int, program_id: int,
                  data: NewCoupon) -> tuple[Coupon, int]:
    """Create the coupon and give it to every card of its segment (each card shows it).

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    now = utcnow()
    coupon = Coupon(program_id=program.id, title=data.title, description=data.description,
                    segment=data.segment.as_json(),
                    valid_from=data.valid_from, valid_until=data.valid_until, created_at=now)
    session.add(coupon)
    session.flush()
    ids = segment_card_ids(session, program.id, data.segment, now)
    if ids:
        session.execute(GRANTS.insert(), [{"coupon_id": coupon.id, "card_id": cid,
                                           "created_at": now} for cid in ids])
        publish_cards(session, ids, now)
    return coupon, len(ids)


def coupon_counts(session: Session, coupon_id: int) -> tuple[int, int]:
    row = session.execute(
        select(func.count(), func.count(GRANTS.c.used_at)).where(GRANTS.c.coupon_id == coupon_id)
    ).one()
    return int(row[0]), int(row[1])


@dataclass(frozen=True)
class MemberCoupon:
    """A coupon as one card holds it."""

    grant_id: int
    coupon_id: int
    title: str
    description: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    used_at: dt.datetime | None


def member_coupons(session: Session, card_id: int, *, active_at: dt.datetime | None = None
                   ) -> list[MemberCoupon]:
    """A card's coupons, newest first; with ``active_at``, only unused ones valid then."""
    query = (
        select(GRANTS.c.id.label("grant_id"), GRANTS.c.used_at, Coupon.id.label("coupon_id"),
               Coupon.title, Coupon.description, Coupon.valid_from, Coupon.valid_until)
        .join(Coupon, Coupon.id == GRANTS.c.coupon_id)
        .where(GRANTS.c.card_id == card_id)
        .order_by(GRANTS.c.id.desc())
    )
    rows = [MemberCoupon(**r._mapping) for r in session.execute(query)]
    if active_at is not None:
        rows = [r for r in rows if r.used_at is None
                and _valid(r.valid_from, r.valid_until, active_at)]
    return rows


def _valid(valid_from: dt.datetime | None, valid_until: dt.datetime | None,
           at: dt.datetime) -> bool:
    return ((valid_from is None or valid_from <= at)
            and (valid_until is None or at < valid_until))


def list_member_coupons(session: Session, merchant_id: int, member_id: int
                        ) -> list[MemberCoupon]:
    return member_coupons(session, _card_id(session, merchant_id, member_id))


def redeem_coupon(session: Session, merchant_id: int, member_id: int, coupon_id: int
                  ) -> ledger.Posted:
    """Use the member's coupon once.

    :raises ResourceNotFound: the member has no such coupon.
    :raises ResourceConflict: it is used already, not valid now, or the card is closed.
    """
    card = ledger.lock_card(session, _card_id(session, merchant_id, member_id))
    grant = session.execute(
        select(GRANTS.c.id, Coupon.title, Coupon.valid_from, Coupon.valid_until)
        .join(Coupon, Coupon.id == GRANTS.c.coupon_id)
        .where(GRANTS.c.card_id == card.id, GRANTS.c.coupon_id == coupon_id)
    ).first()
    if grant is None:
        raise ResourceNotFound(f"coupon {coupon_id} not found for this member",
                               field="coupon_id")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    now = utcnow()
    if not _valid(grant.valid_from, grant.valid_until, now):
        raise ResourceConflict("coupon_id: the coupon is not valid now", field="coupon_id")
    used = session.execute(
        update(GRANTS).where(GRANTS.c.id == grant.id, GRANTS.c.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise ResourceConflict("coupon_id: the coupon is used already", field="coupon_id")
    entry = ledger.apply_change(session, merchant_id, card, ledger.Change(
        "coupon", reason=grant.title, reference_id=grant.id, force_visible=True,
        details={"coupon_id": coupon_id}), now=now)
    return ledger.Posted(entry, card.currency, False)
