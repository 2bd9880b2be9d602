"""Importing a customer base from CSV: members with their balances, stamps, tiers and
birthdays, as a merchant brings them from paper cards, a spreadsheet or another platform.

**Reading.** The file is UTF-8 (with or without a byte-order mark) or Windows-1251, told
apart by whether it decodes as UTF-8; the delimiter is a comma, a semicolon or a tab,
whichever the header line has most of. Header names in Russian or English are mapped to
fields automatically (``Телефон``/``phone``, ``ФИО``/``Имя``/``name``,
``Баланс``/``Баллы``/``points`` …, :data:`HEADER_NAMES`); an explicit mapping
(``{"header": "field"}``, ``""`` to ignore a column) overrides them. A name may also come
in parts (``Фамилия``, ``Имя``, ``Отчество``), joined in that order. The day a member joined
(``Дата регистрации``, ``joined``; an export's ``created_at``) becomes their enrollment time,
so the analytics' cohorts and new members per day place them when they joined, not on the
day of the import (without it: the time of the import); the analytics rollups recompute from
the earliest such day on their next refresh. Row numbers are the spreadsheet's: the header
is row 1.

**Each row whole or not at all** (validate, then write): every row is checked in full first
(phone normalized to E.164 as at enrollment, dates, numbers, the tier's name, the e-mail);
a row that fails is listed with its number, the field and the reason, and the others go in.
The phone is the re-run key: a phone already enrolled in the program is left as it is
(counted as ``existing``), so importing the same file again adds nothing; a phone that
appears twice in the file is taken the first time and the later rows are refused.

**What history shows.** A member's imported balance and stamps are one ledger row with the
reason ``import`` (type ``adjust``, as a manual adjustment would write it, with the row
number in ``details``), so the history explains every number on the card. Stamps beyond the
program's goal wrap into rewards ready to claim, as :func:`rules.add_stamps` wraps them;
with ``points_validity_days`` the imported points are a lot that expires like any other
credit. An imported tier is the merchant's assignment (as ``POST /members/{id}/tier``
without ``until``): the card gets it, or the tier its points give when that is higher, and
the daily review keeps it until the merchant ends it. Imported members get no welcome bonus:
they are not new customers.

**Writing at size.** Rows are written in chunks of :data:`CHUNK` with set-based inserts
(members, then their cards, then the ledger rows and lots: one ``COPY`` each on PostgreSQL,
one ``executemany`` on SQLite, with ids taken beforehand), not one enrollment per row
(README: Performance). Cards are made as enrollment makes them (a Luhn card number, tokens,
a referral code, version 1); a new card is on no phone yet, so nothing is published to the
outbox. A chunk runs in a savepoint; if
the database refuses it (a phone enrolled meanwhile by the till, a card number taken), the
chunk is written again row by row, each in its own savepoint.

The service writes in the caller's transaction and never commits.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import String
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InvalidInput
from ..errors import ValidationFailed
from ..local_time import local_date
from ..local_time import start_of_day
from ..models import AnalyticsRefresh
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import Member
from ..models import PointLot
from ..rules import Totals
from ..rules import add_stamps
from ..rules import tier_for
from ..rules import tier_rank
from ..rules import to_minor
from ..validation import EMAIL
from .bulk import new_ids
from .members import new_card_number
from .members import new_referral_code
from .members import normalize_phone
from .merchants import time_zone_of
from .outbox import in_values
from .programs import get_program

MEMBERS = Member.__table__
CARDS = LoyaltyCard.__table__
TXN = LedgerTransaction.__table__
LOTS = PointLot.__table__
REFRESHES = AnalyticsRefresh.__table__

#: The fields a column can be mapped to.
FIELDS = ("phone", "name", "last_name", "first_name", "middle_name", "email", "birthday",
          "external_id", "balance", "stamps", "tier", "joined")

#: What a ledger row written by an import says.
REASON = "import"

#: Header names recognized without a mapping, by field; compared after :func:`header_key`
#: (case, spaces, punctuation and ё/е do not matter).
HEADER_NAMES: Mapping[str, tuple[str, ...]] = {
    "phone": ("phone", "phone number", "mobile", "mobile phone", "telephone", "tel",
              "телефон", "номер телефона", "тел", "мобильный", "мобильный телефон",
              "сотовый"),
    "name": ("name", "full name", "customer", "customer name", "client", "фио", "клиент",
             "имя клиента", "ф и о", "полное имя", "покупатель"),
    "last_name": ("last name", "surname", "family name", "фамилия"),
    "first_name": ("first name", "given name", "имя"),
    "middle_name": ("middle name", "patronymic", "отчество"),
    "email": ("email", "e-mail", "e mail", "mail", "почта", "эл почта", "электронная почта",
              "адрес электронной почты"),
    "birthday": ("birthday", "birth date", "date of birth", "dob", "birthdate",
                 "дата рождения", "день рождения", "др"),
    "external_id": ("external id", "card number", "card", "customer id", "client id",
                    "номер карты", "карта", "код клиента", "id клиента", "номер клиента"),
    "balance": ("balance", "points", "bonus", "bonuses", "баланс", "баллы", "бонусы",
                "бонусный баланс", "бонусные баллы", "остаток баллов", "кешбэк", "кэшбэк",
                "cashback", "rewards"),
    "stamps": ("stamps", "штампы", "штампов", "марки", "отметки", "печати"),
    "tier": ("tier", "level", "status", "уровень", "статус", "категория"),
    "joined": ("joined", "joined on", "member since", "registered", "registration date",
               "created at", "дата регистрации", "зарегистрирован", "дата выдачи",
               "дата выдачи карты", "клиент с", "дата вступления"),
}

CHUNK = 2000
_NAME_PARTS = ("last_name", "first_name", "middle_name")
_MAX_LENGTH = {"name": 200, "email": 254, "external_id": 100}
_FORMULA_START = ("=", "+", "-", "@")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%y")


def header_key(header: str) -> str:
    """A header as it is compared: lower case, ё as е, letters and digits only."""
    return "".join(ch for ch in header.casefold().replace("ё", "е") if ch.isalnum())


_BY_KEY = {header_key(name): fld for fld, names in HEADER_NAMES.items() for name in names}


@dataclass(frozen=True)
class CsvFile:
    """A decoded CSV file: its encoding, delimiter, header and rows (with their numbers)."""

    encoding: str
    delimiter: str
    header: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass(frozen=True)
class Rejected:
    """A row that did not go in: its number (the header is row 1), the field and why."""

    row: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    program_id: int
    encoding: str
    delimiter: str
    #: header → field, for the columns used
    columns: dict[str, str]
    #: headers of the columns not used
    ignored: list[str]
    rows: int = 0
    imported: int = 0
    existing: int = 0
    points: int = 0
    stamps: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False


@dataclass
class _Row:
    row: int
    phone: str
    name: str
    email: str | None
    birthday: dt.date | None
    external_id: str | None
    balance: int
    stamps: int
    tier: str | None
    joined: dt.datetime | None


class _RowError(Exception):
    def __init__(self, fld: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = fld, reason


def read_csv(data: bytes) -> CsvFile:
    """Decode ``data`` and split it into a header and rows; empty rows are skipped.

    :raises InvalidInput: not text (``file``), or no header.
    """
    if b"\x00" in data[:4096]:
        raise InvalidInput("file: not a text file (UTF-16 or binary); save it as CSV in "
                           "UTF-8 or Windows-1251", field="file")
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, text = "utf-8-sig", data[3:].decode("utf-8", errors="strict")
    else:
        try:
            encoding, text = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                encoding, text = "windows-1251", data.decode("cp1251")
            except UnicodeDecodeError:
                raise InvalidInput("file: neither UTF-8 nor Windows-1251 text",
                                   field="file") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise InvalidInput("file: empty; the first line names the columns", field="file")
    delimiter = max((";", ",", "\t"), key=first.count) if any(
        d in first for d in ";,\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
            else:
                rows.append((number, record))
    except csv.Error as exc:
        raise InvalidInput(f"file: row {number + 1}: {exc}", field="file") from None
    assert header is not None
    return CsvFile(encoding, delimiter, header, rows)


def column_mapping(header: Sequence[str],
                   explicit: Mapping[str, str | None] | None = None) -> dict[int, str]:
    """Column index → field: the ``explicit`` mapping (header → field, ``""`` or None to
    ignore the column) first, then the header names recognized (:data:`HEADER_NAMES`).

    :raises ValidationFailed: an explicit mapping naming a header the file lacks or a field
        that does not exist (``mapping.<header>``); two columns for one field, or no column
        for the phone or the name (``mapping``).
    """
    explicit = explicit or {}
    by_header = {h: i for i, h in reversed(list(enumerate(header)))}
    by_key = {header_key(h): i for i, h in reversed(list(enumerate(header)))}
    chosen: dict[int, str | None] = {}
    for name, fld in explicit.items():
        index = by_header.get(name.strip(), by_key.get(header_key(name)))
        if index is None:
            raise ValidationFailed(
                f"mapping.{name}: the file has no column {name!r} (its columns: "
                f"{', '.join(header)})", field=f"mapping.{name}")
        if fld not in (None, "") and fld not in FIELDS:
            raise ValidationFailed(
                f"mapping.{name}: no field {fld!r}; map a column to one of "
                f"{', '.join(FIELDS)}, or to \"\" to ignore it", field=f"mapping.{name}")
        chosen[index] = fld or None
    for index, name in enumerate(header):
        if index not in chosen:
            chosen[index] = _BY_KEY.get(header_key(name))
    columns: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, fld in chosen.items():
        if fld is None:
            continue
        if fld in seen:
            raise ValidationFailed(
                f"mapping: columns {header[seen[fld]]!r} and {header[index]!r} are both "
                f"{fld}; map one of them to another field or to \"\"", field="mapping")
        seen[fld] = index
        columns[index] = fld
    if "phone" not in seen:
        raise ValidationFailed(
            "mapping: no column holds the phone (the key of every member); name it "
            f"'Телефон' or 'phone', or map it (the file's columns: {', '.join(header)})",
            field="mapping")
    if "name" not in seen and not any(p in seen for p in _NAME_PARTS):
        raise ValidationFailed(
            "mapping: no column holds the name; name it 'ФИО', 'Имя' or 'name', or map it "
            f"(the file's columns: {', '.join(header)})", field="mapping")
    return dict(sorted(columns.items()))


def parse_mapping(values: Sequence[str]) -> dict[str, str | None]:
    """A column mapping from text: each value a JSON object (``{"Тел. моб.": "phone"}``)
    or one ``HEADER=FIELD`` (``HEADER=`` ignores the column).

    :raises InvalidInput: neither (``mapping``).
    """
    mapping: dict[str, str | None] = {}
    for value in values:
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = None
            if not isinstance(parsed, dict) or not all(
                    isinstance(k, str) and (v is None or isinstance(v, str))
                    for k, v in parsed.items()):
                raise InvalidInput('mapping: a JSON object of column headers to fields, such '
                                   'as {"Тел. моб.": "phone", "Примечание": ""}',
                                   field="mapping")
            mapping.update(parsed)
        elif "=" in value:
            header, _, fld = value.rpartition("=")
            mapping[header.strip()] = fld.strip() or None
        else:
            raise InvalidInput(f"mapping: {value!r} is not HEADER=FIELD nor a JSON object",
                               field="mapping")
    return mapping


def _whole(value: str, fld: str) -> int:
    text = re.sub(r"[\s\u00a0\u202f']", "", value).replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _RowError(fld, f"{value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise _RowError(fld, f"{value!r} is not a whole number")
    if number < 0:
        raise _RowError(fld, f"{value!r} is negative")
    if number > 10**12:
        raise _RowError(fld, f"{value!r} is too large")
    return int(number)


def _money(value: str, currency: str) -> int:
    text = re.sub(r"[\s\u00a0\u202f']", "", value).replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _RowError("balance", f"{value!r} is not an amount") from None
    if not number.is_finite() or number < 0 or number > 10**10:
        raise _RowError("balance", f"{value!r} is not an amount from 0 to 10000000000")
    try:
        return to_minor(currency, number, "balance")
    except InvalidInput:
        raise _RowError("balance", f"{value!r} has more decimals than {currency} "
                                   "allows") from None


def _date(value: str, today: dt.date, fld: str = "birthday") -> dt.date:
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            day = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if fmt.endswith("%y") and day > today:
            day = day.replace(year=day.year - 100)
        if not (dt.date(1900, 1, 1) <= day <= today):
            raise _RowError(fld, f"{value!r} is not a past date")
        return day
    raise _RowError(fld, f"{value!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")


def _joined(value: str, now: dt.datetime, time_zone: str) -> dt.datetime:
    """When the member joined: a day of the merchant's calendar (its first moment), or a
    moment with its offset, as an export writes it."""
    text = value.strip()
    if len(text) > 10:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _RowError("joined", f"{value!r} is not a date or a date and time") from None
        if moment.tzinfo is None:
            raise _RowError("joined", f"{value!r} has no UTC offset")
        if not (dt.datetime(1900, 1, 1, tzinfo=dt.UTC) <= moment <= now):
            raise _RowError("joined", f"{value!r} is not a past moment")
        return moment.astimezone(dt.UTC)
    return start_of_day(_date(text, local_date(now, time_zone), "joined"), time_zone)


@dataclass(frozen=True)
class _Program:
    id: int
    kind: str
    currency: str
    rules: dict[str, Any]
    tiers: dict[str, str]  # casefolded name → name


def _parse_row(number: int, record: list[str], columns: Mapping[int, str],
               program: _Program, region: str, now: dt.datetime, time_zone: str) -> _Row:
    values: dict[str, str] = {}
    for index, fld in columns.items():
        cell = record[index].strip() if index < len(record) else ""
        if cell[:1] == "'" and cell[1:2] in _FORMULA_START:
            cell = cell[1:]  # an export's guard against spreadsheet formulas
        if cell:
            values[fld] = cell
    raw_phone = values.get("phone")
    if raw_phone is None:
        raise _RowError("phone", "required: the phone is the key of every member")
    try:
        phone = normalize_phone(raw_phone, region)
    except InvalidInput:
        raise _RowError("phone", f"{raw_phone!r} is not a valid phone number") from None
    name = values.get("name") or " ".join(values[p] for p in _NAME_PARTS if p in values)
    name = " ".join(name.split())
    if not name:
        raise _RowError("name", "required")
    for fld, limit in _MAX_LENGTH.items():
        value = name if fld == "name" else values.get(fld)
        if value is not None and len(value) > limit:
            raise _RowError(fld, f"longer than {limit} characters")
    email = values.get("email")
    if email is not None and not EMAIL.match(email):
        raise _RowError("email", f"{email!r} is not an e-mail address")
    birthday = (_date(values["birthday"], local_date(now, time_zone))
                if "birthday" in values else None)
    balance = 0
    if "balance" in values:
        if program.kind == "cashback":
            balance = _money(values["balance"], program.currency)
        else:
            balance = _whole(values["balance"], "balance")
            if balance and program.kind == "discount":
                raise _RowError("balance", "a discount program keeps no balance")
    stamps = _whole(values["stamps"], "stamps") if "stamps" in values else 0
    if stamps and program.kind != "stamps":
        raise _RowError("stamps", f"a {program.kind} program has no stamps")
    tier = None
    if "tier" in values:
        tier = program.tiers.get(values["tier"].casefold())
        if tier is None:
            known = ", ".join(program.tiers.values()) or "none"
            raise _RowError("tier", f"the program has no tier {values['tier']!r} "
                                    f"(its tiers: {known})")
    joined = _joined(values["joined"], now, time_zone) if "joined" in values else None
    return _Row(number, phone, name, email, birthday, values.get("external_id"), balance,
                stamps, tier, joined)


def import_members(
    session: Session,
    merchant_id: int,
    program_id: int,
    data: bytes,
    *,
    default_region: str,
    mapping: Mapping[str, str | None] | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
) -> ImportReport:
    """Import the members of the CSV file ``data`` into the program (see the module's
    docstring); ``progress(done, total)`` is called after each chunk of rows. A dry run
    checks every row, against the program's members too, and writes nothing.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises InvalidInput: the file is not CSV text (``file``).
    :raises ValidationFailed: the mapping does not fit the file (``mapping``, see
        :func:`column_mapping`).
    """
    found = get_program(session, merchant_id, program_id)
    program = _Program(found.id, found.kind, found.currency, dict(found.rules or {}),
                       {t["name"].casefold(): t["name"]
                        for t in (found.rules or {}).get("tiers") or ()})
    parsed = read_csv(data)
    columns = column_mapping(parsed.header, mapping)
    report = ImportReport(
        program_id=program.id, encoding=parsed.encoding, delimiter=parsed.delimiter,
        columns={parsed.header[i]: f for i, f in columns.items()},
        ignored=[h for i, h in enumerate(parsed.header) if i not in columns and h],
        rows=len(parsed.rows), dry_run=dry_run)
    now = utcnow()
    time_zone = time_zone_of(session, merchant_id)
    today = local_date(now, time_zone)
    first_row_of: dict[str, int] = {}
    external_row_of: dict[str, int] = {}
    done = 0
    earliest: dt.datetime | None = None
    for start in range(0, len(parsed.rows), chunk):
        batch = parsed.rows[start:start + chunk]
        good: list[_Row] = []
        for number, record in batch:
            try:
                row = _parse_row(number, record, columns, program, default_region, now,
                                 time_zone)
            except _RowError as exc:
                report.rejected.append(Rejected(number, exc.field, exc.reason))
                continue
            if row.phone in first_row_of:
                report.rejected.append(Rejected(
                    number, "phone", f"{row.phone} is also on row {first_row_of[row.phone]}; "
                                     "the first row with a phone is taken"))
                continue
            first_row_of[row.phone] = number
            good.append(row)
        fresh = _not_enrolled(session, program.id, good, report)
        fresh = _external_ids_free(session, program.id, fresh, external_row_of, report)
        if not dry_run and fresh:
            _write(session, merchant_id, program, fresh, now, today, report)
            joined = [r.joined for r in fresh if r.joined is not None]
            if joined:
                earliest = min(joined if earliest is None else [earliest, *joined])
        else:
            report.imported += len(fresh)
            for row in fresh:
                report.points += row.balance
                report.stamps += row.stamps
        done += len(batch)
        if progress is not None:
            progress(done, len(parsed.rows))
    if earliest is not None:
        _reopen_analytics(session, merchant_id, local_date(earliest, time_zone))
    report.rejected.sort(key=lambda r: r.row)
    return report


def _reopen_analytics(session: Session, merchant_id: int, day: dt.date) -> None:
    """Members who joined on past days change those days' numbers, which the analytics
    rollups never reread (``services.analytics``): their next refresh starts from ``day``."""
    session.execute(update(REFRESHES).where(REFRESHES.c.merchant_id == merchant_id,
                                            REFRESHES.c.through > day)
                    .values(through=day))


def _not_enrolled(session: Session, program_id: int, rows: list[_Row],
                  report: ImportReport) -> list[_Row]:
    """``rows`` whose phone is not enrolled in the program yet; the others are counted as
    existing (the re-run key)."""
    if not rows:
        return rows
    taken = set(session.scalars(select(MEMBERS.c.phone).where(
        MEMBERS.c.program_id == program_id,
        in_values(session, MEMBERS.c.phone, [r.phone for r in rows], String))))
    report.existing += sum(1 for r in rows if r.phone in taken)
    return [r for r in rows if r.phone not in taken]


def _external_ids_free(session: Session, program_id: int, rows: list[_Row],
                       seen: dict[str, int], report: ImportReport) -> list[_Row]:
    """``rows`` whose external id is another member's (in the program or earlier in the
    file) are refused."""
    wanted = [r.external_id for r in rows if r.external_id is not None]
    taken = set(session.scalars(select(MEMBERS.c.external_id).where(
        MEMBERS.c.program_id == program_id,
        in_values(session, MEMBERS.c.external_id, wanted, String)))) if wanted else set()
    kept = []
    for row in rows:
        ext = row.external_id
        if ext is not None and (ext in taken or ext in seen):
            where = f"row {seen[ext]}" if ext in seen else "a member of the program"
            report.rejected.append(Rejected(row.row, "external_id",
                                            f"{ext!r} is already {where}'s"))
            continue
        if ext is not None:
            seen[ext] = row.row
        kept.append(row)
    return kept


@dataclass
class _Card:
    """What one imported member's card and ledger row hold."""

    balance: int
    stamps: int
    lifetime_points: int
    tier: str | None
    manual_tier: str | None
    entry_points: int
    details: dict[str, Any] | None


