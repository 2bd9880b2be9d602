"""The customer's journey in a real browser: poster link → sign-up form → a mistake shown next
to its field → card page → the Apple pass (signature checked) and the Google button."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import browser_support
import pytest
from conftest import Api
from conftest import make_merchant
from sqlalchemy import select

from wallet_service import i18n
from wallet_service.google import NullWalletObjects
from wallet_service.google import object_id
from wallet_service.models import Member
from wallet_service.ratelimit import RateLimiter
from wallet_service.services.google import GoogleWallet

# The fixtures of ``browser_support`` (not a conftest.py: ``conftest`` is the suite's own).
browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
ANDROID_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Mobile Safari/537.36")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
LOCALES = {"ru": "ru-RU", "en": "en-US"}


FAKE_ISSUER = "3388000000012345678"


class FakeGoogle(NullWalletObjects):
    """Google's API as far as a save link needs it: objects are accepted, links are fake."""

    def save_url(self, object_ids: Any, origins: Any, *, now: Any = None) -> str:
        return f"https://pay.google.com/gp/v/save/test-{object_ids[0]}"


@pytest.fixture
def shop(live: Any) -> dict[str, Any]:
    """A merchant's program with a questionnaire, created through the live app's API."""
    live.app.extensions["wallet"].limiters.join = RateLimiter(100)
    live.app.extensions["wallet"].limiters.pages = RateLimiter(1000)
    merchant_id, key = make_merchant(live.app, "Zerno")
    api = Api(live.app.test_client(), key, merchant_id)
    program = api.program(
        name="Кофейня «Зерно»",
        design={"background_color": "#3c2a21", "foreground_color": "#ffffff",
                "label_color": "#e5c07b", "logo_text": "Зерно",
                "description": "Бонусная карта кофейни «Зерно»",
                "rules_text": "1 балл = 1 ₽ при оплате.",
                "contact": {"phone": "+7 495 000-00-00", "website": "https://example.com"}},
        tiers=[{"name": "Bronze", "threshold": 0}, {"name": "Silver", "threshold": 500,
                                                     "multiplier": "1.25"},
               {"name": "Gold", "threshold": 1500, "multiplier": "1.5"}],
        enrollment={"questions": [
            {"key": "drink", "type": "choice", "required": True,
             "label": {"ru": "Любимый напиток", "en": "Favourite drink"},
             "options": ["Эспрессо", "Капучино", "Чай"]},
        ]},
    )
    return {"api": api, "program": program}


def _screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    target = (DOCS if os.environ.get("WALLET_UPDATE_SCREENSHOTS") else tmp_path) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


