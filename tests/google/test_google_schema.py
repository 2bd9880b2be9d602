"""The Discovery-based validator (spec §6.5): types, enums, $ref, unknown fields, paths."""

from __future__ import annotations

import copy
import importlib.util
import json
from typing import Any

import pytest
from google_helpers import CARD
from google_helpers import ISSUER
from google_helpers import PROGRAM

from wallet_service.google import DISCOVERY_REVISION
from wallet_service.google import SchemaViolation
from wallet_service.google import discovery_document
from wallet_service.google import loyalty_class
from wallet_service.google import loyalty_object
from wallet_service.google import validate


def test_vendored_document_is_the_named_revision() -> None:
    document = discovery_document()
    assert document["name"] == "walletobjects" and document["version"] == "v1"
    assert document["revision"] == DISCOVERY_REVISION
    assert {"LoyaltyClass", "LoyaltyObject", "AddMessageRequest"} <= set(document["schemas"])
    assert "notifyPreference" in document["schemas"]["LoyaltyObject"]["properties"]


@pytest.mark.skipif(importlib.util.find_spec("googleapiclient") is None,
                    reason="google-api-python-client not installed")
def test_vendored_document_matches_the_installed_client_library() -> None:  # pragma: no cover
    from googleapiclient.discovery_cache import get_static_doc  # type: ignore[import-not-found]

    installed = json.loads(get_static_doc("walletobjects", "v1"))
    if installed["revision"] != DISCOVERY_REVISION:
        pytest.skip(f"installed library has revision {installed['revision']}")
    assert installed == discovery_document()


def _object() -> dict[str, Any]:
    return copy.deepcopy(loyalty_object(ISSUER, PROGRAM, CARD))


def _broken(path: list[str | int], value: Any) -> dict[str, Any]:
    payload = _object()
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(("path", "value", "where", "message"), [
    (["foo"], 1, "$.foo", "unknown field 'foo'"),
    (["loyaltyPoints", "balance"], {"integer": 5}, "$.loyaltyPoints.balance.integer",
     "unknown field"),
    (["barcode", "type"], "QR", "$.barcode.type", "not one of"),
    (["state"], "active_now", "$.state", "not one of"),
    (["notifyPreference"], "notifyOnUpdate", "$.notifyPreference", "not one of"),
    (["state"], "active", "$.state", "deprecated alias"),
    (["locations"], [], "$.locations", "deprecated field"),
    (["loyaltyPoints", "balance", "int"], 2**31, "$.loyaltyPoints.balance.int", "int32"),
    (["loyaltyPoints", "balance", "int"], True, "$.loyaltyPoints.balance.int", "integer"),
    (["loyaltyPoints", "balance", "int"], "5", "$.loyaltyPoints.balance.int", "integer"),
    (["accountName"], 5, "$.accountName", "expected a string"),
    (["linksModuleData", "uris", 0, "bogus"], "x", "$.linksModuleData.uris[0].bogus",
     "unknown field 'bogus' for Uri"),
    (["linksModuleData", "uris"], {"uri": "x"}, "$.linksModuleData.uris", "array"),
    (["loyaltyPoints", "localizedLabel", "translatedValues", 1, "language"], None,
     "$.loyaltyPoints.localizedLabel.translatedValues[1].language", "expected a string"),
    (["classReference"], {}, "$.classReference", "set by Google"),
    (["hasUsers"], True, "$.hasUsers", "set by Google"),
    (["id"], f"{ISSUER}.café", "$.id", "spec §7.3"),
    (["classId"], "ISSUER_ID.program-1", "$.classId", "spec §7.3"),
    (["loyaltyPoints", "balance"], {"int": 1, "string": "1"}, "$.loyaltyPoints.balance",
     "exactly one"),
    (["loyaltyPoints"], {"label": "Points"}, "$.loyaltyPoints.balance", "required"),
    (["merchantLocations"], [{"latitude": 1.0, "longitude": 2.0}] * 11, "$.merchantLocations",
     "at most 10"),
    (["merchantLocations"], [{"latitude": 91.0, "longitude": 2.0}],
     "$.merchantLocations[0].latitude", "outside"),
    (["textModulesData"], [{"id": "a.b", "body": "x"}], "$.textModulesData[0].id", "dots"),
])
def test_violations_name_the_json_path(path: list[str | int], value: Any, where: str,
                                       message: str) -> None:
    with pytest.raises(SchemaViolation, match=message) as caught:
        validate("LoyaltyObject", _broken(path, value))
    assert caught.value.path == where
    assert caught.value.field == where


def test_class_rules() -> None:
    payload = loyalty_class(ISSUER, PROGRAM)
    for status in ("APPROVED", "REJECTED"):
        with pytest.raises(SchemaViolation, match="UNDER_REVIEW"):
            validate("LoyaltyClass", {**payload, "reviewStatus": status})
    with pytest.raises(SchemaViolation, match="exactly one of sourceUri"):
        validate("LoyaltyClass", {**payload, "programLogo": {
            "sourceUri": {"uri": "https://x"}, "privateImageId": "p"}})
    del payload["programLogo"]
    with pytest.raises(SchemaViolation, match=r"\$\.programLogo: required"):
        validate("LoyaltyClass", payload)


def test_lenient_mode_accepts_what_google_accepts_but_no_unknown_fields() -> None:
    validate("LoyaltyObject", _broken(["state"], "active"), strict=False)
    validate("LoyaltyObject", _broken(["classReference"], {"id": f"{ISSUER}.x"}), strict=False)
    with pytest.raises(SchemaViolation, match="unknown field"):
        validate("LoyaltyObject", _broken(["message_type"], "TEXT"), strict=False)


def test_int64_fields_take_digit_strings() -> None:
    money = {"currencyCode": "RUB", "micros": "12500000"}
    validate("LoyaltyObject", _broken(["loyaltyPoints", "balance"], {"money": money}))
    with pytest.raises(SchemaViolation, match="int64"):
        validate("LoyaltyObject", _broken(["loyaltyPoints", "balance"],
                                          {"money": {**money, "micros": "12.5"}}))


def test_messages_and_unknown_kinds() -> None:
    validate("AddMessageRequest", {"message": {"id": "m1", "header": "h", "body": "b",
                                               "messageType": "TEXT_AND_NOTIFY"}})
    with pytest.raises(SchemaViolation, match=r"\$\.message\.message_type"):
        validate("AddMessageRequest", {"message": {"message_type": "TEXT"}})
    with pytest.raises(ValueError, match="unknown Discovery schema"):
        validate("NoSuchThing", {})
