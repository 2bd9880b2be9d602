"""Engine, session factory and the declarative base shared by every model."""

from __future__ import annotations

import datetime as dt
import os
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import types
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(types.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC
    and come back aware, which keeps comparisons and JSON output identical on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are BIGINT elsewhere only.
BigId = BigInteger().with_variant(types.Integer(), "sqlite")

bigint_pk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
created_at = Annotated[dt.datetime, mapped_column(UTCDateTime, default=utcnow, nullable=False)]


def dialect_insert(session: Any, table: Any) -> Any:
    """``INSERT`` for the session's database with its ``ON CONFLICT`` clauses (PostgreSQL's
    and SQLite's spell them alike)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _rows(result: Any) -> list[Any]:
    if getattr(result, "returns_rows", True) is False:  # a cursor's result without rows
        return []
    return list(result.all())


@lru_cache(maxsize=256)
def _postgres_compiled(statement: Any, column_keys: tuple[str, ...] | None = None) -> Any:
    """``statement`` compiled for psycopg (``%(name)s`` placeholders), once per set of
    parameters an ``INSERT`` without its own values is given (``column_keys``)."""
    from sqlalchemy.dialects import postgresql

    return statement.compile(dialect=postgresql.psycopg.dialect(), column_keys=column_keys)


def run(session: Any, statement: Any, params: dict[str, Any]) -> list[Any]:
    """Execute a hot path's statement (a ``SELECT``, or an ``INSERT``, ``UPDATE`` or
    ``DELETE`` built once at import) in the session's transaction; returns its rows (named
    tuples), none for a statement without a result. On PostgreSQL it goes straight through
    the session's connection, compiled once, its parameters through the columns' types as
    SQLAlchemy would send them: a fraction of what ``Session.execute`` costs in Python (a
    purchase runs four statements). Errors are SQLAlchemy's (``IntegrityError`` for a
    unique key taken meanwhile), so callers handle them alike on both paths. Values come as
    the driver reads them (see :func:`first_row`)."""
    if session.get_bind().dialect.name != "postgresql":
        return _rows(session.execute(statement, params))
    from psycopg import Error
    from psycopg.rows import namedtuple_row
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.sql.dml import Insert

    if session.autoflush:  # as an ORM statement would: pending objects are written first
        session.flush()
    keys = tuple(sorted(params)) if isinstance(statement, Insert) else None
    compiled = _postgres_compiled(statement, keys)
    if compiled.insert_prefetch or compiled.update_prefetch:  # defaults made in Python
        return _rows(session.execute(statement, params))
    processors = compiled._bind_processors
    values = compiled.construct_params(params)
    for key, process in processors.items():
        if key in values:
            values[key] = process(values[key])
    sql = str(compiled)
    driver = session.connection().connection.driver_connection
    try:
        with driver.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, values)
            return cursor.fetchall() if cursor.description is not None else []
    except Error as exc:
        raise DBAPIError.instance(sql, values, exc, Error) from exc


def first_row(session: Any, statement: Any, params: dict[str, Any], *,
              binary: bool = False) -> Any:
    """The first row (a named tuple, or None) of a hot path's ``SELECT``. On PostgreSQL it
    goes straight through the session's connection, compiled once: a fraction of what
    ``Session.execute`` costs in Python for a one-row look-up. Values come as the driver
    reads them (no column types' conversions: ``UTCDateTime`` columns come back as they are
    stored, aware), in binary format with ``binary``."""
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(statement, params).first()
    from psycopg import Error
    from psycopg.rows import namedtuple_row
    from sqlalchemy.exc import DBAPIError

    if session.autoflush:
        session.flush()
    compiled = _postgres_compiled(statement)
    sql, values = str(compiled), compiled.construct_params(params)
    driver = session.connection().connection.driver_connection
    try:
        with driver.cursor(binary=binary, row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, values)
            return cursor.fetchone()
    except Error as exc:
        raise DBAPIError.instance(sql, values, exc, Error) from exc


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime}


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine for ``url`` with the per-database settings the service relies on."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per request; recycle instead, and a dead
        # connection surfaces as an error the client retries (its Idempotency-Key keeps
        # the retry safe).
        pool_recycle=1800,
        isolation_level="READ COMMITTED",
    )
    if engine.dialect.driver == "psycopg":

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return _connection_class().connect(*cargs, **cparams)

    return engine


@lru_cache(maxsize=1)
def _connection_class() -> Any:
    """psycopg's connection, except that a rollback keeps the statements it prepared.

    psycopg prepares a statement on the server once a connection has run it five times,
    and forgets every one of them at each ``rollback()`` (with a ``DEALLOCATE ALL``), in
    case the transaction created the objects they name. Every read-only request ends with
    a rollback, so with the stock connection no statement stayed prepared: each request
    had every query parsed and planned again (a pass download's look-up: 0.03 ms to run,
    three times that to plan). The service's transactions never create or drop what a
    query names (migrations commit), and PostgreSQL re-plans a prepared statement when a
    table it reads changes. A ``ROLLBACK TO SAVEPOINT`` still goes through psycopg's own
    path, and the stock ``rollback()`` is used wherever its internals differ."""
    import psycopg
    from psycopg import pq

    class KeepPrepared(psycopg.Connection):  # type: ignore[type-arg]
        def rollback(self) -> None:
            command = getattr(self, "_exec_command", None)
            if (command is None or getattr(self, "_num_transactions", 1)
                    or getattr(self, "_tpc", None) or getattr(self, "_pipeline", True)
                    or self.pgconn.transaction_status == pq.TransactionStatus.IDLE):
                super().rollback()
                return
            with self.lock:
                self.wait(command(b"ROLLBACK"))

    return KeepPrepared


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (members' personal data and API
    key hashes); SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with suppress(PermissionError):  # not ours to change: leave it as its owner set it
        os.chmod(path, 0o600)  # also when it existed with wider permissions


def _sqlite_engine(url: str) -> Engine:
    """SQLite tuned for a small server: WAL, a busy timeout and write-ahead locking.

    pysqlite opens transactions lazily and only upgrades to a write lock at the first write,
    which makes concurrent read-modify-write transactions fail with "database is locked"
    instead of waiting. Every transaction therefore starts with ``BEGIN IMMEDIATE``: writers
    queue on the busy timeout, readers in WAL mode are never blocked.
    """
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:" and not path.startswith("file:"):
        _private_file(Path(path.split("?", 1)[0]))
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(bind=engine, expire_on_commit=False)
