"""The merchant API for programs, as a merchant's integration would call it."""

from __future__ import annotations

import pytest


def test_create_program_with_only_name_and_kind_gets_defaults(api):
    r = api.post("/programs", {"name": "Coffee", "kind": "points"})
    assert r.status_code == 201
    body = r.json
    assert isinstance(body["id"], int)
    assert body["name"] == "Coffee"
    assert body["currency"] == "RUB"
    assert body["languages"] == ["ru", "en"]
    assert body["template"] == "points"
    assert body["earning"] == {"points": 10, "per_amount": "100"}
    assert body["tiers"] == []
    assert body["design"]["barcode_format"] == "qr"


def test_create_full_program_and_read_it_back(api):
    spec = {
        "name": "Bakery club",
        "kind": "points",
        "currency": "eur",
        "languages": ["en"],
        "template": "tiers",
        "design": {"background_color": "#112233", "logo_text": "Bakery",
                   "contact": {"website": "https://bakery.example"},
                   "locations": [{"latitude": 55.75, "longitude": 37.61,
                                  "relevant_text": "Fresh bread nearby"}]},
        "earning": {"points": 5, "per_amount": "1.50"},
        "tier_basis": "lifetime_spend",
        "tiers": [{"name": "Base", "threshold": 0},
                  {"name": "Gold", "threshold": "250.50", "multiplier": "2"}],
    }
    created = api.post("/programs", spec).json
    got = api.get(f"/programs/{created['id']}")
    assert got.status_code == 200
    assert got.json == created
    assert created["currency"] == "EUR"
    assert created["tiers"][1] == {"name": "Gold", "threshold": "250.50", "multiplier": "2"}
    listed = api.get("/programs").json["items"]
    assert [p["id"] for p in listed] == [created["id"]]


def test_patch_changes_only_given_fields(api):
    program = api.program()
    r = api.patch(f"/programs/{program['id']}",
                  {"name": "Coffee+", "design": {"background_color": "#000000"}})
    assert r.status_code == 200
    assert r.json["name"] == "Coffee+"
    assert r.json["design"]["background_color"] == "#000000"
    assert r.json["earning"] == program["earning"]
    assert api.get(f"/programs/{program['id']}").json["name"] == "Coffee+"


def test_patch_is_validated_against_the_whole_program(api):
    program = api.program(tiers=[{"name": "A", "threshold": 0}, {"name": "B", "threshold": 10}])
    r = api.patch(f"/programs/{program['id']}", {"tiers": [{"name": "A", "threshold": "0.5"}]})
    assert r.status_code == 422
    assert "whole numbers" in r.json["detail"]
    assert api.get(f"/programs/{program['id']}").json["tiers"] == program["tiers"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"kind": "points"}, "name", 422),
        ({"name": "", "kind": "points"}, "name", 422),
        ({"name": "X"}, "kind", 422),
        ({"name": "X", "kind": "lottery"}, "kind", 422),
        ({"name": "X", "kind": "points", "currency": "XYZ"}, "currency", 422),
        ({"name": "X", "kind": "points", "languages": []}, "languages", 422),
        ({"name": "X", "kind": "points", "languages": ["de"]}, "languages.0", 422),
        ({"name": "X", "kind": "points", "design": {"background_color": "red"}},
         "design.background_color", 422),
        ({"name": "X", "kind": "points", "earning": {"points": 0}}, "earning.points", 422),
        ({"name": "X", "kind": "points", "tiers": [{"name": "A", "threshold": 10},
                                                   {"name": "B", "threshold": 5}]}, "tiers", 422),
        ({"name": "X", "kind": "points", "tiers": [{"name": "A", "threshold": 0},
                                                   {"name": "a", "threshold": 5}]}, "tiers", 422),
        ({"name": "X", "kind": "points", "colour": "#000000"}, "colour", 422),
        ({"name": "X", "kind": "points", "design": {"locations": [{"latitude": 91,
                                                                   "longitude": 0}]}},
         "design.locations.0.latitude", 422),
    ],
)
def test_bad_program_is_refused_naming_the_field(api, body, field, status):
    r = api.post("/programs", body)
    assert r.status_code == status
    assert r.mimetype == "application/problem+json"
    assert field in [e["field"] for e in r.json["errors"]]
    assert r.json["detail"]
    assert api.get("/programs").json["items"] == []


def test_body_that_is_not_a_json_object(api):
    r = api.post("/programs", data="not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json["errors"][0]["field"] == "body"
    r = api.post("/programs", json=[1, 2])
    assert r.status_code == 400
    r = api.post("/programs", data="name=x")  # a body of no (or another) media type
    assert r.status_code == 415 and r.json["errors"][0]["field"] == "body"


def test_unknown_program_is_404(api):
    r = api.get("/programs/999999")
    assert r.status_code == 404
    assert r.json["status"] == 404


def test_other_merchants_program_is_404_for_every_verb(api, other_api):
    program = other_api.program(name="Theirs")
    assert api.get(f"/programs/{program['id']}").status_code == 404
    assert api.patch(f"/programs/{program['id']}", {"name": "mine"}).status_code == 404
    assert api.post(f"/programs/{program['id']}/members",
                    {"name": "A", "phone": "+79123456789"}).status_code == 404
    assert api.get("/programs").json["items"] == []
    assert other_api.get(f"/programs/{program['id']}").json["name"] == "Theirs"


def test_unknown_route_and_wrong_method_are_json(api):
    r = api.get("/nope")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = api.client.put("/api/v1/programs", headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