def _card_for(row: _Row, program: _Program) -> _Card:
    rules = program.rules
    points, stamps, details = row.balance, 0, {"import": {"row": row.row}}
    if row.stamps:
        goal = int((rules.get("stamps") or {}).get("goal", 0))
        wrapped = add_stamps(0, row.stamps, goal)
        stamps = wrapped.stamps
        if wrapped.rewards:
            points += wrapped.rewards
            details["rewards"] = wrapped.rewards
    due = tier_for(rules, program.currency, Totals(row.balance, 0, 0))
    tier = due
    if row.tier is not None:
        details["tier"] = {"rule": "manual_tier", "assigned": row.tier, "by_rules": due}
        if tier_rank(rules, row.tier) > tier_rank(rules, due):
            tier = row.tier
    return _Card(points, stamps, row.balance, tier, row.tier, points, details)


def _integrity_errors(session: Session) -> tuple[type[Exception], ...]:
    """What a refused constraint raises: SQLAlchemy's error, or the driver's own from
    ``COPY`` (which runs on the driver's connection)."""
    return (IntegrityError, session.get_bind().dialect.loaded_dbapi.IntegrityError)


def _write(session: Session, merchant_id: int, program: _Program, rows: list[_Row],
           now: dt.datetime, today: dt.date, report: ImportReport) -> None:
    """Write ``rows`` in one savepoint; when the database refuses the set, row by row."""
    try:
        with session.begin_nested():
            _insert(session, merchant_id, program, rows, now, today)
    except _integrity_errors(session):
        for row in rows:
            _write_one(session, merchant_id, program, row, now, today, report)
        return
    _count(rows, report)


