"""Before and after a campaign is sent from the console: how many cards it reaches and how
many phones it wakes, and campaigns scheduled for a local time that the worker sends.

A campaign puts its text on the back of every card of its audience (``services.campaigns``):
an Apple pass announces it, since the message field carries a ``changeMessage`` (apple-wallet
spec §2.6), on every iPhone the card is registered on; a Google object gets it as a message
that notifies while the card has notifications left (3 per card per 24 hours, google-wallet
spec §2.6, ``services.google.NOTIFICATIONS_PER_DAY``), silently after that. A card in no
wallet app changes only on its card page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InvalidInput
from ..errors import ResourceNotFound
from ..errors import WalletError
from ..i18n import program_text
from ..local_time import zone
from ..models import GoogleNotification
from ..models import GoogleObject
from ..models import LoyaltyCard
from ..models import Registration
from ..models import ScheduledCampaign
from .campaigns import MAX_HOLDOUT_PERCENT
from .campaigns import Segment
from .campaigns import segment_card_ids
from .campaigns import send_campaign
from .google import NOTIFICATIONS_PER_DAY
from .outbox import id_set
from .outbox import in_ids
from .programs import get_program

CARDS = LoyaltyCard.__table__


@dataclass(frozen=True)
class Reach:
    """The audience of a campaign before it is sent.

    ``members``: active cards of the segment; ``consenting``: of them, members who accept
    marketing messages (the only ones a campaign reaches); ``held_out``: the holdout drawn
    from those; ``reached``: the rest. Of the consenting cards: ``apple`` are on at least one
    iPhone (each announces the text), ``google_notified`` in Google Wallet with notifications
    left today, ``google_silent`` there without; ``notified`` cards wake at least one phone,
    ``silent`` are updated without a sound (Google's limit reached, or in no wallet app).
    Counts of the wallets are over the consenting members, the holdout included, since who is
    held out is drawn when the campaign is sent."""

    members: int
    consenting: int
    held_out: int
    reached: int
    apple: int
    google_notified: int
    google_silent: int
    notified: int
    silent: int


def reach(session: Session, merchant_id: int, program_id: int, segment: Segment,
          holdout_percent: int = 0, now: dt.datetime | None = None) -> Reach:
    """Who a campaign to ``segment`` would reach now, and how many phones it would wake.

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    now = now or utcnow()
    everyone = segment_card_ids(session, program.id, segment, now)
    consenting = segment_card_ids(session, program.id, segment, now, marketing=True)
    held = len(consenting) * holdout_percent // 100
    apple: set[int] = set()
    google: set[int] = set()
    spent: dict[int, int] = {}
    if consenting:
        ids = id_set(session, consenting)
        apple = set(session.scalars(select(Registration.card_id).distinct()
                                    .where(Registration.card_id.in_(ids))))
        google = set(session.scalars(select(GoogleObject.card_id).where(
            GoogleObject.card_id.in_(ids), GoogleObject.inserted.is_(True),
            GoogleObject.deleted_at.is_(None))))
        if google:
            spent = dict(session.execute(
                select(GoogleNotification.card_id, func.count())
                .where(in_ids(session, GoogleNotification.card_id, sorted(google)),
                       GoogleNotification.sent_at > now - dt.timedelta(hours=24))
                .group_by(GoogleNotification.card_id)).all())
    google_ok = {c for c in google if spent.get(c, 0) < NOTIFICATIONS_PER_DAY}
    notified = apple | google_ok
    return Reach(members=len(everyone), consenting=len(consenting), held_out=held,
                 reached=len(consenting) - held, apple=len(apple),
                 google_notified=len(google_ok), google_silent=len(google - google_ok),
                 notified=len(notified), silent=len(consenting) - len(notified))


# --- scheduled campaigns ----------------------------------------------------------------


def local_moment(local: dt.datetime, time_zone: str) -> dt.datetime:
    """The UTC moment of the wall-clock time ``local`` (naive) in ``time_zone``; a time the
    clocks skip or repeat is read as the zone's rules say (``fold=0``)."""
    return local.replace(tzinfo=zone(time_zone)).astimezone(dt.UTC)


def schedule(session: Session, merchant_id: int, program_id: int,
             text: str | dict[str, str], segment: Segment, holdout_percent: int,
             local: dt.datetime, time_zone: str, *, created_by: int | None = None,
             now: dt.datetime | None = None) -> ScheduledCampaign:
    """Keep a campaign to send at the merchant's local time ``local`` in ``time_zone``.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises ValidationFailed: the text names a language the program does not have.
    :raises InvalidInput: the time has passed; the holdout is out of range.
    """
    program = get_program(session, merchant_id, program_id)
    text = program_text(text, program.languages, "text")
    now = now or utcnow()
    if not 0 <= holdout_percent <= MAX_HOLDOUT_PERCENT:
        raise InvalidInput(f"holdout_percent: 0 to {MAX_HOLDOUT_PERCENT}",
                           field="holdout_percent")
    send_at = local_moment(local, time_zone)
    if send_at <= now:
        raise InvalidInput("send_at: this time has passed", field="send_at")
    row = ScheduledCampaign(
        merchant_id=merchant_id, program_id=program.id, text=text,
        segment=segment.as_json(), holdout_percent=holdout_percent, send_at=send_at,
        local_time=local.strftime("%Y-%m-%dT%H:%M"), time_zone=time_zone,
        status="scheduled", created_by=created_by, created_at=now)
    session.add(row)
    session.flush()
    return row


def list_scheduled(session: Session, merchant_id: int,
                   statuses: Sequence[str] = ("scheduled",)) -> list[ScheduledCampaign]:
    return list(session.scalars(
        select(ScheduledCampaign).where(ScheduledCampaign.merchant_id == merchant_id,
                                        ScheduledCampaign.status.in_(statuses))
        .order_by(ScheduledCampaign.send_at, ScheduledCampaign.id)))


def cancel(session: Session, merchant_id: int, scheduled_id: int) -> ScheduledCampaign:
    """:raises ResourceNotFound: missing, another merchant's, or no longer waiting."""
    row = session.scalar(select(ScheduledCampaign).where(
        ScheduledCampaign.id == scheduled_id, ScheduledCampaign.merchant_id == merchant_id,
        ScheduledCampaign.status == "scheduled").with_for_update())
    if row is None:
        raise ResourceNotFound(f"scheduled campaign {scheduled_id} not found",
                               field="scheduled_id")
    row.status = "cancelled"
    session.flush()
    return row


def send_due(session: Session, now: dt.datetime, limit: int = 20) -> list[int]:
    """Send the scheduled campaigns whose time has come (oldest first, at most ``limit``),
    each as :func:`.campaigns.send_campaign` sends one now; returns the campaigns' ids. The
    rows are locked, so two workers never send one twice (the caller commits). One that can no
    longer go out as written (the programme lost a language of its text) is marked
    ``failed``."""
    rows = list(session.scalars(
        select(ScheduledCampaign)
        .where(ScheduledCampaign.status == "scheduled", ScheduledCampaign.send_at <= now)
        .order_by(ScheduledCampaign.send_at, ScheduledCampaign.id).limit(limit)
        .with_for_update(skip_locked=True)))
    sent = []
    for row in rows:
        try:
            with session.begin_nested():
                campaign = send_campaign(session, row.merchant_id, row.program_id,
                                         _text(row.text), Segment.from_json(row.segment),
                                         row.holdout_percent)
        except WalletError:
            # The programme changed since (a language dropped): the campaign cannot go out
            # as written; it is kept, marked, and the others go.
            row.status = "failed"
            continue
        row.status = "sent"
        row.campaign_id = campaign.id
        sent.append(campaign.id)
    session.flush()
    return sent


def _text(value: Any) -> str | dict[str, str]:
    return value if isinstance(value, str | dict) else str(value)
