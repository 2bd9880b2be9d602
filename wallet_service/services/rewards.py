"""The rewards catalog and coupons.

A reward costs points (or stamps, in a stamp program); claiming it is a ledger entry of type
``reward`` referencing the reward. A coupon is given to the cards of a segment when it is
created (each gets a *grant*, and the card shows it); an *evergreen* coupon is also given by
the daily job to cards that enter its segment later, once per card. Redeeming marks the
grant used with a
conditional ``UPDATE ... WHERE used_at IS NULL``, so of two concurrent redemptions exactly
one wins, on either database, and writes a ``coupon`` ledger entry.

Rewards and coupons are edited with JSON Merge Patches (RFC 7396) checked by the model that
creates them, and retired rather than deleted: a retired reward leaves the catalog and
cannot be claimed (404, as a reward that never existed); a retired coupon leaves every card
that shows it and cannot be used, while a grant already used stays in the member's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InsufficientBalance
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..i18n import program_text
from ..merge_patch import merge_patch
from ..models import Coupon
from ..models import CouponGrant
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Reward
from ..rules import tier_rank
from ..schemas import CouponCreate
from ..schemas import RewardCreate
from ..validation import raise_for
from . import ledger
from . import webhooks
from .campaigns import Segment
from .campaigns import segment_card_ids
from .outbox import publish_cards
from .programs import get_program

CARDS = LoyaltyCard.__table__
GRANTS = CouponGrant.__table__


@dataclass(frozen=True)
class NewReward:
    """A catalog reward: its cost in points or in stamps (exactly one). ``name`` is one
    text, or one per language of the program."""

    name: str | dict[str, str]
    description: str | None = None
    cost_points: int | None = None
    cost_stamps: int | None = None


@dataclass(frozen=True)
class NewCoupon:
    """A coupon for the cards of ``segment``, valid within the period given; an
    ``evergreen`` one also reaches cards that enter the segment later. ``title`` is one
    text, or one per language of the program."""

    title: str | dict[str, str]
    description: str | None = None
    segment: Segment = Segment()
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    evergreen: bool = False


def create_reward(session: Session, merchant_id: int, program_id: int,
                  data: NewReward) -> Reward:
    """:raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: a stamp cost in a program without stamps, or the reverse."""
    program = get_program(session, merchant_id, program_id)
    _check_costs(program, data)
    reward = Reward(program_id=program.id, name=program_text(data.name, program.languages, "name"),
                    description=data.description,
                    cost_points=data.cost_points, cost_stamps=data.cost_stamps, active=True)
    session.add(reward)
    session.flush()
    return reward


def _check_costs(program: LoyaltyProgram, data: NewReward) -> None:
    """:raises ValidationFailed: a stamp cost in a program without stamps, or a points cost
    in a program without a balance."""
    if data.cost_stamps is not None and program.kind != "stamps":
        raise ValidationFailed("cost_stamps: only stamp programs have stamps",
                               field="cost_stamps")
    if data.cost_points is not None and program.kind not in ("points", "cashback", "stamps"):
        raise ValidationFailed(f"cost_points: a {program.kind} program has no balance",
                               field="cost_points")


def list_rewards(session: Session, merchant_id: int, program_id: int, *,
                 include_retired: bool = False) -> list[Reward]:
    """The program's catalog, oldest first; retired rewards only when asked for."""
    program = get_program(session, merchant_id, program_id)
    query = select(Reward).where(Reward.program_id == program.id).order_by(Reward.id)
    if not include_retired:
        query = query.where(Reward.active.is_(True))
    return list(session.scalars(query))


def get_reward(session: Session, merchant_id: int, program_id: int, reward_id: int) -> Reward:
    """A reward of the program, retired or not.

    :raises ResourceNotFound: the program or the reward is missing, or another's.
    """
    program = get_program(session, merchant_id, program_id)
    reward = session.get(Reward, reward_id)
    if reward is None or reward.program_id != program.id:
        raise ResourceNotFound(f"reward {reward_id} not found", field="reward_id")
    return reward


