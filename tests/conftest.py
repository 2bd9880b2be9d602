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
from console_support import Console
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
        # Every test signs in to the console from 127.0.0.1; the limit's own test sets a
        # small one.
        "SIGN_IN_RATE_LIMIT_PER_MINUTE": "100000",
        # Webhook receivers in tests listen on 127.0.0.1 (tests/test_webhooks.py turns it off
        # to show the refusal).
        "WEBHOOKS_ALLOW_PRIVATE": "true",
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


@pytest.fixture
def console(app: Flask, client: FlaskClient, api: Api) -> Console:
    """The console signed in as an ``owner`` of ``api``'s merchant (English words); for
    another role: ``console_as("staff")``, for another merchant ``console_as(role, other)``
    with ``other`` an ``Api``."""
    return Console(client, api.merchant_id).sign_in_as(app, "owner")


@pytest.fixture
def console_as(app: Flask, api: Api) -> Any:
    """A factory: ``console_as(role, merchant_api=None)``, a new client signed in as a new
    user of ``role`` in ``api``'s merchant (or ``merchant_api``'s)."""
    count = 0

    def make(role: str = "owner", merchant_api: Api | None = None) -> Console:
        nonlocal count
        count += 1
        merchant_id = (merchant_api or api).merchant_id
        return Console(app.test_client(), merchant_id).sign_in_as(
            app, role, email=f"{role}{count}-{merchant_id}@example.test")

    return make


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that drives the real browser ``browser``: CI runs those on PostgreSQL
    only (``-m 'not browser'`` on SQLite), since they exercise pages, not the database."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
