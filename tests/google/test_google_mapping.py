"""Programs and cards as LoyaltyClass / LoyaltyObject JSON (spec §2), validated against the
vendored Discovery schema (§6.5)."""

from __future__ import annotations

import re

import pytest
from google_helpers import CARD
from google_helpers import ISSUER
from google_helpers import MINIMAL_PROGRAM
from google_helpers import PROGRAM
from google_helpers import card
from google_helpers import program

from wallet_service.errors import InvalidInput
from wallet_service.google import MESSAGES_PER_OBJECT
from wallet_service.google import SchemaViolation
from wallet_service.google import class_id
from wallet_service.google import kept_messages
from wallet_service.google import loyalty_class
from wallet_service.google import loyalty_message
from wallet_service.google import loyalty_object
from wallet_service.google import object_design
from wallet_service.google import object_id
from wallet_service.google import object_patch
from wallet_service.google import sanitize_suffix
from wallet_service.google import validate

ID = re.compile(r"\A[0-9]+\.[A-Za-z0-9._-]+\Z")


def test_class_id_and_object_id_follow_googles_rules_and_hide_the_card_number() -> None:
    assert class_id(ISSUER, 42) == f"{ISSUER}.program-42"
    assert class_id(ISSUER, "Zürich café+1 🙂") == f"{ISSUER}.program-Z_rich_caf__1__"
    oid = object_id(ISSUER, CARD.serial)
    assert ID.match(oid) and oid.startswith(f"{ISSUER}.card-")
    assert CARD.serial not in oid
    assert object_id(ISSUER, CARD.serial) == oid                     # stable
    assert object_id(ISSUER, "2000000000022") != oid
    assert object_id(ISSUER, CARD.serial, salt="secret") != oid


@pytest.mark.parametrize("text", ["ü", "a@b", "a b", "a+b", "王", "🙂", "é\u0301"])
def test_sanitize_suffix_keeps_ascii_only(text: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9._-]+", sanitize_suffix(text))


@pytest.mark.parametrize("issuer", ["ISSUER_ID", "", "12a", " 123"])
def test_issuer_id_must_be_digits(issuer: str) -> None:
    with pytest.raises(InvalidInput, match="all digits"):
        class_id(issuer, 1)


def test_full_class_matches_the_schema_and_the_program() -> None:
    payload = loyalty_class(ISSUER, PROGRAM)
    validate("LoyaltyClass", payload)
    assert payload["id"] == f"{ISSUER}.program-42"
    assert payload["reviewStatus"] == "UNDER_REVIEW"
    assert payload["issuerName"] == "Кофейня Акме"
    assert payload["programName"] == "Кофейные баллы"
    assert payload["localizedProgramName"] == {
        "defaultValue": {"language": "ru", "value": "Кофейные баллы"},
        "translatedValues": [{"language": "ru", "value": "Кофейные баллы"},
                             {"language": "en", "value": "Coffee Points"}]}
    assert payload["programLogo"]["sourceUri"]["uri"] == PROGRAM.logo_url
    assert payload["programLogo"]["contentDescription"]["defaultValue"]["value"] == "ACME"
    assert payload["heroImage"]["sourceUri"]["uri"] == PROGRAM.hero_url
    assert payload["hexBackgroundColor"] == "#1a73e8"
    assert payload["multipleDevicesAndHoldersAllowedStatus"] == "ONE_USER_ALL_DEVICES"
    assert [m["id"] for m in payload["textModulesData"]] == ["rules", "terms"]
    assert payload["textModulesData"][0]["localizedBody"]["translatedValues"][1]["value"] == \
        "1 point per 100 RUB"
    uris = {u["id"]: u["uri"] for u in payload["linksModuleData"]["uris"]}
    assert uris == {"website": "https://acme.example", "phone": "tel:+74951234567"}
    assert len(payload["merchantLocations"]) == 10
    assert payload["merchantLocations"][0] == {"latitude": 55.75, "longitude": 37.61}
    assert payload["callbackOptions"] == {"url": PROGRAM.callback_url}
    assert payload["countryCode"] == "RU"


