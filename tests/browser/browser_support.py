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
    # Each test module binds this fixture under its own name, so pytest sets it up once per
    # module; one Playwright runs per process (a second sync_playwright() refuses to start
    # inside the first one's loop), shared and stopped when the last module is done.
    if not _PLAYWRIGHT:
        pw = sync_playwright().start()
        _PLAYWRIGHT.update(pw=pw, browser=pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True), users=0)
    _PLAYWRIGHT["users"] += 1
    try:
        yield _PLAYWRIGHT["browser"]
    finally:
        _PLAYWRIGHT["users"] -= 1
        if _PLAYWRIGHT["users"] == 0:
            _PLAYWRIGHT["browser"].close()
            _PLAYWRIGHT.pop("pw").stop()
            _PLAYWRIGHT.clear()


_PLAYWRIGHT: dict[str, Any] = {}


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


# --- the merchant console -----------------------------------------------------------------

AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe-core", "axe.min.js")


def console_sign_in(page: Any, live: LiveServer, email: str, password: str | None = None,
                    *, lang: str = "en") -> None:
    """Sign in to the console of ``live`` in the browser ``page`` (through the form, as a
    person does), with the console in ``lang``; ends on the Overview."""
    from console_support import PASSWORD

    page.goto(f"{live.url}/console/sign-in")
    current = page.locator("html").get_attribute("lang")
    if current != lang:
        page.locator(f".lang-switch button[value={lang}]").click()
        page.wait_for_load_state()
    page.fill("#email", email)
    page.fill("#password", password or PASSWORD)
    page.locator("form.panel button[type=submit]").click()
    page.wait_for_url(f"{live.url}/console/**")
    if page.locator("html").get_attribute("lang") != lang:
        page.locator(f".lang-switch button[value={lang}]").click()
        page.wait_for_load_state()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """axe-core's violations of the page as loaded, of the given impacts (the vendored
    axe-core, from the npm registry: .ci/vendor-js)."""
    with open(AXE, encoding="utf-8") as fh:
        source = fh.read()
    # Evaluated as the page's own script would be blocked by its CSP; Playwright's
    # evaluate runs in the page without it.
    page.evaluate(source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]
