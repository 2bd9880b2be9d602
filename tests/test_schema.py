"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Table

from wallet_service.db import Base
from wallet_service.migrate import check


def test_models_and_migrations_agree(engine):
    check(engine)  # raises CommandError listing the differences


def test_the_check_fails_when_a_model_changes(engine):
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    Table("loyalty_cards", changed, Column("surprise", Integer), extend_existing=True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), changed)
    assert any(d[0] == "add_column" and d[3].name == "surprise" for d in diff)


def test_check_raises_on_drift(engine, monkeypatch):
    extra = Table("not_migrated", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(CommandError):
            check(engine)
    finally:
        Base.metadata.remove(extra)
