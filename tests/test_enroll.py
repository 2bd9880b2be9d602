"""The sign-up page (``/join/<token>``) and the card page (``/c/<token>``), through the Flask
test client: form fields and their errors, CSRF, rate limits, languages, and privacy."""

from __future__ import annotations

import dataclasses
import html as html_lib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func
from sqlalchemy import select

from wallet_service import i18n
from wallet_service.google import NullWalletObjects
from wallet_service.google import object_id
from wallet_service.models import Member
from wallet_service.ratelimit import RateLimiter
from wallet_service.schemas import DEFAULT_CONSENT
from wallet_service.services.google import GoogleWallet

FAKE_ISSUER = "3388000000012345678"

TEMPLATES = Path(__file__).resolve().parents[1] / "wallet_service" / "templates" / "enroll"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0 Mobile Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"

QUESTIONS = [
    {"key": "nickname", "type": "text", "required": True,
     "label": {"ru": "Как к вам обращаться", "en": "What should we call you"}},
    {"key": "milk", "type": "choice", "options": ["Обычное", "Овсяное", "Без молока"],
     "label": {"ru": "Молоко", "en": "Milk"}},
    {"key": "drink", "type": "choice", "required": True,
     "options": ["Espresso", "Latte", "Flat white", "Tea", "Cocoa"],
     "label": {"ru": "Любимый напиток", "en": "Favourite drink"}},
    {"key": "anniversary", "type": "date", "label": {"ru": "Годовщина", "en": "Anniversary"}},
    {"key": "news", "type": "yesno", "required": True,
     "label": {"ru": "Присылать новости?", "en": "Send news?"}},
]


@pytest.fixture(autouse=True)
def _fresh_limits(app):
    """Each test starts with empty rate-limit buckets (the app lives for the whole run)."""
    state = app.extensions["wallet"]
    saved = dataclasses.replace(state.limiters), state.google
    state.limiters.join = RateLimiter(1000)
    state.limiters.pages = RateLimiter(1000)
    yield
    state.limiters, state.google = saved


def path_of(url: str) -> str:
    return url.removeprefix("https://wallet.example.test")


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def field_block(page: str, name: str) -> str:
    """The HTML of one form field, from its container to the next field or the button."""
    match = re.search(rf'id="field-{name}".*?(?=id="field-|<button)', page, re.S)
    assert match, f"no field {name}"
    return match.group(0)


def error_of(page: str, name: str) -> str | None:
    match = re.search(r'class="error" id="err-[^"]+">([^<]*)<', field_block(page, name))
    return html_lib.unescape(match.group(1)) if match else None


def text_of(page: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


class Joiner:
    """A visitor on a program's sign-up page."""

    def __init__(self, client: Any, program: dict[str, Any], lang: str | None = None) -> None:
        self.client = client
        self.path = path_of(program["join_url"])
        self.headers = {"Accept-Language": lang} if lang else {}

    def open(self, **kw: Any) -> Any:
        return self.client.get(self.path, headers=self.headers, **kw)

    def submit(self, fields: dict[str, Any] | None = None, *, lang: str | None = None,
               csrf: str | None = None) -> Any:
        page = self.open().get_data(as_text=True)
        form = {"csrf_token": csrf if csrf is not None else csrf_of(page),
                "lang": lang or re.search(r'<html lang="(\w+)"', page).group(1),
                "name": "Anna", "phone": "+7 912 345-67-89", "consent": "yes", **(fields or {})}
        return self.client.post(self.path, data={k: v for k, v in form.items() if v is not None},
                                headers=self.headers)


def members(app) -> list[Member]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(Member).order_by(Member.id)))


# --- the join page ----------------------------------------------------------------------