def _write_one(session: Session, merchant_id: int, program: _Program, row: _Row,
               now: dt.datetime, today: dt.date, report: ImportReport) -> None:
    for _attempt in range(3):
        try:
            with session.begin_nested():
                _insert(session, merchant_id, program, [row], now, today)
        except _integrity_errors(session):
            same = MEMBERS.c.phone == row.phone
            if row.external_id is not None:
                same = same | (MEMBERS.c.external_id == row.external_id)
            found = session.execute(select(MEMBERS.c.phone, MEMBERS.c.external_id).where(
                MEMBERS.c.program_id == program.id, same)).first()
            if found is not None and found.phone == row.phone:
                report.existing += 1
                return
            if found is not None:
                report.rejected.append(Rejected(row.row, "external_id",
                                                f"{row.external_id!r} is already a member "
                                                "of the program's"))
                return
            continue  # a card number or referral code taken meanwhile: new ones
        _count([row], report)
        return
    report.rejected.append(Rejected(row.row, "phone", "could not be written; try again"))


def _count(rows: list[_Row], report: ImportReport) -> None:
    report.imported += len(rows)
    for row in rows:
        report.points += row.balance
        report.stamps += row.stamps


def _unique_codes(session: Session, count: int) -> tuple[list[str], list[str]]:
    """``count`` card numbers and referral codes, none taken by a card yet."""
    serials: list[str] = []
    referrals: list[str] = []
    while len(serials) < count:
        need = count - len(serials)
        candidates = {new_card_number() for _ in range(need)} - set(serials)
        taken = set(session.scalars(select(CARDS.c.serial_number).where(
            in_values(session, CARDS.c.serial_number, candidates, String))))
        serials.extend(sorted(candidates - taken)[:need])
    while len(referrals) < count:
        need = count - len(referrals)
        candidates = {new_referral_code() for _ in range(need)} - set(referrals)
        taken = set(session.scalars(select(CARDS.c.referral_code).where(
            in_values(session, CARDS.c.referral_code, candidates, String))))
        referrals.extend(sorted(candidates - taken)[:need])
    return serials, referrals


