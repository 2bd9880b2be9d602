"""Campaign messages: a text on the back of every card of a segment.

The text is kept per card (``LoyaltyCard.message``), so every wallet that shows the card
(the Apple pass's back field, later the Google object's message) reads it from one place.
Setting it is a visible change: the card gets a new version and the phone announces the
text through the back field's ``changeMessage``.

A campaign may keep a holdout: a share (0–50 %) of the members it could reach, drawn at
random and not messaged, so its effect can be measured (:func:`campaign_effect`): the
purchases of the reached members in the 7 days after sending against the holdout's. Every
member the campaign chose is recorded (``CampaignRecipient``) with its group and its draw,
a number computed from the campaign's random seed and the card, so anyone can recompute
who was held out and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceNotFound
from ..i18n import program_text
from ..models import Campaign
from ..models import CampaignRecipient
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from . import webhooks
from .outbox import bump_locked
from .outbox import in_ids
from .programs import get_program

CARDS = LoyaltyCard.__table__
RECIPIENTS = CampaignRecipient.__table__
TXNS = LedgerTransaction.__table__
#: The largest holdout a campaign may keep, in per cent of the members it could reach.
MAX_HOLDOUT_PERCENT = 50
#: How long after sending a purchase counts towards the campaign's effect.
EFFECT_DAYS = 7


@dataclass(frozen=True)
class Segment:
    """Members to reach; every filter given must match (none given: all members)."""

    tier: str | None = None
    inactive_days: int | None = None
    birthday_month: int | None = None
    member_ids: tuple[int, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        """What is stored with a campaign or coupon: the filters given."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        ids = data.get("member_ids")
        return cls(tier=data.get("tier"), inactive_days=data.get("inactive_days"),
                   birthday_month=data.get("birthday_month"),
                   member_ids=None if ids is None else tuple(ids))


def segment_card_ids(session: Session, program_id: int, segment: Segment,
                     now: dt.datetime | None = None, *, marketing: bool = False) -> list[int]:
    """Active cards of the program matching every filter of ``segment``; with
    ``marketing``, only of members who consent to marketing messages now."""
    now = now or utcnow()
    query = (
        select(CARDS.c.id, Member.birthday)
        .join(Member, Member.id == CARDS.c.member_id)
        .where(CARDS.c.program_id == program_id, CARDS.c.status == "active")
        .order_by(CARDS.c.id)
    )
    if marketing:
        query = query.where(Member.marketing_consent.is_(True))
    if segment.tier is not None:
        query = query.where(CARDS.c.tier == segment.tier)
    if segment.inactive_days is not None:
        since = now - dt.timedelta(days=segment.inactive_days)
        query = query.where(func.coalesce(CARDS.c.last_visit_at, CARDS.c.created_at) < since)
    if segment.member_ids is not None:
        query = query.where(CARDS.c.member_id.in_(segment.member_ids))
    rows = session.execute(query).all()
    if segment.birthday_month is not None:
        rows = [r for r in rows if r.birthday is not None
                and r.birthday.month == segment.birthday_month]
    return [r.id for r in rows]


