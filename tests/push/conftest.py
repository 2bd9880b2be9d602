"""Fixtures for the push adapter: a throwaway PKI, the APNs stand-in, and client factories."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from apns_standin import ApnsStandIn
from apns_standin import StandInCertificates
from apns_standin import make_certificates
from push_helpers import TOPIC

from wallet_service.push import ApnsPushClient
from wallet_service.push import CertificateAuth


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> StandInCertificates:
    return make_certificates(tmp_path_factory.mktemp("apns-pki"),
                             client_common_name=f"Pass Type ID: {TOPIC}")


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> StandInCertificates:
    """A second, unrelated PKI: its client certificate is not trusted by ``certs``' CA."""
    return make_certificates(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def standin_factory(certs: StandInCertificates) -> Iterator[Callable[..., ApnsStandIn]]:
    started: list[ApnsStandIn] = []

    def start(**options: Any) -> ApnsStandIn:
        options.setdefault("certs", certs)
        options.setdefault("topic", TOPIC)
        standin = ApnsStandIn(**options)
        standin.start()
        started.append(standin)
        return standin

    yield start
    for standin in started:
        standin.stop()


@pytest.fixture
def standin(standin_factory: Callable[..., ApnsStandIn]) -> ApnsStandIn:
    return standin_factory()


@pytest.fixture
def client_factory(certs: StandInCertificates) -> Iterator[Callable[..., ApnsPushClient]]:
    """Builds ``ApnsPushClient``s for a stand-in, only through configuration; closes them."""
    made: list[ApnsPushClient] = []

    def make(standin: ApnsStandIn, **options: Any) -> ApnsPushClient:
        options.setdefault("topic", TOPIC)
        options.setdefault("base_url", standin.url)
        options.setdefault("ca_file", certs.ca_file)
        options.setdefault("connect_timeout", 5.0)
        options.setdefault("timeout", 20.0)
        options.setdefault(
            "auth", CertificateAuth(certificate=certs.client_cert, private_key=certs.client_key)
        )
        client = ApnsPushClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(client_factory: Callable[..., ApnsPushClient], standin: ApnsStandIn
           ) -> ApnsPushClient:
    return client_factory(standin)

