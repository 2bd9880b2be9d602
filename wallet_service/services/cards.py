"""What every visible change of a card does besides changing it: a new version, a distinct
``Last-Modified`` and an outbox row, all in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import CardChange
from ..models import LoyaltyCard

CARDS = LoyaltyCard.__table__
_PUBLISH = insert(CardChange.__table__)
_BUMP = (
    update(CARDS)
    .where(CARDS.c.id == bindparam("cid"))
    .values(version=bindparam("v"), last_modified=bindparam("lm"), updated_at=bindparam("now"))
)


def next_last_modified(previous: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """``max(now truncated to the second, previous + 1 s)``: every version gets its own
    HTTP-date, so a device never keeps an older version on a 304 (spec §3.7, bug 6)."""
    candidate = now.replace(microsecond=0)
    if previous is not None and candidate <= previous:
        candidate = previous.replace(microsecond=0) + dt.timedelta(seconds=1)
    return candidate


def publish_change(session: Session, card_id: int, version: int, now: dt.datetime) -> None:
    """Queue the change for the devices and wallets that show this card."""
    session.execute(_PUBLISH, {"card_id": card_id, "version": version, "created_at": now})


def publish_cards(session: Session, card_ids: list[int], now: dt.datetime) -> int:
    """A change these cards show without a change of their own columns (a coupon, the
    program's design): bump each one's version and ``Last-Modified`` and queue it."""
    if not card_ids:
        return 0
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified)
        .where(CARDS.c.id.in_(card_ids))
        .order_by(CARDS.c.id)
        .with_for_update()
    ).all()
    return _bump(session, rows, now)


def publish_program_change(session: Session, program_id: int, now: dt.datetime) -> int:
    """A change every card of the program shows (design, name, images): bump each card's
    version and ``Last-Modified`` and queue it; returns how many cards changed."""
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified)
        .where(CARDS.c.program_id == program_id)
        .order_by(CARDS.c.id)
        .with_for_update()
    ).all()
    return _bump(session, rows, now)


def _bump(session: Session, rows: list[Any], now: dt.datetime) -> int:
    if not rows:
        return 0
    session.execute(_BUMP, [
        {"cid": r.id, "v": r.version + 1, "lm": next_last_modified(r.last_modified, now),
         "now": now}
        for r in rows
    ])
    session.execute(_PUBLISH, [
        {"card_id": r.id, "version": r.version + 1, "created_at": now} for r in rows
    ])
    return len(rows)
