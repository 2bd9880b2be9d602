"""Writing many rows at once on PostgreSQL: the rows go as one JSON document, which
``json_to_recordset`` turns back into typed rows. A multi-row ``INSERT`` (or an
``executemany``) of thousands of parameters costs more to send, parse and bind than to run;
one document is one parameter, encoded in C. Values are given as the columns' bind
processing would send them (aware datetimes, dates); JSON columns are stored as
SQLAlchemy's ``JSON`` type stores them (a ``None`` is JSON ``null`` unless the column says
``none_as_null``).

The statements are PostgreSQL's; on SQLite :func:`insert` runs an ``executemany``, and
:func:`update` is PostgreSQL's only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Table
from sqlalchemy import TextClause
from sqlalchemy import func
from sqlalchemy import insert as sql_insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_DIALECT = postgresql.dialect()


def new_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` ids for new rows of ``table``, ascending: from its sequence on PostgreSQL;
    on SQLite after the highest, which is safe because the transaction holds the
    database's write lock from its start (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count}))
    start = int(session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1
    return list(range(start, start + count))


def insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same columns) into ``table``; on SQLite, one
    prepared statement run for each. Rows that take their ``id`` from a sequence take them
    in no set order: give the ids (:func:`new_ids`) when order matters."""
    if rows and session.get_bind().dialect.name != "postgresql":
        session.execute(sql_insert(table), list(rows))
    elif rows:
        names = tuple(rows[0])
        session.execute(_insert_statement(table, names), {"rows": _document(table, rows)})


def update(session: Session, table: Table, key: str,
           rows: Sequence[Mapping[str, Any]]) -> None:
    """Update the rows of ``table`` whose ``id`` is each row's ``key``, to the row's other
    values (dicts with the same columns)."""
    if rows:
        names = tuple(name for name in rows[0] if name != key)
        session.execute(_update_statement(table, key, names),
                        {"rows": _document(table, rows, {key: "id"})})


def _fields(table: Table, names: Sequence[str], renamed: Mapping[str, str]) -> str:
    """The record type of the document's rows: each field with its column's type (JSON
    columns arrive as their text)."""
    out = []
    for name in names:
        kind = table.c[renamed.get(name, name)].type
        out.append(f"{name} {'TEXT' if isinstance(kind, JSON) else kind.compile(_DIALECT)}")
    return ", ".join(out)


def _value(table: Table, name: str) -> str:
    return (f"CAST(v.{name} AS {table.c[name].type.compile(_DIALECT)})"
            if isinstance(table.c[name].type, JSON) else f"v.{name}")


@lru_cache
def _insert_statement(table: Table, names: tuple[str, ...]) -> TextClause:
    return text(
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(_value(table, name) for name in names)} "
        f"FROM json_to_recordset(CAST(:rows AS JSON)) AS v({_fields(table, names, {})})")


@lru_cache
def _update_statement(table: Table, key: str, names: tuple[str, ...]) -> TextClause:
    assignments = ", ".join(f"{name} = {_value(table, name)}" for name in names)
    return text(
        f"UPDATE {table.name} SET {assignments} "
        f"FROM json_to_recordset(CAST(:rows AS JSON)) "
        f"AS v({_fields(table, (key, *names), {key: 'id'})}) "
        f"WHERE {table.name}.id = v.{key}")


def _document(table: Table, rows: Sequence[Mapping[str, Any]],
              renamed: Mapping[str, str] | None = None) -> str:
    renamed = renamed or {}
    json_columns = []
    for name in rows[0]:
        kind = table.c[renamed.get(name, name)].type
        if isinstance(kind, JSON):
            json_columns.append((name, kind.none_as_null))
    if json_columns:
        rows = [{**row, **{name: None if row[name] is None and none_as_null
                           else json.dumps(row[name])
                           for name, none_as_null in json_columns}} for row in rows]
    return json.dumps(rows, default=_encode, separators=(",", ":"))


def _encode(value: Any) -> str:
    if isinstance(value, dt.date):  # datetimes too: ISO 8601, with their offset
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value bulk writes send")
