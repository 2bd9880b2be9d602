"""PATCH /programs/{id} is a JSON Merge Patch (RFC 7396): objects merge key by key, lists
replace whole, null clears; what a patch leaves out stays as it is."""

from __future__ import annotations

import copy
import json

import pytest
from test_apple_cards import download
from test_apple_cards import open_pass

from wallet_service.merge_patch import merge_patch

MERGE = "application/merge-patch+json"

DESIGN = {
    "background_color": "#112233",
    "foreground_color": "#ffffff",
    "label_color": "#cccccc",
    "logo_text": "Bakery",
    "description": "Bakery club card",
    "points_label": "Crumbs",
    "rules_text": "10 crumbs per 100 RUB",
    "terms_text": "Terms apply",
    "contact": {"phone": "+7 495 123-45-67", "email": "hi@bakery.example",
                "website": "https://bakery.example"},
    "barcode_format": "pdf417",
    "locations": [{"latitude": 55.75, "longitude": 37.61, "relevant_text": "Fresh bread"}],
}


def patch(api, program, body, content_type="application/json"):
    return api.client.patch(f"/api/v1/programs/{program['id']}", data=json.dumps(body),
                            headers={"Authorization": f"Bearer {api.key}",
                                     "Content-Type": content_type})


def changed(before, after, *keys):
    """``after`` is ``before`` with only ``keys`` (top-level) different; returns them."""
    skip = {"updated_at", *keys}
    assert {k: v for k, v in after.items() if k not in skip} == \
        {k: v for k, v in before.items() if k not in skip}
    return {k: after[k] for k in keys}


def test_design_merges_key_by_key(api):
    program = api.program(design=DESIGN)
    r = patch(api, program, {"design": {"background_color": "#aa0000"}}, MERGE)
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "design")["design"] == {**DESIGN,
                                                           "background_color": "#aa0000"}
    assert api.get(f"/programs/{program['id']}").json == r.json


def test_design_contact_merges_and_locations_replace_whole(api):
    program = api.program(design=DESIGN)
    r = patch(api, program, {"design": {
        "contact": {"phone": "+7 495 000-00-00"},
        "locations": [{"latitude": 59.93, "longitude": 30.31}],
    }})
    assert r.status_code == 200, r.json
    design = changed(program, r.json, "design")["design"]
    assert design["contact"] == {**DESIGN["contact"], "phone": "+7 495 000-00-00"}
    assert design["locations"] == [{"latitude": 59.93, "longitude": 30.31,
                                    "relevant_text": None}]
    assert {k: v for k, v in design.items() if k not in ("contact", "locations")} == \
        {k: v for k, v in DESIGN.items() if k not in ("contact", "locations")}


def test_earning_merges(api):
    program = api.program(earning={"points": 5, "per_amount": "50"})
    r = patch(api, program, {"earning": {"points": 7}})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "earning")["earning"] == {"points": 7, "per_amount": "50"}


def test_stamps_merge(api):
    program = api.program(kind="stamps", stamps={"goal": 8, "reward": "a free croissant",
                                                 "per_purchase": 2, "min_amount": "150",
                                                 "max_per_window": 3, "window_minutes": 30})
    r = patch(api, program, {"stamps": {"goal": 10}})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "stamps")["stamps"] == {**program["stamps"], "goal": 10}


def test_cashback_merges_and_its_categories_merge_too(api):
    program = api.program(kind="cashback", cashback={
        "percent": "3", "categories": {"coffee": "10", "bakery": "7"},
        "max_redeem_percent": "30", "category_rate_overrides_tier": True})
    r = patch(api, program, {"cashback": {"categories": {"coffee": "12", "bakery": None,
                                                          "tea": "4"}}})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "cashback")["cashback"] == {
        "percent": "3", "categories": {"coffee": "12", "tea": "4"}, "max_redeem_percent": "30",
        "category_rate_overrides_tier": True}


def test_excluded_merges_and_its_lists_replace_whole(api):
    program = api.program(excluded={"skus": ["A1", "B2"], "categories": ["tobacco"]})
    r = patch(api, program, {"excluded": {"skus": ["C3"]}})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "excluded")["excluded"] == {"skus": ["C3"],
                                                                "categories": ["tobacco"]}


def test_bonuses_merge(api):
    bonuses = {"welcome": 100, "birthday": 200, "referrer": 50, "referred": 25, "winback": 70,
               "winback_after_days": 90, "actions": {"review": 30, "survey": 10},
               "action_period_days": 30}
    program = api.program(bonuses=bonuses)
    r = patch(api, program, {"bonuses": {"welcome": 5, "actions": {"survey": None}}}, MERGE)
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "bonuses")["bonuses"] == {
        **bonuses, "welcome": 5, "actions": {"review": 30}}


