"""Fixtures of the browser tests: headless Chromium (Debian's, driven by Playwright) against
the app served by werkzeug on 127.0.0.1 in a thread.

Without Chromium or Playwright these tests skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from wallet_service import create_app

CHROMIUM = os.environ.get("WALLET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; browser tests are required in CI")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app: Flask, url: str) -> None:
        self.app = app
        self.url = url


@pytest.fixture(scope="module")
def live(app: Flask, app_config: dict[str, Any]) -> Iterator[LiveServer]:
    """The app on a free port of 127.0.0.1, its public URL that address, sharing the test
    database and instance folder (so the pass is signed by the same development chain)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    live_app = create_app({**app_config, "PUBLIC_URL": url, "DB_POOL_SIZE": "5"})
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(live_app, url)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        live_app.extensions["wallet"].engine.dispose()
