"""Changing and retiring catalog rewards and coupons through the merchant API, as the cards
and the members' histories show it."""

from __future__ import annotations

import datetime as dt

import pytest
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files


def version(api, member):
    return api.get(f"/members/{member['id']}").json["version"]


def card_fields(api, member):
    return fields(pass_files(api, api.get(f"/members/{member['id']}").json))


# --- rewards ----------------------------------------------------------------------------


@pytest.fixture
def catalog(api):
    program = api.program()
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Croissant", "cost_points": 80}).json
    return program, reward


def test_reward_changes_name_description_and_cost(api, catalog):
    program, reward = catalog
    path = f"/programs/{program['id']}/rewards/{reward['id']}"
    r = api.patch(path, {"name": "Big croissant", "description": "With almonds",
                         "cost_points": 120})
    assert r.status_code == 200, r.json
    assert r.json == {**reward, "name": "Big croissant", "description": "With almonds",
                      "cost_points": 120}
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == [r.json]
    r = api.patch(path, {"description": None}, headers={
        "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json["description"] is None
    # The member pays the new cost.
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/transactions", {"type": "earn", "points": 150})
    r = api.post(f"/members/{m['id']}/rewards/{reward['id']}/redeem")
    assert r.status_code == 201 and r.json["balance"] == 30
    assert r.json["transaction"]["reason"] == "Big croissant"


def test_stamp_reward_switches_its_cost_from_stamps_to_points(api):
    program = api.program(kind="stamps", stamps={"goal": 10, "max_per_window": None})
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Cookie", "cost_stamps": 3}).json
    path = f"/programs/{program['id']}/rewards/{reward['id']}"
    assert api.patch(path, {"cost_points": 2}).status_code == 422  # two costs
    r = api.patch(path, {"cost_stamps": None, "cost_points": 2})
    assert r.status_code == 200
    assert (r.json["cost_stamps"], r.json["cost_points"]) == (None, 2)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"description": "x" * 1001}, "description"),
    ({"cost_points": 0}, "cost_points"),
    ({"cost_points": None, "cost_stamps": 3}, "cost_stamps"),  # a points program
    ({"active": False}, "active"),
    ({"program_id": 7}, "program_id"),
])
def test_bad_reward_patch_is_422_naming_the_field_and_changes_nothing(api, catalog, body,
                                                                      field):
    program, reward = catalog
    r = api.patch(f"/programs/{program['id']}/rewards/{reward['id']}", body)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == [reward]


def test_cost_of_neither_kind_is_refused_as_at_creation(api, catalog):
    program, reward = catalog
    r = api.patch(f"/programs/{program['id']}/rewards/{reward['id']}", {"cost_points": None})
    assert r.status_code == 422
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == [reward]


def test_retired_reward_leaves_the_catalog_and_cannot_be_claimed(api, catalog):
    program, reward = catalog
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/transactions", {"type": "earn", "points": 200})
    claim = f"/members/{m['id']}/rewards/{reward['id']}/redeem"
    assert api.post(claim).status_code == 201
    r = api.post(f"/programs/{program['id']}/rewards/{reward['id']}/retire")
    assert r.status_code == 200 and r.json == {**reward, "active": False}
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == []
    listed = api.get(f"/programs/{program['id']}/rewards",
                     query_string={"include_retired": "true"}).json["items"]
    assert listed == [r.json]
    r = api.post(claim)
    assert r.status_code == 404 and r.json["errors"][0]["field"] == "reward_id"
    assert api.get(f"/members/{m['id']}").json["balance"] == 120
    # The claim made before stays in the history.
    items = api.get(f"/members/{m['id']}/transactions").json["items"]
    assert [i["type"] for i in items] == ["reward", "earn"]
    assert items[0]["reference_id"] == reward["id"]
    again = api.post(f"/programs/{program['id']}/rewards/{reward['id']}/retire")
    assert again.status_code == 200 and again.json["active"] is False


def test_rewards_of_other_programs_and_merchants_are_not_found(api, other_api, catalog):
    program, reward = catalog
    other_program = api.program()
    for path in (f"/programs/{other_program['id']}/rewards/{reward['id']}",
                 f"/programs/{program['id']}/rewards/999999"):
        assert api.patch(path, {"name": "X"}).status_code == 404
        assert api.post(path + "/retire").status_code == 404
    path = f"/programs/{program['id']}/rewards/{reward['id']}"
    assert other_api.patch(path, {"name": "X"}).status_code == 404
    assert other_api.post(path + "/retire").status_code == 404
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == [reward]


# --- coupons ----------------------------------------------------------------------------


def test_coupon_change_reaches_the_cards_that_show_it(api):
    program = api.program()
    anna = api.member(program["id"])
    boris = api.member(program["id"], name="Boris", phone="+7 912 000-00-02")
    now = dt.datetime.now(dt.UTC)
    coupon = api.post(f"/programs/{program['id']}/coupons", {
        "title": "−20% on pastries", "segment": {"member_ids": [anna["id"]]},
        "valid_until": (now + dt.timedelta(days=7)).isoformat()}).json
    before_anna, before_boris = version(api, anna), version(api, boris)
    until = (now + dt.timedelta(days=14)).replace(microsecond=0)
    r = api.patch(f"/programs/{program['id']}/coupons/{coupon['id']}", {
        "title": "−25% on pastries", "description": "Any pastry",
        "valid_until": until.isoformat()})
    assert r.status_code == 200, r.json
    assert r.json["title"] == "−25% on pastries" and r.json["description"] == "Any pastry"
    assert dt.datetime.fromisoformat(r.json["valid_until"]) == until
    assert r.json["granted"] == 1 and r.json["retired_at"] is None
    assert version(api, anna) == before_anna + 1 and version(api, boris) == before_boris
    value = card_fields(api, anna)["coupon"]["value"]
    assert value.startswith("−25% on pastries") and until.date().isoformat() in value
    [held] = api.get(f"/members/{anna['id']}/coupons").json["items"]
    assert held["title"] == "−25% on pastries" and held["description"] == "Any pastry"


