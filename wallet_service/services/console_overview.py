"""What the console's Overview and Health pages show: headline numbers of a merchant for
today and the last 30 days, the delivery state of its cards, and what needs attention.

Definitions (product brief "cockpit", Metrics): *members* counts cards, *new members* cards
enrolled in the window; *purchases* counts ``earn`` entries (a purchase or a stamp);
*points earned* sums the positive points of ``earn`` and ``bonus`` entries, *points spent*
the points ``redeem`` entries took. Days are the merchant's local days.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..local_time import local_date
from ..local_time import start_of_day
from ..models import DeliveryJob
from ..models import DeviceLog
from ..models import GoogleObject
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import PushAttempt
from ..models import Registration
from . import outbox

#: A certificate expiring within this many days is an alert.
CERTIFICATE_WARNING_DAYS = 30
_NUMBER = re.compile(r"\d{10,32}")
#: The window of "recent" push failures and Google errors.
RECENT_DAYS = 7


@dataclass(frozen=True, slots=True)
class Figures:
    """One window's headline numbers."""

    members: int
    new_members: int
    purchases: int
    points_earned: int
    points_spent: int


@dataclass(frozen=True, slots=True)
class Headline:
    today: Figures
    last_30_days: Figures


@dataclass(frozen=True, slots=True)
class Alert:
    """Something that needs attention: ``kind`` names it (a word of the console), ``count``
    how many, ``detail`` a value to show (a date, a reason)."""

    kind: str
    count: int = 0
    detail: str | None = None


def headline(session: Session, merchant_id: int, time_zone: str,
             now: dt.datetime | None = None) -> Headline:
    """The merchant's numbers for its today and its last 30 days (today included)."""
    now = now or utcnow()
    today = local_date(now, time_zone)
    return Headline(
        today=_figures(session, merchant_id, start_of_day(today, time_zone), now),
        last_30_days=_figures(session, merchant_id,
                              start_of_day(today - dt.timedelta(days=29), time_zone), now))


def _figures(session: Session, merchant_id: int, since: dt.datetime,
             until: dt.datetime) -> Figures:
    cards = select(func.count()).select_from(LoyaltyCard).where(
        LoyaltyCard.merchant_id == merchant_id)
    members = session.scalar(cards.where(LoyaltyCard.created_at <= until)) or 0
    new = session.scalar(cards.where(LoyaltyCard.created_at >= since,
                                     LoyaltyCard.created_at <= until)) or 0
    txn = LedgerTransaction
    in_window = (txn.merchant_id == merchant_id, txn.created_at >= since,
                 txn.created_at <= until)
    purchases = session.scalar(select(func.count()).select_from(txn).where(
        *in_window, txn.type == "earn")) or 0
    earned = session.scalar(select(func.coalesce(func.sum(txn.points), 0)).where(
        *in_window, txn.type.in_(("earn", "bonus")), txn.points > 0)) or 0
    spent = session.scalar(select(func.coalesce(func.sum(txn.points), 0)).where(
        *in_window, txn.type == "redeem")) or 0
    return Figures(int(members), int(new), int(purchases), int(earned), -int(spent))


@dataclass(frozen=True, slots=True)
class Delivery:
    """The merchant's deliveries: pushes and Google updates waiting (and the oldest one's
    age in seconds), failed ones, recent APNs failures by reason, Google objects behind."""

    queued: int
    oldest_seconds: int | None
    failed: int
    apns_failures: dict[str, int]
    google_behind: int
    google_objects: int


def delivery(session: Session, merchant_id: int, now: dt.datetime | None = None) -> Delivery:
    """The merchant's push queue and Google sync state (outbox jobs target cards for
    Google and devices for Apple; both are traced back to the merchant's cards)."""
    now = now or utcnow()
    card_ids = select(LoyaltyCard.id).where(LoyaltyCard.merchant_id == merchant_id)
    device_ids = select(Registration.device_id).where(Registration.card_id.in_(card_ids))
    mine = ((DeliveryJob.channel == outbox.GOOGLE) & DeliveryJob.target_id.in_(card_ids)) | (
        (DeliveryJob.channel == outbox.APNS) & DeliveryJob.target_id.in_(device_ids))
    waiting = select(func.count(), func.min(DeliveryJob.created_at)).where(
        mine, DeliveryJob.status.in_(("pending", "sending")))
    queued, oldest = session.execute(waiting).one()
    failed = session.scalar(select(func.count()).select_from(DeliveryJob).where(
        mine, DeliveryJob.status == "failed")) or 0
    since = now - dt.timedelta(days=RECENT_DAYS)
    reasons = session.execute(
        select(func.coalesce(PushAttempt.reason, PushAttempt.outcome), func.count())
        .where(PushAttempt.device_id.in_(device_ids), PushAttempt.created_at >= since,
               PushAttempt.outcome != "sent")
        .group_by(func.coalesce(PushAttempt.reason, PushAttempt.outcome))).all()
    objects = select(func.count()).select_from(GoogleObject).join(
        LoyaltyCard, LoyaltyCard.id == GoogleObject.card_id).where(
        LoyaltyCard.merchant_id == merchant_id)
    total = session.scalar(objects) or 0
    behind = session.scalar(objects.where(
        GoogleObject.synced_version < LoyaltyCard.version)) or 0
    return Delivery(
        queued=int(queued or 0),
        oldest_seconds=None if oldest is None else max(0, int((now - _aware(oldest))
                                                              .total_seconds())),
        failed=int(failed), apns_failures={str(r): int(n) for r, n in reasons},
        google_behind=int(behind), google_objects=int(total))


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def alerts(session: Session, merchant_id: int, *, certificate_expires: dt.datetime | None,
           now: dt.datetime | None = None) -> list[Alert]:
    """What needs attention: the pass certificate expiring within
    ``CERTIFICATE_WARNING_DAYS`` (or expired), failed pushes, recent APNs failures, Google
    objects behind their cards."""
    now = now or utcnow()
    found = []
    if certificate_expires is not None:
        days = (certificate_expires - now).days
        if days < 0:
            found.append(Alert("alert_certificate_expired",
                               detail=certificate_expires.date().isoformat()))
        elif days <= CERTIFICATE_WARNING_DAYS:
            found.append(Alert("alert_certificate_expiring", count=days,
                               detail=certificate_expires.date().isoformat()))
    state = delivery(session, merchant_id, now)
    if state.failed:
        found.append(Alert("alert_push_failed", count=state.failed))
    failures = sum(state.apns_failures.values())
    if failures:
        found.append(Alert("alert_apns_failures", count=failures))
    if state.google_behind:
        found.append(Alert("alert_google_behind", count=state.google_behind))
    return found


def device_logs(session: Session, merchant_id: int, *, limit: int = 20) -> list[DeviceLog]:
    """Recent Apple device logs that name one of the merchant's cards, or no card at all
    (Apple does not say whose pass a message is about; a log naming another merchant's card
    is not this merchant's to read)."""
    recent = session.scalars(select(DeviceLog).order_by(DeviceLog.id.desc()).limit(200)).all()
    numbers = {n for log in recent for n in _NUMBER.findall(log.message)}
    mine = set(session.scalars(select(LoyaltyCard.serial_number).where(
        LoyaltyCard.merchant_id == merchant_id,
        LoyaltyCard.serial_number.in_(numbers)))) if numbers else set()
    shown = [log for log in recent
             if not (found := set(_NUMBER.findall(log.message))) or found & mine]
    return shown[:limit]
