"""Fixtures for the pass-building tests: a development certificate set made once per run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pass_helpers import PASS_TYPE_ID
from pass_helpers import TEAM_ID
from pass_helpers import make_content
from pass_helpers import make_design
from pass_helpers import open_pkpass

from wallet_service.apple import CardContent
from wallet_service.apple import Design
from wallet_service.apple import SignerCredentials
from wallet_service.apple import assets as apple_assets


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> apple_assets.DevCertPaths:
    return apple_assets.generate_dev_certs(tmp_path_factory.mktemp("certs"), PASS_TYPE_ID, TEAM_ID)


@pytest.fixture(scope="session")
def signer(dev_certs: apple_assets.DevCertPaths) -> SignerCredentials:
    return apple_assets.load_signer(
        wwdr_cert=dev_certs.wwdr_certificate, cert=dev_certs.certificate, key=dev_certs.private_key
    )


@pytest.fixture
def design() -> Design:
    return make_design()


@pytest.fixture
def content() -> CardContent:
    return make_content()


@pytest.fixture(name="open_pkpass")
def open_pkpass_fixture() -> Callable[[bytes], dict[str, bytes]]:
    return open_pkpass