@pytest.mark.parametrize(("body", "field"), [
    ({"title": None}, "title"),
    ({"title": "x" * 101}, "title"),
    ({"valid_until": "2030-01-01T00:00:00"}, "valid_until"),   # no time zone
    ({"valid_until": "2020-01-01T00:00:00+00:00"}, "valid_until"),  # before valid_from
    ({"segment": {"tier": "Gold"}}, "segment"),
    ({"valid_from": None}, "valid_from"),
])
def test_bad_coupon_patch_is_422_naming_the_field_and_changes_nothing(api, body, field):
    program = api.program()
    m = api.member(program["id"])
    coupon = api.post(f"/programs/{program['id']}/coupons", {
        "title": "Free croissant", "valid_from": "2025-01-01T00:00:00+00:00"}).json
    before = version(api, m)
    r = api.patch(f"/programs/{program['id']}/coupons/{coupon['id']}", body)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/members/{m['id']}/coupons").json["items"][0]["title"] == "Free croissant"
    assert version(api, m) == before


def test_retired_coupon_leaves_every_card_and_a_used_one_stays_in_history(api):
    program = api.program()
    anna = api.member(program["id"])
    boris = api.member(program["id"], name="Boris", phone="+7 912 000-00-02")
    coupon = api.post(f"/programs/{program['id']}/coupons", {"title": "Free croissant"}).json
    assert coupon["granted"] == 2
    assert api.post(f"/members/{anna['id']}/coupons/{coupon['id']}/redeem").status_code == 201
    assert "coupon" in card_fields(api, boris)
    before_anna, before_boris = version(api, anna), version(api, boris)

    retired = api.post(f"/programs/{program['id']}/coupons/{coupon['id']}/retire")
    assert retired.status_code == 200, retired.json
    assert retired.json["retired_at"] is not None and retired.json["used"] == 1
    # Boris's card showed it: new version, and the coupon is gone from it.
    assert version(api, boris) == before_boris + 1
    assert "coupon" not in card_fields(api, boris)
    assert version(api, anna) == before_anna  # hers showed it no more
    r = api.post(f"/members/{boris['id']}/coupons/{coupon['id']}/redeem")
    assert r.status_code == 404 and r.json["errors"][0]["field"] == "coupon_id"
    assert api.get(f"/members/{boris['id']}/coupons").json["items"] == []
    # Anna used it: it stays among her coupons and in her history.
    [used] = api.get(f"/members/{anna['id']}/coupons").json["items"]
    assert used["used_at"] is not None and used["retired_at"] is not None
    items = api.get(f"/members/{anna['id']}/transactions").json["items"]
    assert items[0]["type"] == "coupon" and items[0]["reason"] == "Free croissant"
    # Retiring twice changes nothing; nor does the daily job bring it back.
    again = api.post(f"/programs/{program['id']}/coupons/{coupon['id']}/retire")
    assert again.status_code == 200 and again.json["retired_at"] == retired.json["retired_at"]
    assert version(api, boris) == before_boris + 1


def test_retired_coupon_that_starts_later_is_not_refreshed_by_the_daily_job(api):
    program = api.program()
    m = api.member(program["id"])
    now = dt.datetime.now(dt.UTC)
    coupon = api.post(f"/programs/{program['id']}/coupons", {
        "title": "Free croissant", "valid_from": (now + dt.timedelta(days=1)).isoformat(),
        "valid_until": (now + dt.timedelta(days=3)).isoformat()}).json
    before = version(api, m)
    api.post(f"/programs/{program['id']}/coupons/{coupon['id']}/retire")
    assert version(api, m) == before  # not shown yet, so no card changed
    assert api.run_daily((now + dt.timedelta(days=2)).date())["coupons_refreshed"] == 0
    assert version(api, m) == before


def test_coupons_of_other_programs_and_merchants_are_not_found(api, other_api):
    program = api.program()
    api.member(program["id"])
    coupon = api.post(f"/programs/{program['id']}/coupons", {"title": "Free croissant"}).json
    other_program = api.program()
    for who, path in ((api, f"/programs/{other_program['id']}/coupons/{coupon['id']}"),
                      (api, f"/programs/{program['id']}/coupons/999999"),
                      (other_api, f"/programs/{program['id']}/coupons/{coupon['id']}")):
        assert who.patch(path, {"title": "X"}).status_code == 404
        assert who.post(path + "/retire").status_code == 404


def test_catalog_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/programs/{program_id}/rewards/{reward_id}",
                 "/programs/{program_id}/coupons/{coupon_id}"):
        patch = paths[path]["patch"]
        assert "application/merge-patch+json" in patch["requestBody"]["content"]
        assert {"404", "422"} <= set(patch["responses"])
        assert "404" in paths[path + "/retire"]["post"]["responses"]
    params = paths["/programs/{program_id}/rewards"]["get"]["parameters"]
    assert any(p["name"] == "include_retired" and p["in"] == "query" for p in params)