def update_reward(session: Session, merchant_id: int, program_id: int, reward_id: int,
                  patch: dict[str, Any]) -> Reward:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the reward's name, description
    and costs; the merged reward is checked as a new one is (exactly one cost, of a kind
    the program has). Claims already made keep the name they had in the ledger.

    :raises ResourceNotFound: the program or the reward is missing, or another's.
    :raises ValidationFailed: an unknown field, ``null`` on the name, or a merged reward
        that a new one could not be.
    """
    reward = get_reward(session, merchant_id, program_id, reward_id)
    document = {"name": reward.name, "description": reward.description,
                "cost_points": reward.cost_points, "cost_stamps": reward.cost_stamps}
    data = NewReward(**_merged(RewardCreate, document, patch, tuple(document)).model_dump())
    program = session.get_one(LoyaltyProgram, reward.program_id)
    _check_costs(program, data)
    reward.name = program_text(data.name, program.languages, "name")
    reward.description = data.description
    reward.cost_points, reward.cost_stamps = data.cost_points, data.cost_stamps
    session.flush()
    return reward


def retire_reward(session: Session, merchant_id: int, program_id: int,
                  reward_id: int) -> Reward:
    """Take the reward out of the catalog; it can no longer be claimed. Claims already made
    stay in the members' histories. Retiring twice changes nothing.

    :raises ResourceNotFound: the program or the reward is missing, or another's.
    """
    reward = get_reward(session, merchant_id, program_id, reward_id)
    if reward.active:
        reward.active = False
        session.flush()
    return reward


def _merged(model: type[Any], document: dict[str, Any], patch: dict[str, Any],
            editable: tuple[str, ...]) -> Any:
    """``document`` with ``patch`` merged in, validated by ``model`` (the create model).

    :raises ValidationFailed: a key not ``editable``, ``null`` on a required field, or a
        merged document ``model`` refuses.
    """
    for key, value in patch.items():
        if key not in editable:
            raise ValidationFailed(f"{key}: not a field that can be changed", field=key)
        if value is None and model.model_fields[key].is_required():
            raise ValidationFailed(f"{key}: required; null cannot clear it", field=key)
    merged = merge_patch(document, patch)
    try:
        return model.model_validate({k: v for k, v in merged.items() if v is not None})
    except ValidationError as exc:
        raise_for(exc)


def _card_id(session: Session, merchant_id: int, member_id: int) -> int:
    card_id = session.scalar(select(CARDS.c.id).where(CARDS.c.member_id == member_id,
                                                      CARDS.c.merchant_id == merchant_id))
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    return int(card_id)


def redeem_reward(session: Session, merchant_id: int, member_id: int, reward_id: int, *,
                  idempotency_key: str | None = None,
                  actor: ledger.Actor = ledger.NOBODY) -> ledger.Posted:
    """Claim a catalog reward for its cost, atomically with the balance check. With
    ``idempotency_key`` (the ``reward.redeem`` operation), a retry answers with the first
    claim.

    :raises ResourceNotFound: the member or reward is missing, retired, or another
        program's.
    :raises InsufficientBalance: not enough points or stamps.
    :raises ResourceConflict: the card is closed.
    :raises ValidationFailed: the idempotency key was used in another scope
        (:func:`.ledger.replay`).
    """
    card = ledger.lock_card(session, _card_id(session, merchant_id, member_id))
    scope = ledger.IdempotencyScope.of(idempotency_key, "reward.redeem", member_id,
                                       {"reward_id": reward_id})
    done = ledger.replay(session, merchant_id, scope)
    if done:
        return done
    reward = session.get(Reward, reward_id)
    if reward is None or reward.program_id != card.program_id or not reward.active:
        raise ResourceNotFound(f"reward {reward_id} not found", field="reward_id")
    if card.status != "active":
        raise ResourceConflict("the card is closed", field="member_id")
    # The ledger keeps one text: the program's first language's.
    change = ledger.Change("reward", reason=reward.name_plain, reference_id=reward.id,
                           details={"reward": reward.name})
    if reward.cost_stamps is not None:
        if card.stamps < reward.cost_stamps:
            raise InsufficientBalance(
                f"stamps: the card has {card.stamps}, the reward costs {reward.cost_stamps}",
                field="stamps", balance=card.stamps)
        change.stamps = -reward.cost_stamps
    else:
        change.points = -(reward.cost_points or 0)
    entry = ledger.apply_change(session, merchant_id, card, change, idempotency=scope,
                                actor=actor)
    webhooks.record(session, merchant_id, webhooks.REWARD_REDEEMED, {
        "member_id": member_id, "reward": {"id": reward.id, "name": reward.name,
                                           "cost_points": reward.cost_points,
                                           "cost_stamps": reward.cost_stamps},
        "transaction_id": entry.id, "redeemed_at": webhooks.iso(entry.created_at),
    }, member_id=member_id, at=entry.created_at)
    return ledger.Posted(entry, card.currency, False)


# --- coupons ----------------------------------------------------------------------------


def create_coupon(session: Session, merchant_id: int, program_id: int,
                  data: NewCoupon) -> tuple[Coupon, int]:
    """Create the coupon and give it to every card of its segment (each card shows it); an
    evergreen coupon reaches later members through :func:`grant_evergreen_coupons`.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: the segment names a tier the program does not have.
    """
    program = get_program(session, merchant_id, program_id)
    tier = data.segment.tier
    if tier is not None and tier_rank(program.rules, tier) < 0:
        names = ", ".join(t["name"] for t in program.rules.get("tiers") or ()) or "none"
        raise ValidationFailed(
            f"segment.tier: the program has no tier {tier!r} (its tiers: {names})",
            field="segment.tier")
    now = utcnow()
    coupon = Coupon(program_id=program.id,
                    title=program_text(data.title, program.languages, "title"),
                    description=data.description,
                    segment=data.segment.as_json(), evergreen=data.evergreen,
                    valid_from=data.valid_from, valid_until=data.valid_until, created_at=now)
    session.add(coupon)
    session.flush()
    ids = segment_card_ids(session, program.id, data.segment, now)
    if ids:
        session.execute(GRANTS.insert(), [{"coupon_id": coupon.id, "card_id": cid,
                                           "created_at": now} for cid in ids])
        publish_cards(session, ids, now)
    return coupon, len(ids)


def grant_evergreen_coupons(session: Session, program_id: int, now: dt.datetime) -> int:
    """Give the program's evergreen coupons (not retired, not ended) to the cards that
    entered their segment since: once per card, used or not, so running it again gives
    nothing twice. Each card that got one gets a new version, so the phone shows it.
    Returns how many grants were made."""
    coupons = session.execute(
        select(Coupon.id, Coupon.segment)
        .where(Coupon.program_id == program_id, Coupon.evergreen.is_(True),
               Coupon.retired_at.is_(None),
               Coupon.valid_until.is_(None) | (Coupon.valid_until > now))
        .order_by(Coupon.id)
        .with_for_update()  # two runs of the day grant one after the other
    ).all()
    cards: set[int] = set()
    granted = 0
    for coupon in coupons:
        ids = segment_card_ids(session, program_id, Segment.from_json(coupon.segment), now)
        if not ids:
            continue
        had = set(session.scalars(select(GRANTS.c.card_id)
                                  .where(GRANTS.c.coupon_id == coupon.id)))
        new = [cid for cid in ids if cid not in had]
        if new:
            session.execute(GRANTS.insert(), [{"coupon_id": coupon.id, "card_id": cid,
                                               "created_at": now} for cid in new])
            cards.update(new)
            granted += len(new)
    publish_cards(session, sorted(cards), now)
    return granted


def list_coupons(session: Session, merchant_id: int, program_id: int) -> list[Coupon]:
    """The program's coupons, newest first, retired ones too.

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    return list(session.scalars(select(Coupon).where(Coupon.program_id == program.id)
                                .order_by(Coupon.id.desc())))