def _bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (with their ids): ``COPY`` on PostgreSQL, where a multi-row
    ``INSERT`` of thousands of parameters costs more to send than to run; one prepared
    statement run for every row (``executemany``) on SQLite."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
    driver = session.connection().connection.driver_connection
    assert driver is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in json_columns and row[c] is not None
                            else row[c] for c in columns])


def _insert(session: Session, merchant_id: int, program: _Program, rows: list[_Row],
            now: dt.datetime, today: dt.date) -> None:
    """Members, cards, ledger rows and lots of ``rows``: one bulk statement each."""
    member_ids = new_ids(session, MEMBERS, len(rows))
    _bulk_insert(session, MEMBERS, [
        {"id": member_id, "merchant_id": merchant_id, "program_id": program.id,
         "name": r.name, "phone": r.phone, "email": r.email, "birthday": r.birthday,
         "external_id": r.external_id, "answers": {}, "source": REASON,
         "marketing_consent": False, "created_at": r.joined or now}
        for member_id, r in zip(member_ids, rows, strict=True)])
    cards = [_card_for(r, program) for r in rows]
    serials, referrals = _unique_codes(session, len(rows))
    card_ids = new_ids(session, CARDS, len(rows))
    _bulk_insert(session, CARDS, [
        {"id": card_id, "merchant_id": merchant_id, "program_id": program.id,
         "member_id": member_id, "serial_number": serial,
         "authentication_token": secrets.token_urlsafe(24),
         "download_token": secrets.token_urlsafe(24), "status": "active",
         "balance": c.balance, "lifetime_points": c.lifetime_points,
         "lifetime_spend_minor": 0, "tier": c.tier, "manual_tier": c.manual_tier,
         "stamps": c.stamps, "stamp_debt": 0, "visits": 0, "referral_code": referral,
         "version": 1, "update_seq": 0, "last_modified": now,
         "created_at": r.joined or now, "updated_at": now}
        for card_id, member_id, serial, referral, c, r in zip(
            card_ids, member_ids, serials, referrals, cards, rows, strict=True)])
    entries = [(card_id, c, r) for card_id, c, r in zip(card_ids, cards, rows, strict=True)
               if c.entry_points or r.stamps or r.tier is not None]
    txn_ids = new_ids(session, TXN, len(entries)) if entries else []
    _bulk_insert(session, TXN, [
        {"id": txn_id, "merchant_id": merchant_id, "card_id": card_id, "type": "adjust",
         "points": c.entry_points, "stamps": r.stamps, "amount_minor": None,
         "reason": REASON, "balance_after": c.balance, "tier_after": c.tier,
         "details": c.details, "created_at": now}
        for txn_id, (card_id, c, r) in zip(txn_ids, entries, strict=True)])
    validity = program.rules.get("points_validity_days")
    if validity:
        expires = today + dt.timedelta(days=int(validity))
        lots = [(card_id, txn_id, c.entry_points)
                for txn_id, (card_id, c, _r) in zip(txn_ids, entries, strict=True)
                if c.entry_points > 0]
        lot_ids = new_ids(session, LOTS, len(lots)) if lots else []
        _bulk_insert(session, LOTS, [
            {"id": lot_id, "card_id": card_id, "transaction_id": txn_id, "points": points,
             "remaining": points, "expires_on": expires, "created_at": now}
            for lot_id, (card_id, txn_id, points) in zip(lot_ids, lots, strict=True)])


def iter_rejected_csv(report: ImportReport) -> Iterator[list[str]]:
    """The rejected rows as CSV records (``row``, ``field``, ``reason``), header first."""
    yield ["row", "field", "reason"]
    for r in report.rejected:
        yield [str(r.row), r.field, r.reason]

