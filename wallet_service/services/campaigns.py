"""Campaign messages: a text on the back of every card of a segment.

The text is kept per card (``LoyaltyCard.message``), so every wallet that shows the card
(the Apple pass's back field, later the Google object's message) reads it from one place.
Setting it is a visible change: the card gets a new version and the phone announces the
text through the back field's ``changeMessage``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..i18n import program_text
from ..models import Campaign
from ..models import LoyaltyCard
from ..models import Member
from .outbox import next_last_modified
from .outbox import publish_change
from .programs import get_program

CARDS = LoyaltyCard.__table__
_SET_MESSAGE = (
    update(CARDS)
    .where(CARDS.c.id == bindparam("cid"))
    .values(message=bindparam("msg"), message_i18n=bindparam("texts"),
            message_campaign_id=bindparam("campaign"), version=bindparam("v"),
            last_modified=bindparam("lm"), updated_at=bindparam("now"))
)


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
        .where(CARDS.c.id.in_(card_ids)).order_by(CARDS.c.id).with_for_update()
    ).all()
    changed = [r for r in rows if (r.message, r.message_i18n) != (plain, texts)]
    if not changed:
        return 0
    session.execute(_SET_MESSAGE, [
        {"cid": r.id, "msg": plain, "texts": texts, "campaign": campaign_id,
         "v": r.version + 1, "lm": next_last_modified(r.last_modified, now), "now": now}
        for r in changed
    ])
    for r in changed:
        publish_change(session, r.id, r.version + 1, now)
    return len(changed)


def send_campaign(session: Session, merchant_id: int, program_id: int,
                  text: str | dict[str, str], segment: Segment) -> Campaign:
    """Put ``text`` (one text, or one per language of the program) on the back of every
    card in ``segment`` whose member consents to marketing messages (a campaign is one);
    ``reached`` counts them.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: the text names a language the program does not have.
    """
    program = get_program(session, merchant_id, program_id)
    text = program_text(text, program.languages, "text")
    now = utcnow()
    campaign = Campaign(program_id=program.id, text=text,
                        segment=segment.as_json(),
                        reached=0, created_at=now)
    session.add(campaign)
    session.flush()
    ids = segment_card_ids(session, program.id, segment, now, marketing=True)
    set_messages(session, ids, text, campaign.id, now)
    campaign.reached = len(ids)
    session.flush()
    return campaign


def list_campaigns(session: Session, merchant_id: int, program_id: int) -> list[Campaign]:
    program = get_program(session, merchant_id, program_id)
    return list(session.scalars(select(Campaign).where(Campaign.program_id == program.id)
                                .order_by(Campaign.id.desc())))