def test_minimal_class_matches_the_schema() -> None:
    payload = loyalty_class(ISSUER, MINIMAL_PROGRAM)
    validate("LoyaltyClass", payload)
    assert payload["hexBackgroundColor"] == "#fff"
    assert "textModulesData" not in payload and "merchantLocations" not in payload
    assert payload["localizedIssuerName"]["defaultValue"] == {"language": "en", "value": "Shop"}


def test_default_language_is_the_programs_first() -> None:
    payload = loyalty_class(ISSUER, program(languages=("en", "ru")))
    assert payload["programName"] == "Coffee Points"
    assert payload["localizedProgramName"]["defaultValue"]["language"] == "en"
    assert payload["accountIdLabel"] == "Card number"


def test_object_matches_the_schema_and_the_card() -> None:
    payload = loyalty_object(ISSUER, PROGRAM, CARD)
    validate("LoyaltyObject", payload)
    assert payload["id"] == object_id(ISSUER, CARD.serial)
    assert payload["classId"] == class_id(ISSUER, 42)
    assert payload["state"] == "ACTIVE"
    assert payload["accountId"] == CARD.serial
    assert payload["accountName"] == "Анна Петрова"
    assert payload["loyaltyPoints"]["balance"] == {"int": 1250}
    assert payload["loyaltyPoints"]["label"] == "Баллы"
    assert payload["loyaltyPoints"]["localizedLabel"]["translatedValues"][1] == \
        {"language": "en", "value": "Points"}
    assert payload["secondaryLoyaltyPoints"]["balance"] == {"string": "Gold"}
    assert payload["secondaryLoyaltyPoints"]["label"] == "Уровень"
    assert payload["barcode"] == {"type": "QR_CODE", "value": CARD.serial,
                                  "alternateText": CARD.serial}
    assert payload["linksModuleData"]["uris"][0]["uri"] == CARD.card_url


@pytest.mark.parametrize(("fmt", "google"), [("qr", "QR_CODE"), ("pdf417", "PDF_417"),
                                             ("aztec", "AZTEC"), ("code128", "CODE_128")])
def test_barcode_formats(fmt: str, google: str) -> None:
    payload = loyalty_object(ISSUER, program(barcode_format=fmt), CARD)
    validate("LoyaltyObject", payload)
    assert payload["barcode"]["type"] == google


def test_closed_card_is_inactive() -> None:
    payload = loyalty_object(ISSUER, PROGRAM, card(status="closed"))
    validate("LoyaltyObject", payload)
    assert payload["state"] == "INACTIVE"


def test_member_without_tier_and_program_without_tiers() -> None:
    assert loyalty_object(ISSUER, PROGRAM, card(tier=None))["secondaryLoyaltyPoints"][
        "balance"] == {"string": "—"}
    payload = loyalty_object(ISSUER, program(tiers=False), card(tier=None))
    validate("LoyaltyObject", payload)
    assert "secondaryLoyaltyPoints" not in payload


@pytest.mark.parametrize(("balance", "expected"), [
    (0, {"int": 0}), (-5, {"int": -5}), (2**31 - 1, {"int": 2**31 - 1}),
    (2**31, {"string": "2147483648"}), (-(2**31) - 1, {"string": "-2147483649"})])
def test_balances_beyond_int32_become_strings(balance: int, expected: dict[str, object]) -> None:
    payload = loyalty_object(ISSUER, PROGRAM, card(balance=balance))
    validate("LoyaltyObject", payload)
    assert payload["loyaltyPoints"]["balance"] == expected


def test_patch_carries_only_what_changes_with_points_and_tier() -> None:
    patch = object_patch(PROGRAM, card(balance=1400, tier="Platinum"))
    validate("LoyaltyObject", patch, partial=True)
    assert set(patch) == {"state", "accountName", "loyaltyPoints", "secondaryLoyaltyPoints"}
    assert patch["loyaltyPoints"]["balance"] == {"int": 1400}
    assert patch["secondaryLoyaltyPoints"]["balance"] == {"string": "Platinum"}
    notifying = object_patch(PROGRAM, CARD, notify=True)
    validate("LoyaltyObject", notifying, partial=True)
    assert notifying["notifyPreference"] == "NOTIFY_ON_UPDATE"
    with pytest.raises(SchemaViolation, match=r"\$\.id: required"):
        validate("LoyaltyObject", patch)              # a patch is not a full object


