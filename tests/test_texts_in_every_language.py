"""Customer texts in every language of the program: the merchant's texts (rules, terms, the
stamp reward, reward names, coupon titles, campaign messages) are one text or one per
language, and what the service writes on a card goes through each language's pass.strings
(apple-wallet spec §1.5), so a phone in English reads English and one in Russian Russian."""

from __future__ import annotations

import datetime as dt

from test_google_cards import ISSUER
from test_google_cards import account  # noqa: F401  (fixtures of the Google stand-in)
from test_google_cards import gapi  # noqa: F401
from test_google_cards import gapp  # noqa: F401
from test_google_cards import google  # noqa: F401
from test_google_cards import keys  # noqa: F401
from test_google_cards import saved
from test_google_cards import worker  # noqa: F401
from test_mechanics_automations import booked_on
from test_mechanics_automations import daily
from wallet_pass import card_page
from wallet_pass import download

from wallet_service.google import class_id
from wallet_service.google import object_id

RULES = {"ru": "Один балл за каждые 10 ₽.", "en": "One point for every 10 RUB."}
TERMS = {"ru": "Баллы сгорают через год.", "en": "Points expire after a year."}


def member_of(api, program, **fields):
    return api.get(f"/members/{api.member(program['id'], **fields)['id']}").json


