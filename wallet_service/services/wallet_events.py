"""The wallet event log: when a card was added to a wallet and when it was removed.

Append-only, written in the transaction of whatever told us:

* **Apple** (apple-wallet spec §3.1, §3.4, §4.4): a card is *installed* when a device
  registers for it and no device had it before, and *removed* when its last registration
  goes, by the device unregistering or by APNs declaring the last device's token dead.
  Callers lock the card row first, so two devices registering at once count as one install.
* **Google** (google-wallet spec §4): each verified ``save`` and ``del`` callback.

The rows carry ids and times only, no personal data, so they survive a member's erasure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ResourceNotFound
from ..models import LoyaltyCard
from ..models import Registration
from ..models import WalletEvent
from . import webhooks

EVENTS = WalletEvent.__table__
CARDS = LoyaltyCard.__table__
REGS = Registration.__table__

APPLE = "apple"
GOOGLE = "google"
INSTALLED = "installed"
REMOVED = "removed"

_RECORD = insert(EVENTS)


def record(session: Session, *, merchant_id: int, card_id: int, wallet: str, event: str,
           cause: str, at: dt.datetime) -> None:
    """Append one event, and announce it to the merchant's webhooks (``card.installed``,
    ``card.removed``)."""
    session.execute(_RECORD, {"merchant_id": merchant_id, "card_id": card_id, "wallet": wallet,
                              "event": event, "cause": cause, "occurred_at": at})
    card = session.execute(select(CARDS.c.member_id, CARDS.c.serial_number)
                           .where(CARDS.c.id == card_id)).one()
    webhooks.record(session, merchant_id,
                    webhooks.CARD_INSTALLED if event == INSTALLED else webhooks.CARD_REMOVED, {
                        "member_id": card.member_id, "card_number": card.serial_number,
                        "wallet": wallet, "cause": cause, "occurred_at": webhooks.iso(at)},
                    member_id=card.member_id, at=at)


def apple_registrations(session: Session, card_id: int) -> int:
    """How many Apple devices are registered for the card's updates."""
    return int(session.scalar(
        select(func.count()).select_from(REGS).where(REGS.c.card_id == card_id)) or 0)


def lock_cards(session: Session, card_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Lock these cards' rows in id order (so lockers never deadlock on each other); their
    ids and merchants."""
    if not card_ids:
        return []
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.merchant_id).where(CARDS.c.id.in_(sorted(set(card_ids))))
        .order_by(CARDS.c.id).with_for_update()
    ).all()
    return [(r.id, r.merchant_id) for r in rows]


@dataclass(frozen=True)
class Event:
    id: int
    member_id: int
    wallet: str
    event: str
    cause: str
    occurred_at: dt.datetime


def list_events(
    session: Session,
    merchant_id: int,
    *,
    card_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    after_id: int | None = None,
) -> list[Event]:
    """The merchant's events in the order they were recorded: of one card if given, at or
    after ``since`` and before ``until``."""
    query = (
        select(EVENTS.c.id, CARDS.c.member_id, EVENTS.c.wallet, EVENTS.c.event,
               EVENTS.c.cause, EVENTS.c.occurred_at)
        .join(CARDS, CARDS.c.id == EVENTS.c.card_id)
        .where(EVENTS.c.merchant_id == merchant_id)
        .order_by(EVENTS.c.id)
        .limit(limit)
    )
    if card_id is not None:
        query = query.where(EVENTS.c.card_id == card_id)
    if since is not None:
        query = query.where(EVENTS.c.occurred_at >= since)
    if until is not None:
        query = query.where(EVENTS.c.occurred_at < until)
    if after_id is not None:
        query = query.where(EVENTS.c.id > after_id)
    return [Event(**r._mapping) for r in session.execute(query)]


def member_card_id(session: Session, merchant_id: int, member_id: int) -> int:
    """The member's card id.

    :raises ResourceNotFound: the member is missing or another merchant's.
    """
    card_id = session.scalar(select(CARDS.c.id).where(CARDS.c.member_id == member_id,
                                                      CARDS.c.merchant_id == merchant_id))
    if card_id is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    return int(card_id)