def test_join_page_shows_the_program_and_its_form(api, client):
    program = api.program(name="Кофейня «Зерно»", design={
        "background_color": "#3c2a21", "foreground_color": "#ffffff", "label_color": "#e5c07b",
        "logo_text": "Зерно", "description": "Бонусная карта кофейни"})
    r = client.get(path_of(program["join_url"]))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert '<html lang="ru">' in page
    assert "--brand-bg:#3c2a21" in page and "--brand-fg:#ffffff" in page
    assert "Зерно" in page and "Бонусная карта кофейни" in page
    assert html_lib.escape(DEFAULT_CONSENT["ru"], quote=False) in page
    assert i18n.t("ru", "earning", points="10\u00a0баллов", amount="100\u00a0₽") in page
    for name in ("name", "phone", "email", "birthday", "consent"):
        assert f'name="{name}"' in page
    assert 'type="tel"' in page and 'autocomplete="tel"' in page
    assert '<label for="f-phone">' in page  # every input has a label
    assert 'href="/static/wallet.css"' in page and "http://" not in page.split("</head>")[0]
    assert r.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Referrer-Policy"] == "no-referrer"
    with client.get("/static/wallet.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"


def test_unknown_join_link_is_a_friendly_404(client):
    r = client.get("/join/no-such-program", headers={"Accept-Language": "en"})
    assert r.status_code == 404
    assert i18n.t("en", "not_found_title") in r.get_data(as_text=True)


def test_join_creates_the_member_and_sends_them_to_their_card(app, api, client):
    program = api.program(enrollment={"consent_text": {"ru": "Согласен с правилами «Зерна».",
                                                       "en": "I accept the rules."}})
    r = Joiner(client, program).submit({"phone": "8 (912) 345-67-89",
                                        "email": "anna@example.com", "birthday": "1990-05-17"})
    assert r.status_code == 303
    [member] = members(app)
    with app.extensions["wallet"].sessions() as s:
        card = s.get(Member, member.id).card
        assert r.headers["Location"] == f"https://wallet.example.test/c/{card.download_token}"
    assert member.phone == "+79123456789"
    assert member.email == "anna@example.com" and str(member.birthday) == "1990-05-17"
    assert member.consent_text == "Согласен с правилами «Зерна»."
    assert member.consent_at is not None
    assert member.source == "join_page"
    got = api.get(f"/members/{member.id}").json
    assert got["consent"]["text"] == "Согласен с правилами «Зерна»."


def test_marketing_consent_is_a_separate_unticked_optional_checkbox(app, api, client):
    program = api.program()
    joiner = Joiner(client, program, lang="en")
    page = joiner.open().get_data(as_text=True)
    box = field_block(page, "marketing_consent")
    assert 'name="marketing_consent"' in box and "checked" not in box and "required" not in box
    assert html_lib.escape(i18n.t("en", "marketing_consent"), quote=False) in box
    assert 'name="marketing_consent"' not in field_block(page, "consent")
    assert joiner.submit({"phone": "+7 912 000-00-31"}).status_code == 303
    assert joiner.submit({"phone": "+7 912 000-00-32", "marketing_consent": "yes"},
                         lang="ru").status_code == 303
    # Ticked without the consent to processing, the form is refused and keeps the tick.
    r = joiner.submit({"phone": "+7 912 000-00-33", "consent": None, "marketing_consent": "yes"})
    assert r.status_code == 422
    assert "checked" in field_block(r.get_data(as_text=True), "marketing_consent")
    plain, ticked = members(app)
    assert (plain.marketing_consent, plain.marketing_consent_text) == (False, None)
    assert ticked.marketing_consent is True and ticked.marketing_consent_at is not None
    assert ticked.marketing_consent_text == i18n.t("ru", "marketing_consent")  # as shown


def test_the_program_may_word_the_marketing_consent(app, api, client):
    program = api.program(enrollment={"marketing_consent_text": {
        "ru": "Хочу знать о новинках «Зерна».", "en": "Tell me what is new at Zerno."}})
    joiner = Joiner(client, program, lang="en")
    page = joiner.open().get_data(as_text=True)
    assert "Tell me what is new at Zerno." in field_block(page, "marketing_consent")
    assert joiner.submit({"marketing_consent": "yes"}).status_code == 303
    [member] = members(app)
    assert member.marketing_consent_text == "Tell me what is new at Zerno."


def test_errors_are_shown_next_to_each_field_and_the_form_keeps_the_values(app, api, client):
    program = api.program()
    joiner = Joiner(client, program, "en")
    r = joiner.submit({"name": "", "phone": "12345", "email": "anna@", "birthday": "2999-01-01",
                       "consent": None})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert error_of(page, "name") == i18n.t("en", "error_required")
    assert error_of(page, "phone") == i18n.t("en", "error_phone")
    assert error_of(page, "email") == i18n.t("en", "error_email")
    assert error_of(page, "birthday") == i18n.t("en", "error_birthday")
    assert error_of(page, "consent") == i18n.t("en", "error_consent")
    assert 'value="12345"' in field_block(page, "phone")
    assert 'value="anna@"' in field_block(page, "email")
    assert 'aria-invalid="true"' in field_block(page, "phone")
    assert 'aria-describedby="hint-phone err-phone"' in field_block(page, "phone")
    assert i18n.t("en", "errors_summary") in page
    r = joiner.submit({"birthday": "17.05.1990", "name": "x" * 201})
    page = r.get_data(as_text=True)
    assert error_of(page, "birthday") == i18n.t("en", "error_date")
    assert error_of(page, "name") == i18n.t("en", "error_too_long", limit=200)
    assert error_of(page, "phone") is None
    assert members(app) == []


def test_typed_values_are_escaped(api, client):
    program = api.program()
    r = Joiner(client, program).submit({"name": '"><script>alert(1)</script>', "phone": "1"})
    page = r.get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&#34;&gt;&lt;script&gt;" in page or "&quot;&gt;&lt;script&gt;" in page


def test_questionnaire_fields_of_every_type(app, api, client):
    program = api.program(enrollment={"questions": QUESTIONS})
    joiner = Joiner(client, program)
    page = joiner.open().get_data(as_text=True)
    assert "Как к вам обращаться" in page
    assert 'type="radio" name="q_milk" value="Овсяное"' in page      # few options: radios
    assert '<select id="f-q_drink" name="q_drink" required' in page  # many options: a list
    assert 'type="date" value=""' in field_block(page, "q_anniversary")
    assert 'name="q_news" value="yes"' in page and 'name="q_news" value="no"' in page
    assert "(необязательно)" in field_block(page, "q_milk")
    assert "(необязательно)" not in field_block(page, "q_drink")

    # Required questions left empty; optional ones may stay empty.
    page = joiner.submit().get_data(as_text=True)
    assert error_of(page, "q_nickname") == i18n.t("ru", "error_required")
    assert error_of(page, "q_drink") == i18n.t("ru", "error_choose")
    assert error_of(page, "q_news") == i18n.t("ru", "error_choose")
    assert error_of(page, "q_milk") is None and error_of(page, "q_anniversary") is None

    # Wrong values.
    r = joiner.submit({"q_nickname": "x" * 501, "q_milk": "Сгущённое", "q_drink": "Beer",
                       "q_anniversary": "2024-02-31", "q_news": "maybe"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert error_of(page, "q_nickname") == i18n.t("ru", "error_too_long", limit=500)
    assert error_of(page, "q_milk") == i18n.t("ru", "error_choose")
    assert error_of(page, "q_drink") == i18n.t("ru", "error_choose")
    assert error_of(page, "q_anniversary") == i18n.t("ru", "error_date")
    assert error_of(page, "q_news") == i18n.t("ru", "error_choose")
    assert 'value="2024-02-31"' in field_block(page, "q_anniversary")
    assert members(app) == []

    # Good values, optional ones skipped, then all given.
    r = joiner.submit({"q_nickname": " Аня ", "q_drink": "Flat white", "q_news": "no"})
    assert r.status_code == 303
    r = joiner.submit({"phone": "+7 912 345-67-80", "q_nickname": "Боря", "q_milk": "Овсяное",
                       "q_drink": "Tea", "q_anniversary": "2020-06-01", "q_news": "yes"})
    assert r.status_code == 303
    first, second = members(app)
    assert first.answers == {"nickname": "Аня", "drink": "Flat white", "news": False}
    assert second.answers == {"nickname": "Боря", "milk": "Овсяное", "drink": "Tea",
                              "anniversary": "2020-06-01", "news": True}


def test_a_choice_keeps_the_picked_option_after_an_error(api, client):
    program = api.program(enrollment={"questions": QUESTIONS})
    r = Joiner(client, program).submit(
        {"phone": "1", "q_milk": "Овсяное", "q_drink": "Tea", "q_news": "no"})
    page = r.get_data(as_text=True)
    assert 'value="Овсяное" checked' in page
    assert "<option selected>Tea</option>" in page
    assert 'name="q_news" value="no" checked' in page


def test_an_enrolled_phone_never_gets_the_existing_card(app, api, client):
    program = api.program()
    existing = api.member(program["id"], name="Vera Secret")
    r = Joiner(client, program, "en").submit({"name": "Mallory", "phone": "+79123456789"})
    assert r.status_code == 409
    page = r.get_data(as_text=True)
    assert i18n.t("en", "enrolled_till") in text_of(page)
    for secret in ("Vera", existing["card_number"], existing["card_url"], "/c/", "/passes/",
                   existing["apple_pass_url"].rsplit("/", 1)[1]):
        assert secret not in page
    assert "Location" not in r.headers
    assert [m.name for m in members(app)] == ["Vera Secret"]


def test_a_post_without_the_csrf_token_is_refused(app, api, client):
    program = api.program()
    joiner = Joiner(client, program, "en")
    for csrf in ("", "forged-token"):
        r = joiner.submit({"name": "Anna Forged"}, csrf=csrf)
        assert r.status_code == 400
        page = r.get_data(as_text=True)
        assert i18n.t("en", "error_expired") in page
        assert 'value="Anna Forged"' in page  # nothing typed is lost
    # Another browser (no session cookie) cannot post with a token it copied.
    token = csrf_of(joiner.open().get_data(as_text=True))
    stranger = app.test_client()
    r = stranger.post(joiner.path, data={"csrf_token": token, "name": "A", "lang": "en",
                                         "phone": "+79123456789", "consent": "yes"})
    assert r.status_code == 400
    assert members(app) == []
    assert joiner.submit().status_code == 303


def test_sign_ups_are_rate_limited_per_address(app, api, client):
    program = api.program()
    app.extensions["wallet"].limiters.join = RateLimiter(2)
    joiner = Joiner(client, program, "en")
    assert joiner.submit({"phone": "1"}).status_code == 422
    assert joiner.submit({"phone": "1"}).status_code == 422
    r = joiner.submit({"phone": "+79123456789"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert i18n.t("en", "too_many_title") in r.get_data(as_text=True)
    assert members(app) == []
    other = client.post(joiner.path, data={}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 400  # another address has its own budget (and no token)


def test_pages_are_rate_limited_per_address(app, api, client):
    program = api.program()
    member = api.member(program["id"])
    app.extensions["wallet"].limiters.pages = RateLimiter(2)
    assert client.get(path_of(member["card_url"])).status_code == 200
    assert client.get(path_of(program["join_url"])).status_code == 200
    assert client.get(path_of(member["card_url"])).status_code == 429
    assert client.get(path_of(program["join_url"])).status_code == 429


def test_language_from_the_browser_the_page_switch_and_the_cookie(app, api, client):
    program = api.program(enrollment={"questions": QUESTIONS[:1]})
    path = path_of(program["join_url"])
    assert '<html lang="ru">' in client.get(path).get_data(as_text=True)
    page = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9,ru;q=0.5"}).get_data(
        as_text=True)
    assert '<html lang="en">' in page and "What should we call you" in page
    assert 'href="?lang=ru"' in page and "Русский" in page
    assert html_lib.escape(DEFAULT_CONSENT["en"], quote=False) in page
    assert '<html lang="ru">' in client.get(
        path, headers={"Accept-Language": "de-DE,ru;q=0.8"}).get_data(as_text=True)

    r = client.get(path + "?lang=en")
    assert '<html lang="en">' in r.get_data(as_text=True)
    assert "lang=en" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
    assert '<html lang="en">' in client.get(path).get_data(as_text=True)  # remembered
    assert '<html lang="en">' in client.get(path + "?lang=xx").get_data(as_text=True)
    assert '<html lang="ru">' in client.get(path + "?lang=ru").get_data(as_text=True)

    # The consent stored is the text of the language the form was shown in.
    r = Joiner(client, program).submit({"q_nickname": "Ann"}, lang="en")
    assert r.status_code == 303
    assert members(app)[0].consent_text == DEFAULT_CONSENT["en"]


def test_a_program_in_one_language_offers_no_switch(api, client):
    program = api.program(languages=["en"])
    page = client.get(path_of(program["join_url"]), headers={"Accept-Language": "ru"}).get_data(
        as_text=True)
    assert '<html lang="en">' in page and "?lang=" not in page


def test_uploaded_logo_is_shown(api, client):
    program = api.program()
    path = path_of(program["join_url"])
    assert "brand-logo" not in client.get(path).get_data(as_text=True)
    default = client.get(path + "/logo.png")  # the template's, for Google Wallet
    assert default.status_code == 200 and default.mimetype == "image/png"
    buf = io.BytesIO()
    Image.new("RGBA", (600, 200), (250, 250, 250, 255)).save(buf, "PNG")
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/logo", data=buf.getvalue(),
                       headers={"Authorization": f"Bearer {api.key}", "Content-Type": "image/png"})
    assert r.status_code == 200
    assert f'src="{path}/logo.png"' in client.get(path).get_data(as_text=True)
    logo = client.get(path + "/logo.png")
    assert logo.status_code == 200 and logo.mimetype == "image/png"
    assert Image.open(io.BytesIO(logo.data)).size == (300, 100)  # the @2x size


# --- the card page ----------------------------------------------------------------------


def test_card_page_shows_balance_tier_code_and_rules(api, client):
    program = api.program(
        design={"rules_text": "1 балл = 1 ₽.", "terms_text": "Бонусы сгорают через год.",
                "contact": {"phone": "+7 495 000-00-00"}},
        tiers=[{"name": "Bronze", "threshold": 0}, {"name": "Silver", "threshold": 500,
                                                     "multiplier": "1.25"}])
    member = api.member(program["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 120})
    r = client.get(path_of(member["card_url"]), headers={"User-Agent": IPHONE})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    text = text_of(page)
    assert "120" in text and "балл" in text
    assert 'id="tier">Bronze<' in page
    assert i18n.t("ru", "progress_points", tier="Silver", points="380\u00a0баллов") in text
    assert 'aria-valuenow="24"' in page
    assert "<svg" in page and 'class="qr"' in page
    number = member["card_number"]
    assert " ".join(number[i:i + 4] for i in range(0, len(number), 4)) in page
    assert f'href="{member["apple_pass_url"]}"' in page
    assert 'id="add-google"' not in page
    assert "1 балл = 1 ₽." in text and "Бонусы сгорают через год." in text
    assert 'href="tel:+74950000000"' in page
    assert "10\u00a0баллов за каждые 100\u00a0₽" in text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Robots-Tag"] == "noindex"


def test_card_page_spend_tiers_in_english(api, client):
    program = api.program(tier_basis="lifetime_spend", tiers=[
        {"name": "Gold", "threshold": "1000"}])
    member = api.member(program["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": "250.00"})
    text = text_of(client.get(path_of(member["card_url"]) + "?lang=en").get_data(as_text=True))
    assert "Spend 750\u00a0RUB more to reach Gold." in text
    assert i18n.t("en", "no_tier") in text


def test_card_page_at_the_top_tier(api, client):
    program = api.program(tiers=[{"name": "Silver", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    member = api.member(program["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 150})
    text = text_of(client.get(path_of(member["card_url"]) + "?lang=en").get_data(as_text=True))
    assert i18n.t("en", "top_tier") in text and "Gold" in text


class FakeGoogle(NullWalletObjects):
    """Google's API as far as a save link needs it: objects are accepted, links are fake."""

    def save_url(self, object_ids: Any, origins: Any, *, now: Any = None) -> str:
        return f"https://pay.google.com/gp/v/save/jwt-{object_ids[0]}"


def test_google_button_only_when_configured_and_first_on_android(app, api, client):
    program = api.program()
    member = api.member(program["id"])
    path = path_of(member["card_url"])
    assert "add-google" not in client.get(path, headers={"User-Agent": ANDROID}).get_data(
        as_text=True)
    app.extensions["wallet"].google = GoogleWallet(
        FAKE_ISSUER, app.extensions["wallet"].settings.public_url, FakeGoogle())
    android = client.get(path, headers={"User-Agent": ANDROID}).get_data(as_text=True)
    iphone = client.get(path, headers={"User-Agent": IPHONE}).get_data(as_text=True)
    # The button is the service's own link; Google's save link comes when it is tapped.
    save = f'href="{member["card_url"]}/google"'
    assert save in android and save in iphone
    assert android.index('id="add-google"') < android.index('id="add-apple"')
    assert iphone.index('id="add-apple"') < iphone.index('id="add-google"')
    tapped = client.get(path + "/google")
    oid = object_id(FAKE_ISSUER, member["card_number"])
    assert tapped.status_code == 303
    assert tapped.headers["Location"] == f"https://pay.google.com/gp/v/save/jwt-{oid}"


def test_closed_card_has_no_wallet_buttons(api, client):
    program = api.program()
    member = api.member(program["id"])
    api.post(f"/members/{member['id']}/close")
    page = client.get(path_of(member["card_url"])).get_data(as_text=True)
    assert i18n.t("ru", "card_closed") in page and "add-apple" not in page


def test_unknown_card_link_is_404(client):
    r = client.get("/c/not-a-real-token")
    assert r.status_code == 404
    assert i18n.t("ru", "not_found_title") in r.get_data(as_text=True)


def test_nothing_leaks_between_members_and_merchants(app, api, other_api, client):
    mine = api.program(name="Coffee One", design={"rules_text": "Coffee rules"})
    theirs = other_api.program(name="Bakery Two", design={"rules_text": "Bakery rules"})
    anna = api.member(mine["id"], name="Anna Mine")
    boris = api.member(mine["id"], name="Boris Also", phone="+7 912 345-67-80")
    baker = other_api.member(theirs["id"], name="Carl Baker", phone="+7 912 345-67-81")

    page = client.get(path_of(anna["card_url"])).get_data(as_text=True)
    assert "Anna Mine" in page and "Coffee rules" in page
    for secret in ("Boris", boris["card_number"], boris["card_url"], "Carl", baker["card_number"],
                   "Bakery", theirs["join_url"]):
        assert secret not in page
    join = client.get(path_of(theirs["join_url"])).get_data(as_text=True)
    for secret in ("Coffee", "Anna", "Carl", baker["card_number"], "Bakery rules"):
        assert secret not in join
    # A phone enrolled with another merchant is a new member here, not a conflict.
    r = Joiner(client, theirs).submit({"phone": "+7 912 345-67-89", "name": "Anna Bakes"})
    assert r.status_code == 303
    assert anna["card_url"] not in r.headers["Location"]
    with app.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Member)
                        .where(Member.merchant_id == other_api.merchant_id)) == 2


# --- the words ------------------------------------------------------------------------


def test_every_string_exists_in_both_languages():
    for key, texts in i18n.STRINGS.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert all(v.strip() for v in texts.values()), key
        fields = [set(re.findall(r"{(\w+)}", v)) for v in texts.values()]
        assert all(f == fields[0] for f in fields), key


def test_templates_use_only_known_strings():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt2?\('(\w+)'\s*[,)]", template.read_text(encoding="utf-8")))
    assert used and used <= set(i18n.STRINGS), used - set(i18n.STRINGS)


@pytest.mark.parametrize(("number", "word"), [(1, "балл"), (2, "балла"), (5, "баллов"),
                                              (11, "баллов"), (21, "балл"), (104, "балла")])
def test_russian_plurals(number, word):
    assert i18n.plural("ru", "point", number) == f"{number}\u00a0{word}"
