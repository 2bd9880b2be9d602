"""The programme section and messages in a real browser (Debian's Chromium through Playwright),
in Russian and in English: sign in → the wizard creates a stamps programme → change the colour
and see the preview change → upload a logo → download the poster (timed from the first
sign-in: under a minute) → enroll a member from the console → add a stamp on the member page
→ that member's downloaded pass shows 1 / 6 → send a campaign to a segment and see its reach
and how many phones it wakes. axe-core checks every page; screenshots at 1280 px and 375 px go
to docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import browser_support
import pytest
from apple_device import Device
from browser_support import axe_violations
from browser_support import console_sign_in
from conftest import Api
from conftest import make_merchant
from console_support import make_user
from playwright.sync_api import expect
from sqlalchemy import select
from wallet_pass import DownloadedPass

from wallet_service.apple import decode_strings
from wallet_service.models import LoyaltyCard
from wallet_service.ratelimit import RateLimiter

browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCALES = {"ru": "ru-RU", "en": "en-US"}
WIDTHS = {"1280": {"width": 1280, "height": 900}, "375": {"width": 375, "height": 812}}
NAMES = {"ru": "Кофейня «Зерно»", "en": "Bean There"}
#: From the first sign-in to the poster in hand (product brief: "a card in one minute").
ONE_MINUTE = 60.0


def no_violations(page: Any, where: str) -> None:
    found = axe_violations(page)
    assert found == [], f"{where}: {found}"


def downloaded_pass(page: Any, url: str) -> DownloadedPass:
    """The pass behind ``url``, fetched by the browser and read as a phone reads it."""
    response = page.request.get(url)
    assert response.status == 200, response.status
    with zipfile.ZipFile(io.BytesIO(response.body())) as archive:
        strings = {name.split(".lproj/")[0]: decode_strings(archive.read(name))
                   for name in archive.namelist() if name.endswith(".lproj/pass.strings")}
        return DownloadedPass(json.loads(archive.read("pass.json")), strings)


def logo_file(tmp_path: Path) -> Path:
    from PIL import Image
    path = tmp_path / "logo.png"
    Image.new("RGBA", (480, 150), (230, 180, 40, 255)).save(path, "PNG")
    return path


@pytest.fixture
def newcomer(live: Any) -> dict[str, Any]:
    """A merchant with no programme yet and its owner."""
    live.app.extensions["wallet"].limiters.sign_in = RateLimiter(1000)
    merchant_id, key = make_merchant(live.app, "Zerno")
    api = Api(live.app.test_client(), key, merchant_id)
    _, owner = make_user(live.app, merchant_id, "owner", email=f"owner{merchant_id}@zerno.test")
    return {"api": api, "owner": owner, "merchant_id": merchant_id}


def birthday_members(live: Any, api: Any, program_id: int, month: int) -> None:
    """Two customers born in ``month`` who accept marketing, one with the card on an iPhone,
    and one who does not accept it."""
    made = [api.member(program_id, name=f"Birthday {i}", phone=f"+7 912 700-00-0{i}",
                       birthday=f"1990-{month:02d}-1{i}", marketing_consent=i < 2)
            for i in range(3)]
    with live.app.extensions["wallet"].sessions() as s:
        card = s.scalars(select(LoyaltyCard).where(
            LoyaltyCard.member_id == made[0]["id"])).one()
        serial, token = card.serial_number, card.authentication_token
    phone = Device(live.app.test_client(), f"lib-{program_id}", f"push-{program_id}")
    assert phone.register(serial, token).status_code == 201


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_from_sign_in_to_a_poster_a_stamp_and_a_campaign(browser: Any, live: Any,
                                                          newcomer: Any, lang: str,
                                                          tmp_path: Path) -> None:
    context = browser.new_context(locale=LOCALES[lang], viewport=WIDTHS["1280"],
                                  accept_downloads=True)
    page = context.new_page()
    started = time.monotonic()
    console_sign_in(page, live, newcomer["owner"], lang=lang)

    # The wizard: name, kind, colours.
    page.locator(".main-nav a[href='/console/programme']").click()
    page.wait_for_url("**/console/programme")
    no_violations(page, "wizard")
    page.fill("#name", NAMES[lang])
    page.locator("input[name=kind][value=stamps]").check()
    page.fill("#background_color", "#3c2a21")
    page.locator("#wizard-submit").click()
    page.wait_for_url(re.compile(r".*/console/programme/\d+\?created=1"))
    program_id = int(re.search(r"/programme/(\d+)", page.url).group(1))
    expect(page.locator("#created-notice")).to_be_visible()
    no_violations(page, "programme")

    # The designer: a new colour shows in the preview as it is typed.
    page.goto(f"{live.url}/console/programme/{program_id}/design")
    front = page.locator("#apple-front")
    expect(front).to_have_attribute("data-bg", "rgb(60, 42, 33)")
    no_violations(page, "designer")
    page.fill("#background_color", "#aa0000")
    expect(front).to_have_attribute("data-bg", "rgb(170, 0, 0)")
    # The logo: uploaded, then in the preview.
    page.set_input_files("#image-logo", str(logo_file(tmp_path)))
    page.locator("#upload-logo").click()
    page.wait_for_url(re.compile(r".*done=image_saved"))
    expect(page.locator("#apple-front img.pass-logo")).to_have_count(1)
    page.fill("#background_color", "#aa0000")
    page.locator("#design-save").click()
    expect(page.locator("#impact-notify")).to_be_visible()
    no_violations(page, "design confirmation")
    page.locator("#design-confirm").click()
    page.wait_for_url(re.compile(r".*done=design_saved"))

    # The poster.
    page.goto(f"{live.url}/console/programme/{program_id}")
    with page.expect_download() as info:
        page.locator("#poster-a4").click()
    poster = Path(info.value.path()).read_text(encoding="utf-8")
    elapsed = time.monotonic() - started
    assert "/join/" in poster
    print(f"first sign-in to poster ({lang}): {elapsed:.1f} s")
    assert elapsed < ONE_MINUTE, elapsed

    # Enroll a customer at the counter, then a stamp on the member page.
    page.fill("#member_name", "Вера Иванова" if lang == "ru" else "Vera Evans")
    page.fill("#member_phone", "+7 912 555-44-33")
    page.locator("input[name=member_marketing]").check()
    page.locator("#enroll-submit").click()
    page.wait_for_url(re.compile(r".*/console/members/\d+$"))
    no_violations(page, "member")
    page.locator("#stamp-submit").click()
    page.wait_for_url(re.compile(r".*done=adjust_done"))
    card_link = page.locator("#card-link").get_attribute("href")
    card = context.new_page()
    card.goto(card_link)
    pass_url = card.locator("#add-apple").get_attribute("href")
    card.close()
    assert downloaded_pass(page, pass_url).fields(lang)["stamps"]["value"] == "1 / 6"

    # A campaign to a segment: reach, and phones woken against cards updated silently.
    month = (dt.date.today().month % 12) + 1
    birthday_members(live, newcomer["api"], program_id, month)
    page.locator(".main-nav a[href='/console/messages']").click()
    page.wait_for_url("**/console/messages")
    page.locator("#audience-segment").check()
    page.fill("#birthday_month", str(month))
    expect(page.locator("#reach-members")).to_have_text("3")
    expect(page.locator("#reach-consenting")).to_have_text("2")
    expect(page.locator("#reach-notified")).to_have_text("1")
    expect(page.locator("#reach-silent")).to_have_text("1")
    no_violations(page, "messages")
    page.fill(f"#text_{lang}", "С днём рождения!" if lang == "ru" else "Happy birthday!")
    page.locator("#messages-submit").click()
    page.wait_for_url(re.compile(r".*done=messages_sent"))
    history = page.locator("#history tbody tr").first.inner_text()
    assert "2" in history
    no_violations(page, "messages sent")
    context.close()


PAGES = (("programme", "/console/programme/{program}"),
         ("design", "/console/programme/{program}/design"),
         ("settings-stamps", "/console/programme/{program}/settings/stamps"),
         ("settings-tiers", "/console/programme/{program}/settings/tiers"),
         ("settings-bonuses", "/console/programme/{program}/settings/bonuses"),
         ("settings-signup", "/console/programme/{program}/settings/signup"),
         ("settings-earning", "/console/programme/{program}/settings/earning"),
         ("settings-cashback", "/console/programme/{program}/settings/cashback"),
         ("settings-exclusions", "/console/programme/{program}/settings/exclusions"),
         ("settings-expiry", "/console/programme/{program}/settings/expiry"),
         ("rewards", "/console/programme/{program}/rewards"),
         ("coupons", "/console/programme/{program}/coupons"),
         ("locations", "/console/programme/locations"),
         ("programmes", "/console/programme"),
         ("wizard", "/console/programme/new"),
         ("messages", "/console/messages"))
SHOTS = ("wizard", "programme", "design", "settings-stamps", "messages")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_programme_page_passes_axe_at_both_widths(browser: Any, live: Any,
                                                        newcomer: Any, lang: str) -> None:
    api = newcomer["api"]
    program = api.program(name=NAMES[lang], kind="stamps", languages=[lang])
    api.member(program["id"], name="Anna", marketing_consent=True)
    assert api.post(f"/programs/{program['id']}/coupons",
                    {"title": "-20%", "description": "20% off"}).status_code == 201
    for width, viewport in WIDTHS.items():
        context = browser.new_context(locale=LOCALES[lang], viewport=viewport)
        page = context.new_page()
        console_sign_in(page, live, newcomer["owner"], lang=lang)
        for name, path in PAGES:
            page.goto(live.url + path.format(program=program["id"]))
            assert page.locator("h1").count() == 1, name
            no_violations(page, f"{name} {width}")
            if lang == "en" and name in SHOTS:
                DOCS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(DOCS / f"console-{name}-{width}.png"),
                                full_page=True)
        context.close()


def test_the_sample_card_page_opens_without_signing_in(browser: Any, live: Any,
                                                       newcomer: Any) -> None:
    program = newcomer["api"].program(name="Bean There", kind="points")
    context = browser.new_context(locale="en-US", viewport=WIDTHS["375"])
    page = context.new_page()
    console_sign_in(page, live, newcomer["owner"], lang="en")
    page.goto(f"{live.url}/console/programme/{program['id']}/design")
    sample = page.locator("#sample-heading ~ p a[href*='/console/sample/']").get_attribute("href")
    phone = browser.new_context(locale="en-US", viewport=WIDTHS["375"]).new_page()
    phone.goto(sample.replace(sample.split("/console/")[0], live.url))
    expect(phone.locator("#apple-front")).to_be_visible()
    no_violations(phone, "sample card")
    context.close()