def set_messages(session: Session, card_ids: list[int], text: str | dict[str, str] | None,
                 campaign_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Show ``text`` (one text, or one per language) on these cards; cards that already
    show it are left alone. Returns how many cards changed."""
    if not card_ids:
        return 0
    now = now or utcnow()
    plain = next(iter(text.values())) if isinstance(text, dict) else text
    texts = text if isinstance(text, dict) else None
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified, CARDS.c.message,
               CARDS.c.message_i18n)
        .where(in_ids(session, CARDS.c.id, card_ids)).order_by(CARDS.c.id)
        .with_for_update()
    ).all()
    changed = [r for r in rows if (r.message, r.message_i18n) != (plain, texts)]
    # Set-based however many cards a campaign reaches (``outbox.bump_locked``).
    return bump_locked(session, changed, now, message=plain, message_i18n=texts,
                       message_campaign_id=campaign_id)


def draw(seed: str, card_id: int) -> str:
    """The card's random number in a campaign drawn with ``seed``: the first 16 hex digits
    of SHA-256 of ``"<seed>:<card id>"``."""
    return hashlib.sha256(f"{seed}:{card_id}".encode()).hexdigest()[:16]


def split_holdout(card_ids: list[int], percent: int,
                  seed: str) -> tuple[list[int], list[int], dict[int, str]]:
    """Cards to reach and cards to hold out, and every card's draw: the holdout is the
    ``percent`` % of the cards (rounded down) with the lowest draws (ties by card id)."""
    draws = {cid: draw(seed, cid) for cid in card_ids}
    size = len(card_ids) * percent // 100
    ranked = sorted(card_ids, key=lambda cid: (draws[cid], cid))
    held = set(ranked[:size])
    return [c for c in card_ids if c not in held], sorted(held), draws


def send_campaign(session: Session, merchant_id: int, program_id: int,
                  text: str | dict[str, str], segment: Segment,
                  holdout_percent: int = 0) -> Campaign:
    """Put ``text`` (one text, or one per language of the program) on the back of every
    card in ``segment`` whose member consents to marketing messages (a campaign is one),
    but the holdout's: ``holdout_percent`` % of those members (rounded down), drawn at
    random from a new seed (:func:`split_holdout`), are recorded and left alone. The
    holdout is drawn among the members the campaign could reach, so both groups are alike
    but for the message. ``reached`` and ``held_out`` count them.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: the text names a language the program does not have.
    """
    program = get_program(session, merchant_id, program_id)
    text = program_text(text, program.languages, "text")
    now = utcnow()
    seed = secrets.token_hex(16) if holdout_percent else None
    campaign = Campaign(program_id=program.id, text=text,
                        segment=segment.as_json(), reached=0, held_out=0,
                        holdout_percent=holdout_percent, holdout_seed=seed, created_at=now)
    session.add(campaign)
    session.flush()
    ids = segment_card_ids(session, program.id, segment, now, marketing=True)
    if seed is not None:
        reach, held, draws = split_holdout(ids, holdout_percent, seed)
    else:
        reach, held, draws = ids, [], {cid: "" for cid in ids}
    set_messages(session, reach, text, campaign.id, now)
    if ids:
        held_set = set(held)
        session.execute(insert(RECIPIENTS), [
            {"campaign_id": campaign.id, "card_id": cid, "draw": draws[cid],
             "group": "holdout" if cid in held_set else "reached"}
            for cid in ids
        ])
    campaign.reached, campaign.held_out = len(reach), len(held)
    session.flush()
    webhooks.record(session, merchant_id, webhooks.CAMPAIGN_SENT, {"campaign": {
        "id": campaign.id, "program_id": program.id, "text": text,
        "segment": campaign.segment, "reached": campaign.reached,
        "held_out": campaign.held_out, "created_at": webhooks.iso(now)}}, at=now)
    return campaign


def get_campaign(session: Session, merchant_id: int, campaign_id: int) -> Campaign:
    """:raises ResourceNotFound: the campaign is missing or another merchant's."""
    campaign = session.scalar(
        select(Campaign).join(LoyaltyProgram, LoyaltyProgram.id == Campaign.program_id)
        .where(Campaign.id == campaign_id, LoyaltyProgram.merchant_id == merchant_id))
    if campaign is None:
        raise ResourceNotFound(f"campaign {campaign_id} not found", field="campaign_id")
    return campaign


def list_recipients(session: Session, merchant_id: int, campaign_id: int, *,
                    group: str | None, limit: int,
                    after_card_id: int | None) -> list[tuple[int, int, str, str]]:
    """``(card id, member id, group, draw)`` of the campaign's members, in card order.

    :raises ResourceNotFound: the campaign is missing or another merchant's.
    """
    campaign = get_campaign(session, merchant_id, campaign_id)
    query = (select(RECIPIENTS.c.card_id, CARDS.c.member_id, RECIPIENTS.c.group,
                    RECIPIENTS.c.draw)
             .join(CARDS, CARDS.c.id == RECIPIENTS.c.card_id)
             .where(RECIPIENTS.c.campaign_id == campaign.id)
             .order_by(RECIPIENTS.c.card_id).limit(limit))
    if group is not None:
        query = query.where(RECIPIENTS.c.group == group)
    if after_card_id is not None:
        query = query.where(RECIPIENTS.c.card_id > after_card_id)
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(query)]