def test_rules_per_language_reach_the_pass_and_the_card_page(api, client):
    program = api.program(languages=["ru", "en"], design={"rules_text": RULES,
                                                          "terms_text": TERMS},
                          tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    assert program["design"]["rules_text"] == RULES  # as stored
    assert api.get(f"/programs/{program['id']}").json["design"]["terms_text"] == TERMS
    member = member_of(api, program)
    pkpass = download(client, member)

    # pass.json refers to keys; each language's pass.strings holds its own text.
    raw = pkpass.raw_fields()
    assert (raw["rules"]["value"], raw["terms"]["value"]) == ("rules.text", "terms.text")
    for lang in ("ru", "en"):
        assert pkpass.strings[lang]["rules.text"] == RULES[lang]
        back = pkpass.fields(lang, "backFields")
        assert (back["rules"]["value"], back["terms"]["value"]) == (RULES[lang], TERMS[lang])
    # What the service adds on the back (here the way to the next tier) is in the phone's
    # language too, never the program's first language written into pass.json.
    assert raw["tier_progress"]["label"] not in ("Следующий уровень", "Next level")
    assert pkpass.fields("en")["tier_progress"]["label"] == "Next level"
    assert pkpass.fields("en")["tier_progress"]["value"] == "100 points to Gold"
    assert pkpass.fields("ru")["tier_progress"]["label"] == "Следующий уровень"

    english, russian = card_page(client, member, "en"), card_page(client, member, "ru")
    assert RULES["en"] in english and TERMS["en"] in english
    assert RULES["ru"] not in english and TERMS["ru"] not in english
    assert RULES["ru"] in russian and RULES["en"] not in russian


def test_one_text_is_the_same_in_every_language(api, client):
    program = api.program(languages=["ru", "en"], design={"rules_text": "Welcome!"})
    assert program["design"]["rules_text"] == "Welcome!"
    pkpass = download(client, member_of(api, program))
    assert pkpass.fields("ru")["rules"]["value"] == pkpass.fields("en")["rules"]["value"] == (
        "Welcome!")


def test_texts_name_only_the_program_languages_and_are_never_empty(api):
    cases = [
        ({"languages": ["ru"], "design": {"rules_text": {"en": "Rules"}}}, "design.rules_text"),
        ({"design": {"terms_text": {}}}, "design.terms_text"),
        ({"design": {"rules_text": {"ru": "  "}}}, "design.rules_text.ru"),
        ({"design": {"rules_text": {"de": "Regeln"}}}, "design.rules_text"),
        ({"design": {"rules_text": ["Rules"]}}, "design.rules_text"),
        ({"kind": "stamps", "languages": ["en"],
          "stamps": {"reward": {"ru": "кофе", "en": "a coffee"}}}, "stamps.reward"),
    ]
    for body, field in cases:
        r = api.post("/programs", {"name": "Coffee", "kind": "points", **body})
        assert r.status_code == 422, (body, r.json)
        assert r.json["errors"][0]["field"] == field, (body, r.json)
    assert api.get("/programs").json["items"] == []  # nothing half-written

    program = api.program(languages=["ru"])
    # A program that drops a language its texts use is refused as a whole.
    both = api.program(languages=["ru", "en"], design={"rules_text": RULES})
    r = api.patch(f"/programs/{both['id']}", {"languages": ["ru"]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "design.rules_text"
    for path, body, field in (
            ("rewards", {"name": {"en": "Cake"}, "cost_points": 10}, "name"),
            ("coupons", {"title": {"ru": "Скидка", "en": "Discount"}}, "title"),
            ("campaigns", {"text": {"en": "Hello"}}, "text"),
            ("campaigns", {"text": {"ru": ""}}, "text.ru")):
        r = api.post(f"/programs/{program['id']}/{path}", body)
        assert r.status_code == 422, (path, r.json)
        assert r.json["errors"][0]["field"] == field, (path, r.json)
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == []
    assert api.get(f"/programs/{program['id']}/campaigns").json["items"] == []


def test_reward_coupon_and_campaign_texts_per_language(gapi, google, worker):  # noqa: F811
    program = gapi.program(kind="stamps", languages=["ru", "en"],
                           design={"rules_text": RULES},
                           stamps={"goal": 5, "reward": {"ru": "кофе", "en": "a coffee"}})
    member = gapi.member(program["id"], marketing_consent=True)
    saved(gapi, member)  # the customer adds the card to Google Wallet
    reward = gapi.post(f"/programs/{program['id']}/rewards",
                       {"name": {"en": "Cake", "ru": "Пирожное"}, "cost_stamps": 3})
    assert reward.status_code == 201, reward.json
    # Stored in the program's order of languages; GET answers what was stored.
    assert list(reward.json["name"].items()) == [("ru", "Пирожное"), ("en", "Cake")]
    assert gapi.get(f"/programs/{program['id']}/rewards").json["items"][0]["name"] == {
        "ru": "Пирожное", "en": "Cake"}
    coupon = gapi.post(f"/programs/{program['id']}/coupons",
                       {"title": {"ru": "Скидка 20 %", "en": "20% off"}})
    assert coupon.status_code == 201 and coupon.json["title"]["en"] == "20% off"
    campaign = gapi.post(f"/programs/{program['id']}/campaigns",
                         {"text": {"ru": "Новое меню", "en": "A new menu"}})
    assert campaign.status_code == 201 and campaign.json["reached"] == 1
    assert campaign.json["text"] == {"ru": "Новое меню", "en": "A new menu"}
    worker.run_once()

    shown = gapi.get(f"/members/{member['id']}").json
    assert shown["message"] == {"ru": "Новое меню", "en": "A new menu"}
    pkpass = download(gapi.client, shown)
    en, ru = pkpass.fields("en"), pkpass.fields("ru")
    assert (en["message"]["label"], en["message"]["value"]) == ("News", "A new menu")
    assert (ru["message"]["label"], ru["message"]["value"]) == ("Новости", "Новое меню")
    assert (en["coupon"]["value"], ru["coupon"]["value"]) == ("20% off", "Скидка 20 %")
    assert en["progress"]["value"] == "5 more to a coffee"
    assert ru["progress"]["value"] == "Ещё 5 — и кофе"
    # The announcement keeps working: the changeMessage shows the value in the phone's
    # language (§2.6).
    assert pkpass.raw_fields()["message"]["changeMessage"] == "%@"

    obj = google.objects[object_id(ISSUER, shown["serial_number"])]
    message = obj["messages"][-1]
    assert message["body"] == "Новое меню"  # the program's first language is the default
    assert {t["language"]: t["value"] for t in message["localizedBody"]["translatedValues"]} == {
        "ru": "Новое меню", "en": "A new menu"}
    assert {t["language"]: t["value"]
            for t in message["localizedHeader"]["translatedValues"]} == {
        "ru": "Новости", "en": "News"}
    rules = next(m for m in google.classes[class_id(ISSUER, program["id"])]["textModulesData"]
                 if m["id"] == "rules")
    assert {t["language"]: t["value"] for t in rules["localizedBody"]["translatedValues"]} == (
        RULES)


def test_the_expiry_reminder_in_every_language(api, client):
    program = api.program(languages=["ru", "en"], points_validity_days=30,
                          expiry_reminder_days=7)
    member = api.member(program["id"])
    earned = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 100})
    expiry = booked_on(earned) + dt.timedelta(days=30)
    assert daily(api, expiry - dt.timedelta(days=5))["reminded"] == 1
    shown = api.get(f"/members/{member['id']}").json
    assert shown["reminder"].endswith("сгорят 100\u00a0баллов. Успейте потратить!")
    pkpass = download(client, shown)
    assert pkpass.fields("en")["expiry_reminder"]["value"] == (
        f"100\u00a0points expire on {expiry:%B} {expiry.day}, {expiry.year}. Don't miss out!")
    assert pkpass.fields("ru")["expiry_reminder"]["value"] == shown["reminder"]
    assert pkpass.fields("en")["expiry_reminder"]["label"] == "Points expiring"