def test_enrollment_merges_consent_per_language_and_keeps_the_questions(api):
    questions = [{"key": "drink", "type": "choice", "label": {"en": "Drink?", "ru": "Напиток?"},
                  "required": True, "options": ["tea", "coffee"]}]
    program = api.program(enrollment={"consent_text": {"ru": "Согласен", "en": "I agree"},
                                      "questions": questions})
    r = patch(api, program, {"enrollment": {"consent_text": {"ru": "Я согласен"}}})
    assert r.status_code == 200, r.json
    enrollment = changed(program, r.json, "enrollment")["enrollment"]
    assert enrollment == {"consent_text": {"ru": "Я согласен", "en": "I agree"},
                          "marketing_consent_text": None, "questions": questions}


def test_tiers_list_replaces_whole(api):
    program = api.program(tiers=[{"name": "Base", "threshold": 0},
                                 {"name": "Gold", "threshold": 500, "multiplier": "2"}])
    r = patch(api, program, {"tiers": [{"name": "Only", "threshold": 0}]})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "tiers")["tiers"] == [
        {"name": "Only", "threshold": "0", "multiplier": "1"}]


def test_languages_list_replaces_whole(api):
    program = api.program()
    r = patch(api, program, {"languages": ["en"]})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "languages")["languages"] == ["en"]


def test_scalars_change_and_nothing_else(api):
    program = api.program(design=DESIGN, points_validity_days=365)
    r = patch(api, program, {"name": "Bakery+", "expiry_reminder_days": 7})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "name", "expiry_reminder_days") == {
        "name": "Bakery+", "expiry_reminder_days": 7}


def test_null_clears_an_optional_field(api):
    program = api.program(design=DESIGN, points_validity_days=365, tier_window_days=90)
    r = patch(api, program, {"design": {"rules_text": None, "contact": {"email": None},
                                        "barcode_format": None},
                             "points_validity_days": None, "tier_window_days": None}, MERGE)
    assert r.status_code == 200, r.json
    got = changed(program, r.json, "design", "points_validity_days", "tier_window_days")
    assert got["design"] == {**DESIGN, "rules_text": None, "barcode_format": "qr",
                             "contact": {**DESIGN["contact"], "email": None}}
    assert got["points_validity_days"] is None and got["tier_window_days"] is None


def test_null_on_a_nullable_field_with_a_default_means_none(api):
    """``stamps.max_per_window`` is documented as "null: no limit", so null is None there
    rather than the default of one stamp per window."""
    program = api.program(kind="stamps", stamps={"max_per_window": 3})
    r = patch(api, program, {"stamps": {"max_per_window": None}})
    assert r.status_code == 200, r.json
    assert r.json["stamps"] == {**program["stamps"], "max_per_window": None}
    r = patch(api, program, {"stamps": {"goal": 9}})
    assert r.json["stamps"]["max_per_window"] is None


def test_null_clears_a_whole_nested_object_back_to_its_defaults(api):
    program = api.program(design=DESIGN, bonuses={"welcome": 100})
    r = patch(api, program, {"bonuses": None})
    assert r.status_code == 200, r.json
    assert changed(program, r.json, "bonuses")["bonuses"]["welcome"] == 0


@pytest.mark.parametrize("body, field", [
    ({"name": None}, "name"),
    ({"currency": None}, "currency"),
    ({"kind": None}, "kind"),
    ({"name": None, "design": {"background_color": "#000000"}}, "name"),
])
def test_null_on_a_required_field_is_422_and_changes_nothing(api, body, field):
    program = api.program(design=DESIGN)
    r = patch(api, program, body, MERGE)
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert [e["field"] for e in r.json["errors"]] == [field]
    assert r.json["detail"].startswith(f"{field}: ")
    assert api.get(f"/programs/{program['id']}").json == program


@pytest.mark.parametrize("body, field", [
    ({"design": {"background_color": "red"}}, "design.background_color"),
    ({"design": {"background_color": 5}}, "design.background_color"),
    ({"design": {"contact": {"website": "ftp://x"}}}, "design.contact.website"),
    ({"design": {"colour": "#000000"}}, "design.colour"),
    ({"design": "dark"}, "design"),
    ({"earning": {"points": "many"}}, "earning.points"),
    ({"bonuses": {"actions": {"review": 0}}}, "bonuses.actions.review"),
    ({"tiers": [{"name": None, "threshold": 0}]}, "tiers.0.name"),
    ({"tiers": {"name": "Gold"}}, "tiers"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"expiry_reminder_days": "soon"}, "expiry_reminder_days"),
    ({"colour": "#000000"}, "colour"),
    ({"colour": {"a": 1}}, "colour"),
    ({"kind": "stamps"}, "kind"),
    ({"enrollment": {"consent_text": {"ru": None, "en": None}}}, "enrollment.consent_text"),
])
def test_wrong_patch_is_422_naming_the_field_and_changes_nothing(api, body, field):
    program = api.program(design=DESIGN)
    r = patch(api, program, body)
    assert r.status_code == 422, r.json
    assert field in [e["field"] for e in r.json["errors"]]
    assert api.get(f"/programs/{program['id']}").json == program