@dataclass(frozen=True)
class GroupEffect:
    """What one group of a campaign bought in the window: ``purchases`` (ledger entries of
    type ``earn``: a purchase, with or without an amount), ``purchasing`` (members with at
    least one) and ``revenue_minor`` (the amounts of those purchases, minor units)."""

    members: int
    purchases: int
    purchasing: int
    revenue_minor: int


@dataclass(frozen=True)
class Effect:
    campaign: Campaign
    currency: str
    window_start: dt.datetime
    window_end: dt.datetime
    complete: bool
    reached: GroupEffect
    holdout: GroupEffect


def campaign_effect(session: Session, merchant_id: int, campaign_id: int,
                    now: dt.datetime | None = None) -> Effect:
    """The purchases of the campaign's reached members and of its holdout from sending to
    :data:`EFFECT_DAYS` days later (refunds are not subtracted); ``complete`` once the
    window has ended. Campaigns sent before members were recorded have no groups.

    :raises ResourceNotFound: the campaign is missing or another merchant's.
    """
    now = now or utcnow()
    campaign = get_campaign(session, merchant_id, campaign_id)
    program = session.get_one(LoyaltyProgram, campaign.program_id)
    start = campaign.created_at
    end = start + dt.timedelta(days=EFFECT_DAYS)
    members = dict(session.execute(
        select(RECIPIENTS.c.group, func.count())
        .where(RECIPIENTS.c.campaign_id == campaign.id).group_by(RECIPIENTS.c.group)).all())
    bought = {row.group: row for row in session.execute(
        select(RECIPIENTS.c.group, func.count(TXNS.c.id).label("purchases"),
               func.count(func.distinct(TXNS.c.card_id)).label("purchasing"),
               func.coalesce(func.sum(case((TXNS.c.amount_minor.is_(None), 0),
                                           else_=TXNS.c.amount_minor)), 0).label("revenue"))
        .join(TXNS, TXNS.c.card_id == RECIPIENTS.c.card_id)
        .where(RECIPIENTS.c.campaign_id == campaign.id, TXNS.c.type == "earn",
               TXNS.c.created_at >= start, TXNS.c.created_at < end)
        .group_by(RECIPIENTS.c.group))}

    def group(name: str) -> GroupEffect:
        row = bought.get(name)
        return GroupEffect(members=int(members.get(name, 0)),
                           purchases=int(row.purchases) if row else 0,
                           purchasing=int(row.purchasing) if row else 0,
                           revenue_minor=int(row.revenue) if row else 0)

    return Effect(campaign, program.currency, start, end, now >= end, group("reached"),
                  group("holdout"))


def recent_campaigns(session: Session, merchant_id: int, limit: int = 50) -> list[Campaign]:
    """The merchant's latest campaigns of every program, newest first."""
    return list(session.scalars(
        select(Campaign).join(LoyaltyProgram, LoyaltyProgram.id == Campaign.program_id)
        .where(LoyaltyProgram.merchant_id == merchant_id)
        .order_by(Campaign.id.desc()).limit(limit)))


def list_campaigns(session: Session, merchant_id: int, program_id: int) -> list[Campaign]:
    program = get_program(session, merchant_id, program_id)
    return list(session.scalars(select(Campaign).where(Campaign.program_id == program.id)
                                .order_by(Campaign.id.desc())))
