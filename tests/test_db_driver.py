"""The database layer's driver paths on PostgreSQL: prepared statements that outlive a
read-only request, and hot-path statements run on the driver with SQLAlchemy's errors."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from wallet_service.db import run
from wallet_service.models import ApiKey
from wallet_service.services import ledger


def _postgres(app) -> None:
    if app.extensions["wallet"].engine.dialect.name != "postgresql":
        pytest.skip("prepared statements and the driver path are PostgreSQL's")


def test_statements_stay_prepared_across_read_only_transactions(app):
    """Every read-only request ends its transaction with a rollback; the connection must
    keep what it prepared, or each request has its queries parsed and planned again."""
    _postgres(app)
    lookup = select(ApiKey.id).where(ApiKey.key_hash == "no such key")
    with app.extensions["wallet"].engine.connect() as conn:
        for _ in range(8):  # prepared from the sixth time on, then kept
            assert conn.execute(lookup).all() == []
            conn.rollback()
        kept = list(conn.scalars(text("SELECT statement FROM pg_prepared_statements")))
        conn.rollback()
        assert any("FROM api_keys" in statement for statement in kept), kept
        assert list(conn.scalars(text("SELECT statement FROM pg_prepared_statements"))) \
            == kept  # a rollback forgets none of them


def test_a_failed_statement_rolls_back_and_the_connection_serves_the_next(app, api):
    """A statement that fails on the driver path raises SQLAlchemy's error; the rollback
    ends the failed transaction, and the connection (with what it prepared) is good for the
    next request."""
    _postgres(app)
    program = api.program()
    member = api.member(program["id"])
    sessions = app.extensions["wallet"].sessions
    with sessions() as s:
        key_hash = s.scalar(select(ApiKey.key_hash).limit(1))
        with pytest.raises(IntegrityError):
            run(s, insert(ApiKey.__table__), {"merchant_id": api.merchant_id, "name": "again",
                                              "prefix": "again", "key_hash": key_hash,
                                              "scope": "full"})
        s.rollback()
        rows = run(s, ledger.LOCK_CARD_AND_KEY, {"member_id": member["id"],
                                                 "merchant_id": api.merchant_id, "key": None})
        assert [r.member_id for r in rows] == [member["id"]]
        s.rollback()
    assert api.post(f"/members/{member['id']}/transactions",
                    {"type": "earn", "points": 3}).status_code == 201


def test_the_driver_path_sees_what_the_session_has_pending(app, api, session):
    """Like an ORM statement, a statement on the driver path is run after the session's
    pending objects are written (on SQLite it is an ORM statement)."""
    from wallet_service.db import first_row
    from wallet_service.services.merchants import _KEY_BY_HASH

    session.add(ApiKey(merchant_id=api.merchant_id, name="pending", prefix="pending",
                       key_hash="f" * 64, scope="full"))
    row = first_row(session, _KEY_BY_HASH, {"key_hash": "f" * 64})
    assert row is not None and row.merchant_id == api.merchant_id
    assert [r.key_hash for r in run(session, select(ApiKey.__table__).where(
        ApiKey.key_hash == "f" * 64), {})] == ["f" * 64]
    session.rollback()