def test_merged_program_is_still_validated_as_a_whole(api):
    program = api.program(kind="discount", tiers=[{"name": "A", "threshold": 0,
                                                   "discount_percent": "5"}])
    r = patch(api, program, {"tiers": []})
    assert r.status_code == 422
    assert "tiers" in [e["field"] for e in r.json["errors"]]


def test_content_types(api):
    program = api.program()
    assert patch(api, program, {"name": "A"}, MERGE).json["name"] == "A"
    assert patch(api, program, {"name": "B"}, f"{MERGE}; charset=utf-8").json["name"] == "B"
    assert patch(api, program, {"name": "C"}).json["name"] == "C"
    r = patch(api, program, {"name": "D"}, "text/plain")
    assert r.status_code == 415 and r.json["errors"][0]["field"] == "body"
    assert MERGE in r.json["detail"]
    r = api.client.patch(f"/api/v1/programs/{program['id']}", data="[1]",
                         headers={"Authorization": f"Bearer {api.key}", "Content-Type": MERGE})
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "body"
    r = api.client.patch(f"/api/v1/programs/{program['id']}", data="{",
                         headers={"Authorization": f"Bearer {api.key}", "Content-Type": MERGE})
    assert r.status_code == 400
    assert api.get(f"/programs/{program['id']}").json["name"] == "C"


def test_other_merchants_program_is_404(api, other_api):
    theirs = other_api.program(name="Theirs")
    assert patch(api, theirs, {"name": "mine"}, MERGE).status_code == 404
    assert other_api.get(f"/programs/{theirs['id']}").json["name"] == "Theirs"


def test_openapi_lists_both_media_types_and_says_merge_patch(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/programs/{program_id}"]["patch"]
    content = op["requestBody"]["content"]
    assert set(content) == {"application/json", MERGE}
    assert content["application/json"] == content[MERGE]
    ref = content[MERGE]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = doc["components"]["schemas"][ref]
    assert schema["additionalProperties"] is False and not schema.get("required")
    for text in (op["description"], op["requestBody"]["description"]):
        assert "RFC 7396" in text and "lists" in text and "null" in text
    # Other operations keep plain JSON.
    assert set(doc["paths"]["/programs"]["post"]["requestBody"]["content"]) == {
        "application/json"}


def test_pass_gets_the_new_colour_and_keeps_the_untouched_texts(api):
    program = api.program(design=DESIGN)
    member = api.member(program["id"])
    r = patch(api, program, {"design": {"background_color": "#aa0000"}}, MERGE)
    assert r.status_code == 200, r.json
    fresh = api.get(f"/members/{member['id']}").json
    assert fresh["version"] == member["version"] + 1
    pj = json.loads(open_pass(download(api, fresh).data)["pass.json"])
    assert pj["backgroundColor"] == "rgb(170, 0, 0)"
    assert pj["foregroundColor"] == "rgb(255, 255, 255)"
    assert pj["logoText"] == "Bakery"
    back = {f["key"]: f["value"] for f in pj["storeCard"]["backFields"]}
    assert back["rules"] == DESIGN["rules_text"]
    assert back["terms"] == DESIGN["terms_text"]
    assert back["phone"] == DESIGN["contact"]["phone"]
    assert back["website"] == DESIGN["contact"]["website"]
    assert back["email"] == DESIGN["contact"]["email"]
    assert pj["locations"][0]["relevantText"] == "Fresh bread"


# --- the merge function itself ---------------------------------------------------------

# RFC 7396, Appendix A.
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target, patch_, expected", RFC_EXAMPLES)
def test_merge_patch_rfc_7396_examples(target, patch_, expected):
    assert merge_patch(target, patch_) == expected


def test_merge_patch_keeps_nulls_inside_lists_and_changes_neither_argument():
    target = {"a": {"b": [1, {"c": 2}]}, "d": {"e": 1}}
    patch_ = {"a": {"b": [None, {"c": None}]}, "d": {"f": {"g": 1}}}
    before = copy.deepcopy((target, patch_))
    result = merge_patch(target, patch_)
    assert result == {"a": {"b": [None, {"c": None}]}, "d": {"e": 1, "f": {"g": 1}}}
    assert (target, patch_) == before
    result["d"]["e"] = 99
    result["a"]["b"][1]["c"] = 5
    assert (target, patch_) == before


def test_merge_patch_of_empty_object_is_a_copy():
    target = {"a": {"b": 1}}
    result = merge_patch(target, {})
    assert result == target and result is not target and result["a"] is not target["a"]
