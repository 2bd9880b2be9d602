"""Shared pieces for tests that push through the APNs stand-in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

from apple_device import Device
from sqlalchemy import func
from sqlalchemy import select

from wallet_service.models import LoyaltyCard
from wallet_service.state import make_push_client
from wallet_service.worker import Worker

PASS_TYPE = "pass.dev.wallet-service.loyalty"


def worker_env(app, apns, lease: float) -> dict[str, str]:
    settings = app.extensions["wallet"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({
        "WALLET_DATABASE_URL": settings.database_url,
        "WALLET_INSTANCE_PATH": str(settings.instance_path),
        "WALLET_SECRET_KEY": "test-secret-key",
        "WALLET_PUSH_BACKEND": "apns",
        "WALLET_APNS_URL": apns.url,
        "WALLET_APNS_CA_FILE": str(apns.certs.ca_file),
        "WALLET_PUSH_DEBOUNCE_SECONDS": "0",
        "WALLET_WORKER_LEASE_SECONDS": str(lease),
        "WALLET_LOG_LEVEL": "INFO",
    })
    return env


class Clock:
    """The worker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class WorkerFactory:
    """Workers on the test app's database that push to an APNs stand-in through their
    settings; ``close()`` closes their push clients."""

    def __init__(self, app: Any, apns: Any) -> None:
        self.app = app
        self.apns = apns
        self.made: list[Any] = []

    def __call__(self, clock: Any = None, *, apns: Any = None, wakeups: Any = (),
                 **changes: Any) -> Worker:
        changes.setdefault("push_debounce_seconds", 0.0)
        apns = apns or self.apns
        state = self.app.extensions["wallet"]
        settings = dataclasses.replace(
            state.settings, push_backend="apns", apns_url=apns.url,
            apns_ca_file=str(apns.certs.ca_file), **changes)
        push = make_push_client(settings, state.passes)
        self.made.append(push)
        return Worker(sessions=state.sessions, push=push, settings=settings,
                      clock=clock or Clock(), wakeups=wakeups)

    def close(self) -> None:
        for push in self.made:
            push.close()


def tokens_of(app):
    with app.extensions["wallet"].sessions() as s:
        return dict(s.execute(select(LoyaltyCard.serial_number,
                                     LoyaltyCard.authentication_token)).all())


def register(app, client, members, n_devices=1, prefix="lib"):
    tokens = tokens_of(app)
    phones = []
    for d in range(n_devices):
        phone = Device(client, f"{prefix}-{d}", f"{d:064x}")
        for m in members:
            assert phone.register(m["serial_number"], tokens[m["serial_number"]]).status_code == 201
        phone.sync(tokens)
        phones.append(phone)
    return phones, tokens


def count(app, model, *where):
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))
