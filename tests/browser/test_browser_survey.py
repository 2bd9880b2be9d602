"""The NPS survey in a real browser: from the card page's link, a score chosen with the
keyboard, a comment, the thanks and the bonus, in Russian and in English; no serious
accessibility violations (axe-core)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import browser_support
import pytest
from conftest import Api
from conftest import make_merchant

from wallet_service import i18n
from wallet_service.ratelimit import RateLimiter

browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
LOCALES = {"ru": "ru-RU", "en": "en-US"}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_member_answers_the_survey_from_the_card_page(browser, live, lang, tmp_path):
    t = lambda key, **kw: i18n.t(lang, key, **kw)  # noqa: E731
    live.app.extensions["wallet"].limiters.join = RateLimiter(100)
    live.app.extensions["wallet"].limiters.pages = RateLimiter(1000)
    merchant_id, key = make_merchant(live.app, "Zerno")
    api = Api(live.app.test_client(), key, merchant_id)
    program = api.program(name="Зерно", languages=["ru", "en"])
    r = api.client.put(f"/api/v1/programs/{program['id']}/survey",
                       json={"enabled": True, "bonus": 30},
                       headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.json
    member = api.member(program["id"])

    context = browser.new_context(viewport=PHONE, locale=LOCALES[lang])
    page = context.new_page()
    try:
        page.goto(member["card_url"])
        page.get_by_role("link", name=t("survey_link")).click()
        page.wait_for_url("**/survey")
        assert page.locator("html").get_attribute("lang") == lang
        assert page.get_by_role("group", name=t("survey_question")).is_visible()
        assert axe_clean(page)

        # The keyboard alone: onto the scale, arrows to 9, then to the comment.
        page.get_by_label("0", exact=True).focus()
        for _ in range(9):
            page.keyboard.press("ArrowRight")
        assert page.get_by_label("9", exact=True).is_checked()
        page.keyboard.press("Tab")
        comment = page.get_by_label(t("survey_comment"))
        assert comment.evaluate("el => el === document.activeElement")
        page.keyboard.type("Вкусно" if lang == "ru" else "Tasty")
        _screenshot(page, f"survey-{lang}.png", tmp_path)
        page.get_by_role("button", name=t("survey_submit")).click()

        assert page.get_by_role("heading", name=t("survey_thanks_title")).is_visible()
        assert t("survey_bonus_credited", bonus=i18n.plural(lang, "point", 30)) in (
            page.locator("#survey-bonus").inner_text())
    finally:
        context.close()
    answers = api.get("/nps/answers").json["items"]
    assert [(a["score"], a["comment"], a["language"]) for a in answers] == [
        (9, "Вкусно" if lang == "ru" else "Tasty", lang)]
    assert api.get(f"/members/{member['id']}").json["balance"] == 30


def axe_clean(page: Any) -> bool:
    violations = browser_support.axe_violations(page)
    assert violations == [], violations
    return True


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    target = (DOCS if os.environ.get("WALLET_UPDATE_SCREENSHOTS") else tmp_path) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_console_nps_and_campaign_effect_pages_are_accessible(browser, live, lang):
    from browser_support import console_sign_in
    from console_support import make_user

    merchant_id, key = make_merchant(live.app, "Zerno")
    api = Api(live.app.test_client(), key, merchant_id)
    program = api.program(name="Зерно")
    for i in range(3):
        api.member(program["id"], phone=f"+7 912 777-00-{i:02d}", marketing_consent=True)
    campaign = api.post(f"/programs/{program['id']}/campaigns",
                        {"text": "Новое меню", "holdout_percent": 34}).json
    _, owner = make_user(live.app, merchant_id, "owner", email=f"nps{merchant_id}@zerno.test")
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  locale=LOCALES[lang])
    page = context.new_page()
    try:
        console_sign_in(page, live, owner, lang=lang)
        page.goto(f"{live.url}/console/nps")
        assert page.locator("#nps-months tbody tr").count() == 12
        assert axe_clean(page)
        page.goto(f"{live.url}/console/campaigns")
        page.locator("#campaigns tbody a").first.click()
        page.wait_for_url(f"**/console/campaigns/{campaign['id']}")
        assert page.locator("#campaign-effect").is_visible()
        assert axe_clean(page)
    finally:
        context.close()