@pytest.mark.parametrize(("changes", "field"), [
    ({"logo_url": "http://cdn.example.com/logo.png"}, "logo_url"),
    ({"hero_url": "ftp://x"}, "hero_url"),
    ({"background_color": "blue"}, "background_color"),
    ({"barcode_format": "ean13"}, "barcode_format"),
    ({"languages": ()}, "languages"),
    ({"stores": (*PROGRAM.stores, PROGRAM.stores[0])}, "stores"),
])
def test_bad_programs_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        loyalty_class(ISSUER, program(**changes))
    assert caught.value.field == field


def test_bad_card_status_is_refused() -> None:
    with pytest.raises(InvalidInput):
        loyalty_object(ISSUER, PROGRAM, card(status="frozen"))


def test_id_prefix_namespaces_classes_and_objects_and_its_absence_keeps_the_ids() -> None:
    assert class_id(ISSUER, 42, prefix=None) == class_id(ISSUER, 42) == f"{ISSUER}.program-42"
    assert object_id(ISSUER, CARD.serial, prefix=None) == object_id(ISSUER, CARD.serial)
    staging = loyalty_object(ISSUER, PROGRAM, CARD, prefix="staging")
    validate("LoyaltyObject", staging)
    assert staging["id"] == object_id(ISSUER, CARD.serial).replace(
        f"{ISSUER}.", f"{ISSUER}.staging.")
    assert staging["classId"] == f"{ISSUER}.staging.program-42"
    assert loyalty_class(ISSUER, PROGRAM, prefix="staging")["id"] == staging["classId"]
    assert loyalty_object(ISSUER, PROGRAM, CARD)["id"] == object_id(ISSUER, CARD.serial)
    assert class_id(ISSUER, 42, prefix="prod") != class_id(ISSUER, 42, prefix="staging")
    for bad in ("", "a.b", "stag ing", "é", "x" * 41):
        with pytest.raises(InvalidInput) as caught:
            class_id(ISSUER, 42, prefix=bad)
        assert caught.value.field == "id_prefix"


def test_object_design_carries_the_barcode_and_the_card_page_link() -> None:
    design = object_design(program(barcode_format="aztec"), CARD)
    validate("LoyaltyObject", design, partial=True)
    assert design["barcode"] == {"type": "AZTEC", "value": CARD.serial,
                                 "alternateText": CARD.serial}
    assert design["linksModuleData"]["uris"][0]["uri"] == CARD.card_url
    assert set(object_design(PROGRAM, card(card_url=None))) == {"barcode"}
    full = loyalty_object(ISSUER, PROGRAM, CARD)
    assert {k: full[k] for k in design} == object_design(PROGRAM, CARD)


def test_messages_make_room_for_one_more_as_silent_text() -> None:
    sent = [loyalty_message({"ru": "Новости", "en": "News"}, {"ru": f"Т{n}", "en": f"T{n}"},
                            notify=n < 3, message_id=f"m{n}") for n in range(MESSAGES_PER_OBJECT)]
    for message in sent:
        validate("AddMessageRequest", {"message": message})
    assert sent[0]["messageType"] == "TEXT_AND_NOTIFY" and sent[0]["header"] == "Новости"
    assert sent[0]["localizedBody"]["translatedValues"][1] == {"language": "en", "value": "T0"}
    from_google = [{**m, "kind": "walletobjects#walletObjectMessage"} for m in sent]
    kept = kept_messages(from_google)
    assert [m["id"] for m in kept] == [f"m{n}" for n in range(1, MESSAGES_PER_OBJECT)]
    assert all(m["messageType"] == "TEXT" and "kind" not in m for m in kept)
    validate("LoyaltyObject", {"messages": [*kept, sent[0]]}, partial=True)
    assert kept_messages(sent[:3]) == [{**m, "messageType": "TEXT"} for m in sent[:3]]
