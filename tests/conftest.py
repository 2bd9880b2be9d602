"""Test fixtures. The suite runs on SQLite by default and on PostgreSQL when
``WALLET_TEST_DATABASE_URL`` is set (CI runs both). The schema is always built by the
migrations, never by ``create_all``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Api
from api_support import make_merchant
from apns_standin import make_certificates
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text

from wallet_service import create_app
from wallet_service.db import Base
from wallet_service.migrate import upgrade

PG_URL = os.environ.get("WALLET_TEST_DATABASE_URL")


def is_postgres() -> bool:
    return bool(PG_URL)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return PG_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def app_config(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "SECRET_KEY": "test-secret-key",
        "PUBLIC_URL": "https://wallet.example.test",
        "DB_POOL_SIZE": "20",
    }


@pytest.fixture(scope="session")
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(app_config)
    app.config["TESTING"] = True
    upgrade(app.extensions["wallet"].engine)
    yield app
    app.extensions["wallet"].engine.dispose()


@pytest.fixture(scope="session")
def engine(app: Flask) -> Engine:
    engine: Engine = app.extensions["wallet"].engine
    return engine


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the database starts from empty tables."""
    if "app" not in request.fixturenames:
        yield
        return
    engine: Engine = request.getfixturevalue("engine")
    yield
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        # The migration seeds the tag counter; put its row back as a fresh install has it.
        conn.execute(text("INSERT INTO update_counter (id, value) VALUES (1, 0)"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Any]:
    with app.extensions["wallet"].sessions() as s:
        yield s


@pytest.fixture
def api(app: Flask, client: FlaskClient) -> Api:
    merchant_id, key = make_merchant(app, "Coffee Shop")
    return Api(client, key, merchant_id)


@pytest.fixture
def other_api(app: Flask, client: FlaskClient) -> Api:
    merchant_id, key = make_merchant(app, "Bakery")
    return Api(client, key, merchant_id)


@pytest.fixture(scope="module")
def apns_certs(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The stand-in's PKI, plus the service's own (development) WWDR CA so the stand-in
    accepts the pass certificate as client certificate, as Apple does."""
    from wallet_service.services.apple import signer_from_settings as load_signer

    settings = app.extensions["wallet"].settings
    load_signer(settings)  # makes sure the development set exists
    certs = make_certificates(tmp_path_factory.mktemp("apns"))
    bundle = certs.folder / "trusted.pem"
    bundle.write_bytes(certs.ca_file.read_bytes()
                       + (settings.instance_path / "certs" / "wwdr.pem").read_bytes())
    return dataclasses.replace(certs, ca_file=bundle)
