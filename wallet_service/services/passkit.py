"""The server side of Apple's pass web service (apple-wallet spec §3): device registrations,
the list of updated passes, device logs."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import AuthenticationFailed
from ..errors import ResourceNotFound
from ..models import Device
from ..models import DeviceLog
from ..models import LoyaltyCard
from ..models import Registration

DEVICES = Device.__table__
REGS = Registration.__table__
CARDS = LoyaltyCard.__table__

MAX_LOG_MESSAGES = 100
MAX_LOG_LENGTH = 2000


def parse_apple_pass_header(value: str | None) -> str | None:
    """The token of ``Authorization: ApplePass <token>``, or None (spec §3.0)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme != "ApplePass" or not token.strip():
        return None
    return token.strip()


def authenticated_card(session: Session, serial_number: str, token: str | None) -> LoyaltyCard:
    """The card whose serial is given, if ``token`` is *that* card's token.

    :raises ResourceNotFound: no such serial.
    :raises AuthenticationFailed: missing or wrong token (compared in constant time).
    """
    card = session.scalar(select(LoyaltyCard).where(LoyaltyCard.serial_number == serial_number))
    if card is None:
        raise ResourceNotFound("unknown serial number")
    if token is None or not hmac.compare_digest(
        card.authentication_token.encode(), token.encode()
    ):
        raise AuthenticationFailed("wrong ApplePass token")
    return card


def register_device(
    session: Session, card: LoyaltyCard, device_library_identifier: str, push_token: str,
    now: dt.datetime,
) -> bool:
    """Store the device (always with the newest push token) and its registration for the
    card; True when the registration is new (201), False when it existed (200). Idempotent
    under concurrent repeats (spec §3.1)."""
    device_id = _upsert_device(session, device_library_identifier, push_token, now)
    exists = session.scalar(
        select(REGS.c.id).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id)
    )
    if exists:
        return False
    stmt = _dialect_insert(session, REGS).values(device_id=device_id, card_id=card.id,
                                                 created_at=now)
    created = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["device_id", "card_id"]).returning(REGS.c.id)
    ).first()
    return created is not None


def _upsert_device(session: Session, dli: str, push_token: str, now: dt.datetime) -> int:
    stmt = _dialect_insert(session, DEVICES).values(
        device_library_identifier=dli, push_token=push_token, created_at=now, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_library_identifier"],
        set_={"push_token": push_token, "updated_at": now},
    ).returning(DEVICES.c.id)
    device_id: int = session.execute(stmt).scalar_one()
    return device_id


def _dialect_insert(session: Session, table: object):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)  # type: ignore[arg-type]
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)  # type: ignore[arg-type]


def unregister_device(session: Session, card: LoyaltyCard, device_library_identifier: str) -> None:
    """Remove the registration; the device too once it has none left (spec §3.4).
    Unregistering what is not registered is fine (idempotent)."""
    device_id = session.scalar(
        select(DEVICES.c.id).where(DEVICES.c.device_library_identifier == device_library_identifier)
    )
    if device_id is None:
        return
    session.execute(delete(REGS).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id))
    left = session.scalar(select(func.count()).select_from(REGS).where(REGS.c.device_id == device_id))
    if not left:
        session.execute(delete(DEVICES).where(DEVICES.c.id == device_id))


@dataclass(frozen=True)
class UpdatedSerials:
    serial_numbers: list[str]
    last_updated: str


def parse_tag(value: str | None) -> int | None:
    """The ``passesUpdatedSince`` tag, or None for "no tag" (absent, empty, or anything we
    did not issue, such as a legacy date), which means "all passes" (spec §3.7)."""
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def updated_serials(
    session: Session, device_library_identifier: str, since: int | None
) -> UpdatedSerials | None:
    """Serials of the device's passes changed after tag ``since`` (all without a tag), and the
    new tag; None when nothing matches (204).

    :raises ResourceNotFound: the device is not registered (404).
    """
    device_id = session.scalar(
        select(DEVICES.c.id).where(DEVICES.c.device_library_identifier == device_library_identifier)
    )
    if device_id is None:
        raise ResourceNotFound("unknown device")
    query = (
        select(CARDS.c.serial_number, CARDS.c.update_seq)
        .join(REGS, REGS.c.card_id == CARDS.c.id)
        .where(REGS.c.device_id == device_id)
    )
    if since is not None:
        query = query.where(CARDS.c.update_seq > since)
    rows = session.execute(query.order_by(CARDS.c.update_seq)).all()
    if not rows:
        return None
    return UpdatedSerials([r.serial_number for r in rows], str(max(r.update_seq for r in rows)))


def store_logs(
    session: Session, messages: Sequence[object], remote_addr: str | None, now: dt.datetime
) -> int:
    """Keep what Wallet reports (spec §3.5): free text, bounded in count and length."""
    rows = [
        {"message": str(m)[:MAX_LOG_LENGTH], "remote_addr": remote_addr, "created_at": now}
        for m in list(messages)[:MAX_LOG_MESSAGES]
    ]
    if rows:
        session.execute(insert(DeviceLog.__table__), rows)
    return len(rows)


def touch_device(session: Session, device_library_identifier: str, now: dt.datetime) -> None:
    session.execute(
        update(DEVICES)
        .where(DEVICES.c.device_library_identifier == device_library_identifier)
        .values(updated_at=now)
    )