def _verify_pass(pkpass: Path, certs: Path, tmp_path: Path) -> None:
    out = tmp_path / "pass"
    with zipfile.ZipFile(pkpass) as z:
        assert {"pass.json", "manifest.json", "signature"} <= set(z.namelist())
        z.extractall(out)
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(out / "signature"),
         "-content", str(out / "manifest.json"), "-CAfile", str(certs / "wwdr.pem"),
         "-purpose", "any", "-out", os.devnull],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_join_then_add_to_apple_wallet(browser, live, shop, lang, tmp_path):
    t = lambda key, **kw: i18n.t(lang, key, **kw)  # noqa: E731
    context = browser.new_context(viewport=PHONE, locale=LOCALES[lang], user_agent=IPHONE_UA,
                                  device_scale_factor=2, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(shop["program"]["join_url"])
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("h1").inner_text() == t("join_heading")
        assert page.get_by_text("Зерно", exact=True).is_visible()
        _screenshot(page, f"join-{lang}.png", tmp_path)

        # A mistake: a phone number that cannot exist.
        page.get_by_label(t("field_name")).fill("Анна" if lang == "ru" else "Anna")
        page.get_by_label(t("field_phone")).fill("12345")
        page.get_by_label("Капучино").check()
        page.locator("input[name=consent]").check()
        page.get_by_role("button", name=t("submit")).click()

        field = page.locator("#field-phone")
        assert field.locator(".error").inner_text() == t("error_phone")
        assert page.get_by_label(t("field_phone")).get_attribute("aria-invalid") == "true"
        phone_box = page.get_by_label(t("field_phone")).bounding_box()
        error_box = field.locator(".error").bounding_box()
        assert 0 <= error_box["y"] - (phone_box["y"] + phone_box["height"]) < 40
        # What was typed is still there.
        assert page.get_by_label(t("field_name")).input_value() in ("Анна", "Anna")
        assert page.get_by_label("Капучино").is_checked()
        assert page.locator("input[name=consent]").is_checked()

        page.get_by_label(t("field_phone")).fill("+7 912 345-67-89")
        page.get_by_role("button", name=t("submit")).click()
        page.wait_for_url(f"{live.url}/c/*")

        with live.app.extensions["wallet"].sessions() as s:
            member = s.scalar(select(Member).where(Member.merchant_id == shop["api"].merchant_id))
            assert member.phone == "+79123456789" and member.source == "join_page"
            assert member.consent_text == shop["program"]["enrollment"]["consent_text"][lang]
            assert member.consent_at is not None
            assert member.answers == {"drink": "Капучино"}
            member_id = member.id

        apple = page.locator("#add-apple")
        assert apple.inner_text() == t("add_apple")
        assert page.locator("#add-google").count() == 0
        assert page.locator("#card-number").inner_text().replace(" ", "").isdigit()
        assert page.locator(".qr-box svg").count() == 1

        # Some history, so the screenshot shows a balance and the way to the next tier.
        r = shop["api"].post(f"/members/{member_id}/transactions", {"type": "earn", "points": 620})
        assert r.status_code == 201
        page.reload()
        assert page.locator("#tier").inner_text() == "Silver"
        assert "Gold" in page.locator("#progress").inner_text()
        _screenshot(page, f"card-{lang}.png", tmp_path)

        with page.expect_download() as download:
            page.locator("#add-apple").click()
        pkpass = tmp_path / "card.pkpass"
        download.value.save_as(pkpass)
        _verify_pass(pkpass, live.app.extensions["wallet"].settings.instance_path / "certs",
                     tmp_path)
    finally:
        context.close()


def test_google_button_when_google_is_configured(browser, live, shop):
    member = shop["api"].member(shop["program"]["id"], answers={"drink": "Чай"})
    state = live.app.extensions["wallet"]
    off = state.google
    # Google's mapping wants https links, which the live server (http) is not.
    state.google = GoogleWallet(FAKE_ISSUER, "https://wallet.example.test", FakeGoogle())
    try:
        for user_agent, first in ((ANDROID_UA, "add-google"), (IPHONE_UA, "add-apple")):
            context = browser.new_context(viewport=PHONE, locale="ru-RU", user_agent=user_agent)
            page = context.new_page()
            try:
                page.goto(member["card_url"].replace("https://wallet.example.test", live.url))
                google = page.locator("#add-google")
                assert google.inner_text() == i18n.t("ru", "add_google")
                # The service's own link, which sends the phone on to Google's when tapped.
                link = google.get_attribute("href")
                assert link == member["card_url"] + "/google"
                tapped = page.request.get(link.replace("https://wallet.example.test", live.url),
                                          max_redirects=0)
                assert tapped.status == 303
                assert tapped.headers["location"] == (
                    "https://pay.google.com/gp/v/save/test-"
                    + object_id(FAKE_ISSUER, member["card_number"]))
                assert page.locator(".wallet-buttons a").first.get_attribute("id") == first
            finally:
                context.close()
    finally:
        state.google = off


def test_language_switch_is_remembered(browser, live, shop):
    context = browser.new_context(viewport=PHONE, locale="ru-RU")
    page = context.new_page()
    try:
        page.goto(shop["program"]["join_url"])
        assert page.locator("h1").inner_text() == i18n.t("ru", "join_heading")
        page.get_by_role("link", name="English").click()
        assert page.locator("h1").inner_text() == i18n.t("en", "join_heading")
        assert page.get_by_text("Favourite drink").is_visible()
        page.goto(shop["program"]["join_url"])
        assert page.locator("h1").inner_text() == i18n.t("en", "join_heading")
        page.get_by_role("link", name="Русский").click()
        assert page.locator("html").get_attribute("lang") == "ru"
    finally:
        context.close()


def test_missing_browser_skips_locally_but_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        browser_support._unavailable("no Chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        browser_support._unavailable("no Chromium")
