"""A console import in a real browser, in Russian and in English: the upload lands on the
job's page, whose progress bar htmx refreshes until the worker is done and the report
replaces it, without a reload; axe-core checks the page while it waits and when it is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import browser_support
import pytest
from browser_support import axe_violations
from browser_support import console_sign_in
from conftest import Api
from conftest import make_merchant
from console_support import make_user
from playwright.sync_api import expect

from wallet_service.ratelimit import RateLimiter
from wallet_service.worker import Worker

browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCALES = {"ru": "ru-RU", "en": "en-US"}
WAITING = {"ru": "В очереди", "en": "Waiting to start"}
DONE = {"ru": "Импорт выполнен", "en": "Import done"}
FILE = "Телефон;ФИО;Баллы\n+79120000001;Анна;150\nnot a phone;Борис;5\n".encode()


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_an_import_shows_its_progress_then_its_report(browser: Any, live: Any,
                                                      lang: str) -> None:
    live.app.extensions["wallet"].limiters.sign_in = RateLimiter(1000)
    merchant_id, key = make_merchant(live.app, "Zerno")
    program = Api(live.app.test_client(), key, merchant_id).program(name="Кофейня")
    _, owner = make_user(live.app, merchant_id, "owner",
                         email=f"import-{lang}{merchant_id}@zerno.test")
    context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280,
                                                                  "height": 900})
    page = context.new_page()
    console_sign_in(page, live, owner, lang=lang)
    page.goto(f"{live.url}/console/settings/import-export")
    page.select_option("#import-program", str(program["id"]))
    page.set_input_files("#import-file", files=[{"name": "base.csv", "mimeType": "text/csv",
                                                 "buffer": FILE}])
    page.locator("form[enctype] button[type=submit]").click()
    page.wait_for_url(f"{live.url}/console/settings/import-export/jobs/*")
    expect(page.locator("#progress-heading")).to_have_text(WAITING[lang])
    assert page.locator("#import-progress").count() == 1
    assert axe_violations(page) == []
    if lang == "en":
        page.screenshot(path=str(DOCS / "console-import-waiting-1280.png"), full_page=True)

    # The worker runs the job; the polling page shows the report without a reload.
    assert Worker.from_state(live.app.extensions["wallet"], wakeups=()).imports() == 1
    expect(page.locator("#import-report")).to_be_visible(timeout=10_000)
    expect(page.locator("#report-heading")).to_have_text(DONE[lang])
    assert page.locator("#import-progress").count() == 0
    assert page.locator("#import-job").get_attribute("hx-trigger") is None
    assert page.locator("#rejected tbody tr").count() == 1
    assert axe_violations(page) == []
    if lang == "en":
        page.screenshot(path=str(DOCS / "console-import-done-1280.png"), full_page=True)

    page.goto(f"{live.url}/console/settings/import-export")
    expect(page.locator("#import-jobs tbody tr")).to_have_count(1)
    expect(page.locator("#import-jobs")).to_contain_text("base.csv")
    assert axe_violations(page) == []
    context.close()
