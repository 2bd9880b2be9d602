"""The merchant console in a real browser (Debian's Chromium through Playwright), in Russian
and in English: sign in → find a member by phone (as you type) → correct their phone → adjust
+50 with a reason → the member's downloaded pass shows the new balance → the audit log shows
both changes. axe-core checks every console page; screenshots of the main pages at 1280 px
and 375 px go to docs/screenshots/."""

from __future__ import annotations

import io
import json
import re
import zipfile
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
from wallet_pass import DownloadedPass

from wallet_service.apple import decode_strings
from wallet_service.ratelimit import RateLimiter

browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCALES = {"ru": "ru-RU", "en": "en-US"}
WIDTHS = {"1280": {"width": 1280, "height": 900}, "375": {"width": 375, "height": 812}}
REASONS = {"ru": "Потерянный чек", "en": "Lost receipt"}


@pytest.fixture
def shop(live: Any) -> dict[str, Any]:
    """A merchant with a points programme, two members, an owner and a manager."""
    live.app.extensions["wallet"].limiters.sign_in = RateLimiter(1000)
    merchant_id, key = make_merchant(live.app, "Zerno")
    api = Api(live.app.test_client(), key, merchant_id)
    program = api.program(name="Кофейня «Зерно»", currency="RUB", languages=["ru", "en"])
    member = api.member(program["id"], name="Анна Петрова", phone="+7 912 345-67-89")
    api.member(program["id"], name="Борис", phone="+7 912 000-11-22")
    _, owner = make_user(live.app, merchant_id, "owner", email=f"owner{merchant_id}@zerno.test")
    _, manager = make_user(live.app, merchant_id, "manager",
                           email=f"manager{merchant_id}@zerno.test")
    return {"api": api, "program": program, "member": member, "owner": owner,
            "manager": manager, "merchant_id": merchant_id}


def downloaded_pass(page: Any, url: str) -> DownloadedPass:
    """The pass behind ``url``, fetched by the browser and read as a phone reads it."""
    response = page.request.get(url)
    assert response.status == 200, response.status
    with zipfile.ZipFile(io.BytesIO(response.body())) as archive:
        strings = {name.split(".lproj/")[0]: decode_strings(archive.read(name))
                   for name in archive.namelist() if name.endswith(".lproj/pass.strings")}
        return DownloadedPass(json.loads(archive.read("pass.json")), strings)


def no_violations(page: Any, where: str) -> None:
    found = axe_violations(page)
    assert found == [], f"{where}: {found}"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_owner_finds_corrects_adjusts_and_sees_it_audited(browser: Any, live: Any, shop: Any,
                                                          lang: str) -> None:
    context = browser.new_context(locale=LOCALES[lang], viewport=WIDTHS["1280"])
    page = context.new_page()
    console_sign_in(page, live, shop["owner"], lang=lang)
    assert page.locator("html").get_attribute("lang") == lang
    no_violations(page, "overview")

    # Find the member by phone, as you type.
    page.locator(".main-nav a[href='/console/members']").click()
    page.wait_for_url("**/console/members")
    no_violations(page, "members")
    page.locator("#q").press_sequentially("912 345", delay=40)
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    assert "Анна Петрова" in rows.first.inner_text()
    assert "Борис" not in page.locator("#results").inner_text()
    assert "q=912" in page.url  # the search is in the address, so it can be shared and kept
    rows.first.locator("a.member-link").click()
    page.wait_for_url(re.compile(r".*/console/members/\d+"))
    no_violations(page, "member")

    # Correct the phone.
    page.fill("#edit-phone", "+7 912 345-67-00")
    page.locator("#edit-submit").click()
    page.wait_for_url(re.compile(r".*done=edit_done"))
    assert page.locator("#edit-phone").input_value() == "+79123456700"

    # Adjust +50 with a reason.
    page.fill("#points", "50")
    page.fill("#reason", REASONS[lang])
    page.locator("#adjust-submit").click()
    page.wait_for_url(re.compile(r".*done=adjust_done"))
    assert page.locator("#balance").inner_text() == "50"
    assert REASONS[lang] in page.locator("#history").inner_text()

    # The member's pass, downloaded from their card page's link, shows the new balance.
    card_link = page.locator("#card-link").get_attribute("href")
    card = context.new_page()
    card.goto(card_link)
    pass_url = card.locator("#add-apple").get_attribute("href")
    card.close()
    downloaded = downloaded_pass(page, pass_url)
    assert downloaded.fields(lang)["balance"]["value"] == 50

    # The audit log shows both changes, by whom and what.
    page.goto(f"{live.url}/console/settings/audit")
    no_violations(page, "audit log")
    log = page.locator("#audit").inner_text()
    assert "member.edit" in log and "member.adjust" in log
    assert "+7912*****00" in log and REASONS[lang] in log
    assert shop["owner"] in log
    context.close()


PAGES = (("overview", "/console/"), ("members", "/console/members"),
         ("member", "/console/members/{member}"), ("settings", "/console/settings"),
         ("keys", "/console/settings/keys"), ("users", "/console/settings/users"),
         ("audit", "/console/settings/audit"), ("health", "/console/settings/health"),
         ("webhooks", "/console/settings/webhooks"),
         ("till", "/console/till"),
         ("account", "/console/account"))


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_console_page_passes_axe_at_both_widths(browser: Any, live: Any, shop: Any,
                                                      lang: str) -> None:
    shop["api"].post(f"/members/{shop['member']['id']}/transactions",
                     {"type": "earn", "points": 120})
    for width, viewport in WIDTHS.items():
        context = browser.new_context(locale=LOCALES[lang], viewport=viewport)
        page = context.new_page()
        page.goto(f"{live.url}/console/sign-in")
        if page.locator("html").get_attribute("lang") != lang:
            page.locator(f".lang-switch button[value={lang}]").click()
            page.wait_for_load_state()
        no_violations(page, f"sign-in {width}")
        if lang == "en":
            page.screenshot(path=str(DOCS / f"console-sign-in-{width}.png"), full_page=True)
        console_sign_in(page, live, shop["owner"], lang=lang)
        for name, path in PAGES:
            page.goto(live.url + path.format(member=shop["member"]["id"]))
            assert page.locator("h1").count() == 1, name
            no_violations(page, f"{name} {width}")
            if lang == "en" and name in ("overview", "members", "member", "users", "audit",
                                         "health", "keys"):
                DOCS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(DOCS / f"console-{name}-{width}.png"), full_page=True)
        # The page a staff member meets where their role stops.
        context.close()
    staff_context = browser.new_context(locale=LOCALES[lang], viewport=WIDTHS["375"])
    page = staff_context.new_page()
    _, staff = make_user(live.app, shop["merchant_id"], "staff",
                         email=f"staff-{lang}{shop['merchant_id']}@zerno.test")
    console_sign_in(page, live, staff, lang=lang)
    response = page.goto(f"{live.url}/console/settings/keys")
    assert response.status == 403
    no_violations(page, "403")
    assert page.locator(".main-nav a[href='/console/settings']").count() == 0
    staff_context.close()


def test_keyboard_reaches_the_search_through_the_skip_link(browser: Any, live: Any,
                                                           shop: Any) -> None:
    context = browser.new_context(locale="en-US", viewport=WIDTHS["1280"])
    page = context.new_page()
    console_sign_in(page, live, shop["manager"], lang="en")
    page.goto(f"{live.url}/console/members")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    context.close()
