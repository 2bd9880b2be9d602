"""pass.json content: web service keys, barcodes, locations, fields, localization (spec §2)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pass_helpers import make_content
from pass_helpers import make_design

from wallet_service.apple import CardContent
from wallet_service.apple import StoreLocation
from wallet_service.apple import assets as apple_assets
from wallet_service.apple import build_pass_json
from wallet_service.apple import localized_strings
from wallet_service.apple.model import FIELD_SOURCES
from wallet_service.errors import InvalidInput

AREAS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields")


def pass_json(
    template: str = "points", design_changes: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    return build_pass_json(
        apple_assets.load_template(template),
        make_design(**(design_changes or {})),
        make_content(**changes),
    )


def fields(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for area in AREAS for f in doc["storeCard"].get(area, [])}


def test_balance_is_the_primary_field_with_a_change_message() -> None:
    doc = pass_json(balance=4321)
    primary = doc["storeCard"]["primaryFields"]
    assert primary == [
        {
            "key": "points",
            "label": "points.label",
            "value": 4321,
            "numberStyle": "PKNumberStyleDecimal",
            "changeMessage": "points.change",
        }
    ]
    template = apple_assets.load_template("points")
    assert template.strings["en"]["points.change"] == "You now have %@ points"
    assert "%@" in template.strings["ru"]["points.change"]


def test_a_points_change_alters_exactly_one_notifying_field() -> None:
    """§2.6 / pitfall 16: two notifying fields changing at once give a generic banner."""
    for template in ("points", "tiers", "cashback"):
        before = fields(pass_json(template, balance=100))
        after = fields(pass_json(template, balance=150))
        changed = [
            k
            for k in before
            if before[k]["value"] != after[k]["value"] and "changeMessage" in before[k]
        ]
        assert len(changed) == 1, (template, changed)


def test_web_service_keys_are_given_as_is() -> None:
    doc = pass_json(web_service_url="https://wallet.example.com/apple/")
    assert doc["webServiceURL"] == "https://wallet.example.com/apple/"
    assert doc["authenticationToken"] == "w8Yc0m1x0v6nq2l0bq3V4rJmH0cA6dTz"


def test_no_web_service_keys_without_a_url() -> None:
    doc = pass_json(web_service_url=None, authentication_token=None)
    assert "webServiceURL" not in doc and "authenticationToken" not in doc


@pytest.mark.parametrize(
    "url", ["http://localhost:5000", "http://127.0.0.1:8000/apple", "http://192.168.1.20:5000"]
)
def test_http_is_allowed_for_development_hosts(url: str) -> None:
    assert pass_json(web_service_url=url)["webServiceURL"] == url


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"web_service_url": "http://wallet.example.com"}, "web_service_url", "https"),
        ({"web_service_url": "https://wallet.example.com/v1"}, "web_service_url", "/v1"),
        ({"web_service_url": "ftp://wallet.example.com"}, "web_service_url", "https"),
        ({"authentication_token": "short"}, "authentication_token", "16"),
        ({"authentication_token": None}, "authentication_token", "together"),
        ({"web_service_url": None}, "web_service_url", "together"),
        ({"card_number": "КАРТА1"}, "card_number", "Latin-1"),
        ({"expiration_date": dt.datetime(2030, 1, 1)}, "expiration_date", "time zone"),
        ({"pass_type_identifier": "com.example"}, "pass_type_identifier", "pass."),
        ({"team_identifier": "abc"}, "team_identifier", "Team ID"),
        ({"serial_number": " "}, "serial_number", "empty"),
        ({"stamps": 3, "stamps_goal": None}, "stamps_goal", "together"),
        ({"cashback_percent": 120}, "cashback_percent", "between"),
        ({"balance": 1.5}, "balance", "whole"),
        ({"card_url": "javascript:alert(1)"}, "card_url", "URL"),
    ],
)
def test_bad_card_content_is_refused(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        make_content(**changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"background_color": "rgb(1, 2, 3)"}, "background_color"),
        ({"label_color": "#12345"}, "label_color"),
        ({"barcode_format": "ean13"}, "barcode_format"),
        ({"images": {"background.png": b"\x89PNG\r\n\x1a\n"}}, "images"),
        ({"images": {"logo.png": b"GIF89a"}}, "images"),
        ({"images": {"logo.png": b"\x89PNG\r\n\x1a\n"}}, "images"),
        ({"locations": [StoreLocation(91, 0)]}, "locations[0].latitude"),
        ({"currency_code": "rub"}, "currency_code"),
        ({"organization_name": ""}, "organization_name"),
        ({"languages": ("Russian",)}, "languages"),
    ],
)
def test_bad_design_is_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_design(**changes)
    assert caught.value.field == field


def test_language_missing_from_template_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no strings for de") as caught:
        pass_json(design_changes={"languages": ("de",)})
    assert caught.value.field == "languages"


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        pass_json(locale="xx_YY")
    assert caught.value.field == "locale"


def test_colours_become_apple_rgb() -> None:
    doc = pass_json(design_changes={"background_color": "#0A1B2c", "foreground_color": "#ffffff"})
    assert doc["backgroundColor"] == "rgb(10, 27, 44)"
    assert doc["foregroundColor"] == "rgb(255, 255, 255)"
    assert doc["labelColor"] == "rgb(222, 173, 40)"  # the template's default


@pytest.mark.parametrize(
    ("choice", "formats"),
    [
        ("qr", ["PKBarcodeFormatQR"]),
        ("pdf417", ["PKBarcodeFormatPDF417"]),
        ("aztec", ["PKBarcodeFormatAztec"]),
        ("code128", ["PKBarcodeFormatCode128", "PKBarcodeFormatQR"]),
    ],
)
def test_barcodes_carry_the_card_number(choice: str, formats: list[str]) -> None:
    doc = pass_json(design_changes={"barcode_format": choice}, card_number="CARD-0042")
    assert [b["format"] for b in doc["barcodes"]] == formats
    for barcode in doc["barcodes"] + [doc["barcode"]]:
        assert barcode["message"] == barcode["altText"] == "CARD-0042"
        assert barcode["messageEncoding"] == "iso-8859-1"
    assert doc["barcode"] == doc["barcodes"][-1]


def test_at_most_ten_locations_with_relevant_text() -> None:
    stores = [StoreLocation(50 + i / 10, 30 + i / 10) for i in range(14)]
    stores[0] = StoreLocation(55.0, 37.0, "Welcome back!")
    doc = pass_json(design_changes={"locations": stores})
    assert len(doc["locations"]) == 10
    assert doc["locations"][0] == {
        "latitude": 55.0,
        "longitude": 37.0,
        "relevantText": "Welcome back!",
    }
    assert doc["locations"][1]["relevantText"] == "location.relevant"


def test_back_fields_hold_rules_terms_contact_and_card_page() -> None:
    back = {f["key"]: f for f in pass_json()["storeCard"]["backFields"]}
    assert back["rules"]["value"] == "1 point for every 100 spent."
    assert back["terms"]["label"] == "terms.label"
    assert back["phone"]["dataDetectorTypes"] == ["PKDataDetectorTypePhoneNumber"]
    assert back["website"]["value"] == "https://coffee.example.com"
    assert back["email"]["value"] == "hi@example.com"
    assert back["card_page"]["value"] == "https://wallet.example.com/c/6f1c1f3e"
    assert back["card_page"]["dataDetectorTypes"] == ["PKDataDetectorTypeLink"]


def test_empty_optional_values_are_left_out() -> None:
    from wallet_service.apple import MerchantContact

    doc = pass_json(
        design_changes={
            "rules_text": None,
            "terms_text": None,
            "contact": MerchantContact(),
            "locations": (),
        },
        tier=None,
        card_url=None,
    )
    assert doc["storeCard"]["backFields"] == []
    assert "tier" not in fields(doc)
    assert "locations" not in doc and "voided" not in doc and "expirationDate" not in doc


@pytest.mark.parametrize(
    ("locale", "stamps", "percent"),
    [
        ("en", "1,200 / 1,500", "2.5%"),
        ("ru", "1\xa0200 / 1\xa0500", "2,5\xa0%"),
        ("de", "1.200 / 1.500", "2,5\xa0%"),
    ],
)
def test_numbers_follow_the_card_locale_and_dates_the_phone(
    locale: str, stamps: str, percent: str
) -> None:
    content = {
        "locale": locale,
        "stamps": 1200,
        "stamps_goal": 1500,
        "cashback_percent": Decimal("2.5"),
        "expiration_date": dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC),
    }
    stamps_doc = pass_json("stamps", **content)
    assert fields(stamps_doc)["stamps"]["value"] == stamps
    assert fields(stamps_doc)["reward_in"]["value"] == ("300")
    # A date on the back is a date Wallet writes in the phone's language (§1.5), not text in
    # the card's.
    expires = fields(stamps_doc)["expires_on"]
    assert expires["value"] == "2025-03-01T12:00:00Z"
    assert (expires["dateStyle"], expires["timeStyle"]) == ("PKDateStyleLong", "PKDateStyleNone")
    assert fields(pass_json("cashback", **content))["cashback"]["value"] == percent


def test_cashback_bonus_in_minor_units_becomes_money() -> None:
    doc = pass_json("cashback", design_changes={"currency_code": "RUB"}, balance=12550)
    bonus = fields(doc)["bonus"]
    assert bonus["value"] == 125.5 and bonus["currencyCode"] == "RUB"
    assert "numberStyle" not in bonus
    assert (
        fields(pass_json("cashback", design_changes={"currency_code": "JPY"}, balance=300))[
            "bonus"
        ]["value"]
        == 300
    )


def test_tier_template_shows_the_tier_as_primary() -> None:
    doc = pass_json("tiers", tier="Platinum")
    assert doc["storeCard"]["primaryFields"][0]["value"] == "Platinum"
    assert doc["storeCard"]["primaryFields"][0]["changeMessage"] == "tier.change"


def test_points_label_renames_the_unit_in_every_language() -> None:
    template = apple_assets.load_template("points")
    strings = localized_strings(template, make_design(points_label="Stars"))
    for language in ("en", "ru"):
        assert strings[language]["points.label"] == "Stars"
        assert strings[language]["points.change"] == "Stars: %@"
    assert strings["ru"]["member.label"] == "Участник"


def test_every_field_source_has_a_value_function() -> None:
    from wallet_service.apple.content import _SOURCES

    assert set(_SOURCES) == FIELD_SOURCES


def test_stamps_cannot_exceed_the_goal_on_the_card() -> None:
    doc = pass_json("stamps", stamps=12, stamps_goal=10)
    assert fields(doc)["stamps"]["value"] == "10 / 10"
    assert fields(doc)["reward_in"]["value"] == "0"


def test_content_is_a_plain_frozen_value() -> None:
    first, second = make_content(), make_content()
    assert first == second and isinstance(first, CardContent)


def test_texts_per_language_become_pass_strings_keys() -> None:
    rules = {"ru": "Один балл за 10 ₽", "en": "One point for 10 RUB"}
    design_changes = {"rules_text": rules, "terms_text": {"ru": "Условия"}}
    back = fields(pass_json(design_changes=design_changes))
    assert (back["rules"]["value"], back["terms"]["value"]) == ("rules.text", "terms.text")
    strings = localized_strings(apple_assets.load_template("points"),
                                make_design(**design_changes))
    assert strings["en"]["rules.text"] == rules["en"] and strings["ru"]["rules.text"] == rules["ru"]
    # Every file has the key (§1.5); a language without its own text reads the first one's.
    assert strings["en"]["terms.text"] == strings["ru"]["terms.text"] == "Условия"
    with pytest.raises(InvalidInput) as excinfo:
        make_design(rules_text={"en": " "})
    assert excinfo.value.field == "rules_text.en"


def test_fields_written_per_language_share_keys_only_where_they_differ() -> None:
    from wallet_service.apple import localize_fields

    per_language = {
        "ru": [{"key": "progress", "label": "До подарка", "value": "Ещё 3"},
               {"key": "discount", "label": "Ваша скидка", "value": "10 %"}],
        "en": [{"key": "progress", "label": "Next reward", "value": "3 more"},
               {"key": "discount", "label": "Your discount", "value": "10 %"}],
    }
    fields_out, strings = localize_fields(per_language)
    assert fields_out == [
        {"key": "progress", "label": "card.progress.label", "value": "card.progress.value"},
        {"key": "discount", "label": "card.discount.label", "value": "10 %"},
    ]
    assert strings["en"] == {"card.progress.label": "Next reward",
                             "card.progress.value": "3 more",
                             "card.discount.label": "Your discount"}
    assert strings["ru"]["card.progress.value"] == "Ещё 3"
    assert set(strings["ru"]) == set(strings["en"])


@pytest.mark.parametrize("kind", ["stamps", "cashback", "discount"])
def test_a_card_of_another_kind_shows_no_points(kind: str) -> None:
    for template in ("points", "tiers", "cashback"):
        shown = fields(pass_json(template, {"currency_code": "RUB"}, kind=kind,
                                 discount_percent=10))
        assert "points" not in shown and "balance" not in shown
        if template == "tiers":
            assert shown["discount"]["value"] == 0.1
            assert shown["discount"]["numberStyle"] == "PKNumberStylePercent"
        if template == "cashback":
            assert ("bonus" in shown) == (kind == "cashback")
