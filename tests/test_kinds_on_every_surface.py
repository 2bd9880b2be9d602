"""Every program kind shows the same standing on every surface: the merchant API's member,
the join page (what the program gives), the card page, the Apple pass (front and back, as a
phone in English and one in Russian read it through pass.strings) and the Google object.
The numbers come from one rule (``wallet_service.rules.standing``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_google_cards import ISSUER
from test_google_cards import account  # noqa: F401  (fixtures of the Google stand-in)
from test_google_cards import gapi  # noqa: F401
from test_google_cards import gapp  # noqa: F401
from test_google_cards import google  # noqa: F401
from test_google_cards import keys  # noqa: F401
from test_google_cards import saved
from test_google_cards import worker  # noqa: F401
from wallet_pass import card_page
from wallet_pass import download
from wallet_pass import join_page

from wallet_service.google import object_id

NBSP = "\u00a0"

PROGRAMS = {
    "points": {"tiers": [{"name": "Bronze", "threshold": 0},
                         {"name": "Silver", "threshold": 500}]},
    "stamps": {"stamps": {"goal": 6, "reward": {"en": "a free coffee", "ru": "бесплатный кофе"},
                          "max_per_window": None}},
    "cashback": {"cashback": {"percent": "5"}},
    "discount": {"tier_basis": "lifetime_spend",
                 "tiers": [{"name": "Silver", "threshold": 0, "discount_percent": "3"},
                           {"name": "Gold", "threshold": 10000, "discount_percent": "10"},
                           {"name": "Platinum", "threshold": 20000, "discount_percent": "15"}]},
}

# What makes each card's numbers non-trivial.
OPERATIONS = {
    "points": [("transactions", {"type": "earn", "amount": "1234.56"})],  # 123 points
    "stamps": [("stamps", {"count": 9})],  # 3 of 6, one reward ready
    "cashback": [("transactions", {"type": "earn", "amount": "10300"})],  # 515.00 RUB
    "discount": [("transactions", {"type": "earn", "amount": "12000"})],  # Gold, Platinum next
}


def every_surface(gapi, google, worker, kind):  # noqa: F811
    """A member of a program of ``kind``, after its operations, on every surface."""
    program = gapi.program(name="Corner", kind=kind, languages=["en", "ru"], **PROGRAMS[kind])
    member = gapi.member(program["id"])
    saved(gapi, member)  # the customer adds the card to Google Wallet
    for path, body in OPERATIONS[kind]:
        r = gapi.post(f"/members/{member['id']}/{path}", body)
        assert r.status_code == 201, r.json
    worker.run_once()
    shown = gapi.get(f"/members/{member['id']}").json
    client = gapi.client
    return {
        "api": shown,
        "join": {lang: join_page(client, program, lang) for lang in ("en", "ru")},
        "page": {lang: card_page(client, shown, lang) for lang in ("en", "ru")},
        "pass": download(client, shown),
        "google": google.objects[object_id(ISSUER, shown["serial_number"])],
    }


def google_texts(obj):
    """The object's text modules by id: each language's body."""
    return {m["id"]: {t["language"]: t["value"] for t in m["localizedBody"]["translatedValues"]}
            for m in obj.get("textModulesData", [])}


def google_label(obj):
    label = obj["loyaltyPoints"]["localizedLabel"]
    return {t["language"]: t["value"] for t in label["translatedValues"]}


def assert_no_points(pkpass):
    """A card whose program counts something else shows no points anywhere."""
    raw = pkpass.raw_fields()
    assert not {"points", "balance"} & set(raw)
    assert not any(f.get("label") in ("points.label", "points.short") for f in raw.values())


def check_points(surfaces):
    api, pkpass, obj = surfaces["api"], surfaces["pass"], surfaces["google"]
    assert (api["kind"], api["balance"], api["tier"]) == ("points", 123, "Bronze")
    assert api["stamps_goal"] is None and api["cashback"] is None
    assert api["discount_percent"] is None and api["next_discount"] is None
    left = Decimal(api["tier_progress"]["left"])
    assert left == 377

    assert f"10{NBSP}points for every 100{NBSP}RUB spent." in surfaces["join"]["en"]
    assert f"10{NBSP}баллов за каждые 100{NBSP}₽." in surfaces["join"]["ru"]
    en, ru = surfaces["page"]["en"], surfaces["page"]["ru"]
    assert 'id="balance">123<' in en and ">points<" in en
    assert 'id="balance">123<' in ru and ">балла<" in ru
    assert f"377{NBSP}points to go until Silver." in en

    for lang, label in (("en", "Points"), ("ru", "Баллы")):
        front = pkpass.fields(lang)
        assert front["points"]["value"] == front["balance"]["value"] == api["balance"]
        assert front["points"]["label"] == label
        assert front["tier"]["value"] == "Bronze"
    assert pkpass.fields("en")["tier_progress"]["value"] == "377 points to Silver"
    assert pkpass.fields("ru")["tier_progress"]["value"] == "Silver: осталось 377 баллов"

    assert obj["loyaltyPoints"]["balance"] == {"int": api["balance"]}
    assert google_label(obj) == {"en": "Points", "ru": "Баллы"}
    assert obj["secondaryLoyaltyPoints"]["balance"] == {"string": "Bronze"}
    assert google_texts(obj)["next_tier"] == {
        "en": f"377{NBSP}points to go until Silver.",
        "ru": f"До уровня «Silver» осталось 377{NBSP}баллов."}


def check_stamps(surfaces):
    api, pkpass, obj = surfaces["api"], surfaces["pass"], surfaces["google"]
    assert (api["kind"], api["stamps"], api["stamps_goal"]) == ("stamps", 3, 6)
    assert api["rewards_ready"] == api["balance"] == 1
    assert api["reward"] == {"en": "a free coffee", "ru": "бесплатный кофе"}
    figure = f"{api['stamps']} / {api['stamps_goal']}"  # 3 / 6

    join = surfaces["join"]
    assert f"Collect 6{NBSP}stamps and get a free coffee." in join["en"]
    assert f"1{NBSP}stamp for every purchase." in join["en"]
    assert f"Соберите 6{NBSP}штампов — и получите бесплатный кофе." in join["ru"]
    assert "points for every" not in join["en"] and "за каждые" not in join["ru"]

    en, ru = surfaces["page"]["en"], surfaces["page"]["ru"]
    for page in (en, ru):
        assert f'id="balance">{figure}<' in page
        assert "balance-unit" not in page  # "3 / 6", not "1 points"
    assert 'id="balance-label">Stamps<' in en and 'id="balance-label">Штампы<' in ru
    assert f'id="next-reward">3{NBSP}stamps more to a free coffee.<' in en
    assert 'id="rewards">Ready to claim: 1 × a free coffee.<' in en
    assert f'id="next-reward">Ещё 3{NBSP}штампа — и бесплатный кофе.<' in ru
    assert 'id="rewards">Готово к получению: 1 × бесплатный кофе.<' in ru

    assert_no_points(pkpass)
    en_fields, ru_fields = pkpass.fields("en"), pkpass.fields("ru")
    for fields in (en_fields, ru_fields):
        assert fields["stamps"]["value"] == figure
        assert fields["rewards"]["value"] == api["rewards_ready"]
        assert fields["reward_in"]["value"] == str(api["stamps_goal"] - api["stamps"])
    assert (en_fields["progress"]["label"], ru_fields["progress"]["label"]) == (
        "Next reward", "До подарка")
    assert en_fields["progress"]["value"] == "3 more to a free coffee\n1 × a free coffee ready"
    assert ru_fields["progress"]["value"] == (
        "Ещё 3 — и бесплатный кофе\nГотово к получению: 1 × бесплатный кофе")
    assert (en_fields["rewards"]["label"], ru_fields["rewards"]["label"]) == (
        "Rewards", "Подарки")

    assert obj["loyaltyPoints"]["balance"] == {"string": figure}
    assert google_label(obj) == {"en": "Stamps", "ru": "Штампы"}
    texts = google_texts(obj)
    assert texts["next_reward"] == {"en": f"3{NBSP}stamps more to a free coffee.",
                                    "ru": f"Ещё 3{NBSP}штампа — и бесплатный кофе."}
    assert texts["rewards"]["en"] == "Ready to claim: 1 × a free coffee."


def check_cashback(surfaces):
    api, pkpass, obj = surfaces["api"], surfaces["pass"], surfaces["google"]
    assert api["kind"] == "cashback" and api["balance"] == 51500  # kopecks
    money = Decimal(api["cashback"]["amount"])
    assert money == Decimal("515.00") and api["cashback"]["currency"] == "RUB"
    assert Decimal(api["cashback_percent"]) == 5

    assert "5% of every purchase back as cashback to pay with." in surfaces["join"]["en"]
    assert f"Кешбэк 5{NBSP}% с каждой покупки" in surfaces["join"]["ru"]
    assert "points for every" not in surfaces["join"]["en"]

    en, ru = surfaces["page"]["en"], surfaces["page"]["ru"]
    assert f'id="balance">515{NBSP}RUB<' in en and f'id="balance">515{NBSP}₽<' in ru
    assert "51" + NBSP + "500" not in en + ru and "51,500" not in en
    assert 'id="balance-label">Cashback balance<' in en
    assert 'id="cashback">5% of every purchase comes back.<' in en

    assert_no_points(pkpass)
    for lang in ("en", "ru"):
        bonus = pkpass.fields(lang)["bonus"]
        assert Decimal(str(bonus["value"])) == money and bonus["currencyCode"] == "RUB"
    assert pkpass.fields("en")["bonus"]["label"] == "Bonus balance"
    assert pkpass.fields("en")["cashback"]["value"] == "5%"

    assert obj["loyaltyPoints"]["balance"] == {
        "money": {"currencyCode": "RUB", "micros": str(int(money * 1_000_000))}}
    assert google_label(obj) == {"en": "Cashback", "ru": "Кешбэк"}
    assert google_texts(obj)["cashback"] == {"en": "5% of every purchase comes back.",
                                             "ru": f"Кешбэк 5{NBSP}% с каждой покупки."}


def check_discount(surfaces):
    api, pkpass, obj = surfaces["api"], surfaces["pass"], surfaces["google"]
    assert (api["kind"], api["tier"]) == ("discount", "Gold")
    assert Decimal(api["discount_percent"]) == 10
    upcoming = api["next_discount"]
    assert (upcoming["tier"], Decimal(upcoming["percent"])) == ("Platinum", 15)
    assert Decimal(upcoming["spend_left"]) == Decimal(upcoming["left"]) == 8000

    join = surfaces["join"]
    assert "A discount from 3% up to 15%: the more you buy, the higher it gets." in join["en"]
    assert f"Скидка от 3{NBSP}% до 15{NBSP}%" in join["ru"]
    assert "points for every" not in join["en"]

    en, ru = surfaces["page"]["en"], surfaces["page"]["ru"]
    assert 'id="balance">10%<' in en and f'id="balance">10{NBSP}%<' in ru
    assert 'id="balance-label">Your discount<' in en
    assert "balance-unit" not in en  # no "0 points"
    assert f'id="next-discount">15% off after spending 8,000{NBSP}RUB more.<' in en
    assert (f'id="next-discount">Скидка 15{NBSP}% — после покупок ещё на 8{NBSP}000{NBSP}₽.<'
            in ru)

    assert_no_points(pkpass)
    for lang in ("en", "ru"):
        front = pkpass.fields(lang, "headerFields")
        assert front["discount"]["value"] * 100 == Decimal(api["discount_percent"])
        assert front["discount"]["numberStyle"] == "PKNumberStylePercent"
        assert pkpass.fields(lang, "primaryFields")["tier"]["value"] == "Gold"
    assert pkpass.fields("en")["discount"]["label"] == "Discount"
    assert pkpass.fields("ru")["discount"]["label"] == "Скидка"
    back_en = pkpass.fields("en", "backFields")
    assert "discount" not in back_en  # on the front already: keys are unique
    assert back_en["next_discount"]["value"] == "15 % at Platinum: 8000 RUB to go"
    assert pkpass.fields("ru", "backFields")["next_discount"]["value"] == (
        "15 % на уровне «Platinum»: осталось 8000 RUB")

    assert obj["loyaltyPoints"]["balance"] == {"string": "10%"}
    assert google_label(obj) == {"en": "Discount", "ru": "Скидка"}
    assert google_texts(obj)["next_discount"] == {
        "en": f"15% off after spending 8,000{NBSP}RUB more.",
        "ru": f"Скидка 15{NBSP}% — после покупок ещё на 8{NBSP}000{NBSP}₽."}


CHECKS = {"points": check_points, "stamps": check_stamps, "cashback": check_cashback,
          "discount": check_discount}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_every_surface_shows_what_the_api_says(gapi, google, worker, kind):  # noqa: F811
    surfaces = every_surface(gapi, google, worker, kind)
    assert surfaces["api"]["kind"] == kind
    assert surfaces["pass"].languages == ["en", "ru"]
    if kind != "points":
        assert_no_points(surfaces["pass"])
        assert "points for every" not in surfaces["join"]["en"]
        assert "за каждые" not in surfaces["join"]["ru"]
    CHECKS[kind](surfaces)