COUPON_FIELDS = ("title", "description", "valid_until")


def get_coupon(session: Session, merchant_id: int, program_id: int, coupon_id: int) -> Coupon:
    """:raises ResourceNotFound: the program or the coupon is missing, or another's."""
    program = get_program(session, merchant_id, program_id)
    coupon = session.get(Coupon, coupon_id)
    if coupon is None or coupon.program_id != program.id:
        raise ResourceNotFound(f"coupon {coupon_id} not found", field="coupon_id")
    return coupon


def update_coupon(session: Session, merchant_id: int, program_id: int, coupon_id: int,
                  patch: dict[str, Any]) -> Coupon:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the coupon's title, description
    and end (``valid_until``), checked as a new coupon is. Cards show the title and the
    end, so every card that shows the coupon before or after the change gets a new version.

    :raises ResourceNotFound: the program or the coupon is missing, or another's.
    :raises ValidationFailed: an unknown field, ``null`` on the title, or a merged coupon
        that a new one could not be (an end before its start, a time without a zone).
    """
    coupon = get_coupon(session, merchant_id, program_id, coupon_id)
    document = {"title": coupon.title, "description": coupon.description,
                "valid_from": coupon.valid_from, "valid_until": coupon.valid_until}
    data = _merged(CouponCreate, document, patch, COUPON_FIELDS)
    languages = session.get_one(LoyaltyProgram, coupon.program_id).languages
    data.title = program_text(data.title, languages, "title")
    now = utcnow()
    shown_before = _showing(session, coupon, now)
    changed = {key: getattr(data, key) for key in COUPON_FIELDS
               if getattr(data, key) != getattr(coupon, key)}
    if not changed:
        return coupon
    for key, value in changed.items():
        setattr(coupon, key, value)
    session.flush()
    if "title" in changed or "valid_until" in changed:
        publish_cards(session, sorted(shown_before | _showing(session, coupon, now)), now)
    return coupon


def retire_coupon(session: Session, merchant_id: int, program_id: int,
                  coupon_id: int) -> Coupon:
    """Retire the coupon: it leaves every card that shows it (each gets a new version) and
    can no longer be used; grants already used stay in the members' histories. Retiring
    twice changes nothing.

    :raises ResourceNotFound: the program or the coupon is missing, or another's.
    """
    coupon = get_coupon(session, merchant_id, program_id, coupon_id)
    if coupon.retired_at is not None:
        return coupon
    now = utcnow()
    shown = _showing(session, coupon, now)
    coupon.retired_at = now
    session.flush()
    publish_cards(session, sorted(shown), now)
    return coupon


def _showing(session: Session, coupon: Coupon, now: dt.datetime) -> set[int]:
    """The cards that show ``coupon`` at ``now``: it is not retired, valid then, and their
    grant is unused."""
    if coupon.retired_at is not None or not _valid(coupon.valid_from, coupon.valid_until, now):
        return set()
    return set(session.scalars(select(GRANTS.c.card_id).where(
        GRANTS.c.coupon_id == coupon.id, GRANTS.c.used_at.is_(None))))


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
    title: str | dict[str, str]  # one text, or one per language
    description: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    used_at: dt.datetime | None
    retired_at: dt.datetime | None = None


def member_coupons(session: Session, card_id: int, *, active_at: dt.datetime | None = None
                   ) -> list[MemberCoupon]:
    """A card's coupons, newest first: those it can still use and those it used (a retired
    coupon nobody used is gone); with ``active_at``, only unused ones valid then."""
    query = (
        select(GRANTS.c.id.label("grant_id"), GRANTS.c.used_at, Coupon.id.label("coupon_id"),
               Coupon.title, Coupon.title_i18n, Coupon.description, Coupon.valid_from,
               Coupon.valid_until, Coupon.retired_at)
        .join(Coupon, Coupon.id == GRANTS.c.coupon_id)
        .where(GRANTS.c.card_id == card_id)
        .where((Coupon.retired_at.is_(None)) | (GRANTS.c.used_at.is_not(None)))
        .order_by(GRANTS.c.id.desc())
    )
    rows = []
    for r in session.execute(query):
        values = dict(r._mapping)
        values["title"] = values.pop("title_i18n") or values["title"]
        rows.append(MemberCoupon(**values))
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


def redeem_coupon(session: Session, merchant_id: int, member_id: int, coupon_id: int, *,
                  idempotency_key: str | None = None,
                  actor: ledger.Actor = ledger.NOBODY) -> ledger.Posted:
    """Use the member's coupon once. With ``idempotency_key`` (the ``coupon.redeem``
    operation), a retry answers with the first use instead of a conflict.

    :raises ResourceNotFound: the member has no such coupon, or it is retired.
    :raises ResourceConflict: it is used already, not valid now, or the card is closed.
    :raises ValidationFailed: the idempotency key was used in another scope
        (:func:`.ledger.replay`).
    """
    card = ledger.lock_card(session, _card_id(session, merchant_id, member_id))
    scope = ledger.IdempotencyScope.of(idempotency_key, "coupon.redeem", member_id,
                                       {"coupon_id": coupon_id})
    done = ledger.replay(session, merchant_id, scope)
    if done:
        return done
    grant = session.execute(
        select(GRANTS.c.id, Coupon.title, Coupon.valid_from, Coupon.valid_until)
        .join(Coupon, Coupon.id == GRANTS.c.coupon_id)
        .where(GRANTS.c.card_id == card.id, GRANTS.c.coupon_id == coupon_id,
               Coupon.retired_at.is_(None))
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
        details={"coupon_id": coupon_id}), now=now, idempotency=scope, actor=actor)
    webhooks.record(session, merchant_id, webhooks.COUPON_REDEEMED, {
        "member_id": member_id, "coupon": {"id": coupon_id, "title": grant.title},
        "transaction_id": entry.id, "redeemed_at": webhooks.iso(now),
    }, member_id=member_id, at=now)
    return ledger.Posted(entry, card.currency, False)
