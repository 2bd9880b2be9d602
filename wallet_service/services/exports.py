"""Exporting a program's members and its transactions as CSV, streamed: rows are read from
the database through a server-side cursor a thousand at a time (``yield_per``) and written
out as they come, so an export of any size holds a few thousand rows in memory at most.

Every export is written to the audit log (who, which program, what) in the caller's
transaction before the first row is read; the caller commits it, then streams.

The members file has the columns the import reads (``phone``, ``name``, ``email``,
``birthday``, ``external_id``, ``balance``, ``stamps``, ``tier``), so a file exported from
one program imports into another as it is (:mod:`.imports`). Amounts of money (a cashback
balance, spend) are in the currency's units with a point (``150.50``), points and stamps
whole numbers. Text a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``) gets a leading ``'``, which the import takes off again (OWASP, "CSV Injection").

``spreadsheet=True`` writes what Excel opens without a wizard in Russian locales: a UTF-8
byte-order mark and ``;`` between fields.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..local_time import start_of_day
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import Member
from ..rules import from_minor
from . import audit
from .merchants import time_zone_of
from .programs import get_program

MEMBERS = Member.__table__
CARDS = LoyaltyCard.__table__
TXN = LedgerTransaction.__table__

MEMBER_COLUMNS = ("member_id", "name", "phone", "email", "birthday", "external_id",
                  "barcode", "card_status", "balance", "stamps", "tier", "lifetime_points",
                  "lifetime_spend", "visits", "last_visit_at", "source", "marketing_consent",
                  "created_at", "erased_at")
TRANSACTION_COLUMNS = ("transaction_id", "created_at", "member_id", "barcode", "type",
                       "points", "stamps", "amount", "currency", "reason", "balance_after",
                       "tier_after", "reference_id")

#: Rows read from the database per round trip.
YIELD_PER = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Export:
    """A CSV export ready to stream: its file name and its encoded chunks."""

    filename: str
    chunks: Iterator[bytes]


def safe_text(value: str | None) -> str:
    """``value`` as a spreadsheet cell that never runs as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _iso(value: dt.datetime | dt.date | None) -> str:
    return "" if value is None else value.isoformat()


def _encode(header: Sequence[str], rows: Iterator[Sequence[Any]], *,
            spreadsheet: bool) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if spreadsheet else ",", lineterminator="\r\n")
    writer.writerow(header)
    first = ("\ufeff" if spreadsheet else "") + buffer.getvalue()
    yield first.encode()
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(rows, 1):
        writer.writerow(row)
        if count % YIELD_PER == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _streamed(session: Session, query: Select[Any]) -> Iterator[Any]:
    """The rows of ``query`` through a server-side cursor (PostgreSQL), a batch at a time."""
    yield from session.execute(query.execution_options(yield_per=YIELD_PER))


def export_members(session: Session, merchant_id: int, program_id: int, *,
                   actor: audit.Actor, spreadsheet: bool = False) -> Export:
    """The program's members and their cards, oldest first (erased members keep their row,
    without personal data). The audit entry is written now; rows are read as the chunks are.

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    currency, cashback = program.currency, program.kind == "cashback"
    audit.record(session, merchant_id=merchant_id, actor=actor, action="members.export",
                 target=f"program:{program.id}",
                 changes={"format": "spreadsheet" if spreadsheet else "csv"})
    query = (
        select(MEMBERS.c.id, MEMBERS.c.name, MEMBERS.c.phone, MEMBERS.c.email,
               MEMBERS.c.birthday, MEMBERS.c.external_id, CARDS.c.serial_number,
               CARDS.c.status, CARDS.c.balance, CARDS.c.stamps, CARDS.c.tier,
               CARDS.c.lifetime_points, CARDS.c.lifetime_spend_minor, CARDS.c.visits,
               CARDS.c.last_visit_at, MEMBERS.c.source, MEMBERS.c.marketing_consent,
               MEMBERS.c.created_at, MEMBERS.c.erased_at)
        .join(CARDS, CARDS.c.member_id == MEMBERS.c.id)
        .where(MEMBERS.c.program_id == program.id, MEMBERS.c.merchant_id == merchant_id)
        .order_by(MEMBERS.c.id)
    )

    def rows() -> Iterator[list[Any]]:
        for r in _streamed(session, query):
            yield [r.id, safe_text(r.name), r.phone or "", safe_text(r.email),
                   _iso(r.birthday), safe_text(r.external_id), r.serial_number, r.status,
                   from_minor(currency, r.balance) if cashback else r.balance, r.stamps,
                   safe_text(r.tier), r.lifetime_points,
                   from_minor(currency, r.lifetime_spend_minor), r.visits,
                   _iso(r.last_visit_at), r.source, int(bool(r.marketing_consent)),
                   _iso(r.created_at), _iso(r.erased_at)]

    return Export(f"members-{program.id}.csv",
                  _encode(MEMBER_COLUMNS, rows(), spreadsheet=spreadsheet))


def export_transactions(session: Session, merchant_id: int, program_id: int, *,
                        actor: audit.Actor, since: dt.date | None = None,
                        until: dt.date | None = None, spreadsheet: bool = False) -> Export:
    """The program's ledger, oldest first, from the start of ``since`` through the end of
    ``until`` (days of the merchant's calendar; either may be left out).

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    currency = program.currency
    audit.record(session, merchant_id=merchant_id, actor=actor, action="transactions.export",
                 target=f"program:{program.id}",
                 changes={"format": "spreadsheet" if spreadsheet else "csv",
                          "since": _iso(since) or None, "until": _iso(until) or None})
    query = (
        select(TXN.c.id, TXN.c.created_at, CARDS.c.member_id, CARDS.c.serial_number,
               TXN.c.type, TXN.c.points, TXN.c.stamps, TXN.c.amount_minor, TXN.c.reason,
               TXN.c.balance_after, TXN.c.tier_after, TXN.c.reference_id)
        .join(CARDS, CARDS.c.id == TXN.c.card_id)
        .where(CARDS.c.program_id == program.id, TXN.c.merchant_id == merchant_id)
        .order_by(TXN.c.id)
    )
    zone = time_zone_of(session, merchant_id)
    if since is not None:
        query = query.where(TXN.c.created_at >= start_of_day(since, zone))
    if until is not None:
        query = query.where(
            TXN.c.created_at < start_of_day(until + dt.timedelta(days=1), zone))

    def rows() -> Iterator[list[Any]]:
        for r in _streamed(session, query):
            yield [r.id, _iso(r.created_at), r.member_id, r.serial_number, r.type, r.points,
                   r.stamps,
                   "" if r.amount_minor is None else from_minor(currency, r.amount_minor),
                   currency, safe_text(r.reason), r.balance_after, safe_text(r.tier_after),
                   "" if r.reference_id is None else r.reference_id]

    return Export(f"transactions-{program.id}.csv",
                  _encode(TRANSACTION_COLUMNS, rows(), spreadsheet=spreadsheet))
