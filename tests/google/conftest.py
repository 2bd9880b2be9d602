"""Fixtures for the Google Wallet adapter: the REST/OAuth stand-in, a throwaway service
account pointing at it, and clients built only through configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google_standin import GoogleWalletStandIn
from google_standin import ServiceAccount

from wallet_service.google import GoogleWalletClient


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def standin() -> Iterator[GoogleWalletStandIn]:
    with GoogleWalletStandIn() as server:
        yield server


@pytest.fixture
def account(standin: GoogleWalletStandIn, tmp_path: Path) -> ServiceAccount:
    return standin.service_account(tmp_path / "service-account.json")


class Sleeps(list[float]):
    """A ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(standin: GoogleWalletStandIn, account: ServiceAccount, sleeps: Sleeps
                ) -> Iterator[Callable[..., GoogleWalletClient]]:
    """``make_client(**options)``: a client for the stand-in from the key file and base URL
    only; backoff sleeps are recorded (``sleeps``), not slept, unless ``sleep`` is given."""
    clients: list[GoogleWalletClient] = []

    def make(**options: Any) -> GoogleWalletClient:
        options.setdefault("base_url", standin.url)
        options.setdefault("rate", 1000.0)
        options.setdefault("sleep", sleeps)
        options.setdefault("rng", lambda: 1.0)
        assert account.path is not None
        client = GoogleWalletClient.from_service_account_file(account.path, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., GoogleWalletClient]) -> GoogleWalletClient:
    return make_client()
