"""Store locations: the merchant's stores through the API, and on the cards that show them
(the Apple pass's ``locations``, the Google object's ``merchantLocations``)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from api_support import Api
from sqlalchemy import func
from sqlalchemy import select

# The Google Wallet stand-in and the service configured for it, as the Google card tests
# set them up.
from test_google_cards import account  # noqa: F401
from test_google_cards import gapi  # noqa: F401
from test_google_cards import gapp  # noqa: F401
from test_google_cards import google  # noqa: F401
from test_google_cards import keys  # noqa: F401
from test_google_cards import patches
from test_google_cards import saved
from test_google_cards import worker  # noqa: F401

from wallet_service.models import CardChange
from wallet_service.models import LoyaltyCard

TVERSKAYA = {"name": "Tverskaya", "address": "Tverskaya 1, Moscow", "latitude": 55.7575,
             "longitude": 37.6135, "relevant_text": "Coffee on Tverskaya is near"}
ARBAT = {"name": "Arbat", "address": "Arbat 10, Moscow", "latitude": 55.7520,
         "longitude": 37.5925}


def store(n: int) -> dict:
    return {"name": f"Store {n}", "address": f"Street {n}", "latitude": 50 + n / 100,
            "longitude": 30 + n / 100}


def design_location(n: int) -> dict:
    return {"latitude": 40 + n / 100, "longitude": 20 + n / 100, "relevant_text": f"D{n}"}


def pass_json(api: Api, member: dict) -> dict:
    r = api.client.get(member["apple_pass_url"].removeprefix("https://wallet.example.test"))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json"))


def points(locations: list[dict]) -> list[tuple[float, float]]:
    return [(loc["latitude"], loc["longitude"]) for loc in locations]


def version(api: Api, member: dict) -> int:
    return api.get(f"/members/{member['id']}").json["version"]


def published(app, member: dict) -> int:
    """Changes of the member's card waiting in the outbox for the phones."""
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(func.count()).select_from(CardChange)
                        .join(LoyaltyCard, LoyaltyCard.id == CardChange.card_id)
                        .where(LoyaltyCard.member_id == member["id"]))


# --- the API ------------------------------------------------------------------------------


def test_create_read_list_change_and_delete_a_location(api):
    r = api.post("/locations", TVERSKAYA)
    assert r.status_code == 201, r.json
    created = r.json
    assert isinstance(created["id"], int)
    assert {k: created[k] for k in TVERSKAYA} == TVERSKAYA
    assert created["time_zone"] is None and created["effective_time_zone"] == "Europe/Moscow"
    assert api.get(f"/locations/{created['id']}").json == created
    second = api.post("/locations", {**ARBAT, "time_zone": "Europe/Kaliningrad"}).json
    assert second["effective_time_zone"] == "Europe/Kaliningrad"
    assert [loc["id"] for loc in api.get("/locations").json["items"]] == [created["id"],
                                                                          second["id"]]

    r = api.patch(f"/locations/{created['id']}",
                  {"relevant_text": "Show your card at the till", "time_zone": "Asia/Omsk"})
    assert r.status_code == 200, r.json
    assert r.json["relevant_text"] == "Show your card at the till"
    assert r.json["effective_time_zone"] == "Asia/Omsk"
    assert r.json["name"] == "Tverskaya" and r.json["latitude"] == 55.7575
    # null clears the optional fields: the merchant's zone, the card's own words.
    r = api.patch(f"/locations/{created['id']}", {"time_zone": None, "relevant_text": None})
    assert (r.json["time_zone"], r.json["effective_time_zone"], r.json["relevant_text"]) == (
        None, "Europe/Moscow", None)
    # A location without its own zone follows the merchant's.
    api.patch("/merchant", {"time_zone": "Asia/Vladivostok"})
    assert api.get(f"/locations/{created['id']}").json["effective_time_zone"] == \
        "Asia/Vladivostok"

    assert api.delete(f"/locations/{second['id']}").status_code == 204
    assert api.get(f"/locations/{second['id']}").status_code == 404
    assert api.delete(f"/locations/{second['id']}").status_code == 404
    assert api.patch(f"/locations/{second['id']}", {"name": "X"}).status_code == 404
    assert [loc["id"] for loc in api.get("/locations").json["items"]] == [created["id"]]
    # Ids stay with their store: the next one never gets the deleted one's id.
    third = api.post("/locations", ARBAT).json
    assert third["id"] not in (created["id"], second["id"])


@pytest.mark.parametrize(("change", "field"), [
    ({"latitude": 90.5}, "latitude"),
    ({"latitude": -91}, "latitude"),
    ({"longitude": 180.01}, "longitude"),
    ({"longitude": -200}, "longitude"),
    ({"latitude": "55.7"}, "latitude"),
    ({"latitude": True}, "latitude"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"address": ""}, "address"),
    ({"time_zone": "Moscow"}, "time_zone"),
    ({"relevant_text": "x" * 201}, "relevant_text"),
    ({"till": 3}, "till"),
])
def test_bad_location_names_the_field_and_writes_nothing(api, change, field):
    r = api.post("/locations", {**TVERSKAYA, **change})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get("/locations").json["items"] == []
    created = api.post("/locations", TVERSKAYA).json
    r = api.patch(f"/locations/{created['id']}", change)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/locations/{created['id']}").json == created


@pytest.mark.parametrize("body", [{"name": "Tverskaya"}, {**TVERSKAYA, "latitude": None}])
def test_a_location_needs_its_place(api, body):
    r = api.post("/locations", body)
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] in ("address", "latitude")


@pytest.mark.parametrize("field", ["name", "address", "latitude", "longitude"])
def test_required_fields_cannot_be_cleared(api, field):
    created = api.post("/locations", TVERSKAYA).json
    r = api.patch(f"/locations/{created['id']}", {field: None})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == field
    assert api.get(f"/locations/{created['id']}").json == created


def test_another_merchant_cannot_see_or_change_a_location(api, other_api):
    created = api.post("/locations", TVERSKAYA).json
    path = f"/locations/{created['id']}"
    assert other_api.get(path).status_code == 404
    assert other_api.patch(path, {"name": "Mine"}).status_code == 404
    assert other_api.delete(path).status_code == 404
    assert other_api.get("/locations").json["items"] == []
    assert api.get(path).json == created


def test_locations_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/locations"]) == {"get", "post"}
    assert set(paths["/locations/{location_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/merchant"]) == {"get", "patch"}
    assert "422" in paths["/locations"]["post"]["responses"]
    assert "422" in paths["/merchant"]["patch"]["responses"]
    assert "404" in paths["/locations/{location_id}"]["delete"]["responses"]


# --- on the Apple pass --------------------------------------------------------------------


def test_pass_shows_the_design_locations_then_the_stores(api):
    program = api.program(design={"locations": [design_location(1)]})
    member = api.member(program["id"])
    api.post("/locations", TVERSKAYA)
    api.post("/locations", ARBAT)
    locations = pass_json(api, member)["locations"]
    assert locations == [
        {"latitude": 40.01, "longitude": 20.01, "relevantText": "D1"},
        {"latitude": 55.7575, "longitude": 37.6135, "relevantText": "Coffee on Tverskaya is near"},
        # Without a text of its own: the template's words, localized in pass.strings.
        {"latitude": 55.752, "longitude": 37.5925, "relevantText": "location.relevant"},
    ]


def test_over_ten_the_design_locations_win_then_the_oldest_stores(api):
    program = api.program(design={"locations": [design_location(n) for n in range(8)]})
    member = api.member(program["id"])
    stores = [api.post("/locations", store(n)).json for n in range(5)]
    shown = points(pass_json(api, member)["locations"])
    assert len(shown) == 10
    assert shown[:8] == points([design_location(n) for n in range(8)])
    assert shown[8:] == points(stores[:2])
    # Deleting a shown store lets the next one in.
    api.delete(f"/locations/{stores[0]['id']}")
    assert points(pass_json(api, member)["locations"])[8:] == points(stores[1:3])


def test_a_store_at_a_design_location_is_shown_once(api):
    program = api.program(design={"locations": [{"latitude": 55.7575, "longitude": 37.6135}]})
    member = api.member(program["id"])
    api.post("/locations", TVERSKAYA)
    assert points(pass_json(api, member)["locations"]) == [(55.7575, 37.6135)]


def test_a_location_change_updates_the_cards_that_show_it(app, api):
    full = api.program(name="Full", design={"locations": [design_location(n) for n in range(10)]})
    open_ = api.program(name="Open")
    shown_full = api.member(full["id"], phone="+7 912 000-00-01")
    shown_open = api.member(open_["id"], phone="+7 912 000-00-02")
    assert "locations" not in pass_json(api, shown_open)
    before = {m["id"]: version(api, m) for m in (shown_full, shown_open)}
    published_before = {m["id"]: published(app, m) for m in (shown_full, shown_open)}

    created = api.post("/locations", TVERSKAYA).json
    # The open program's cards show the store: a new version, published for the phones.
    assert version(api, shown_open) == before[shown_open["id"]] + 1
    # The full program shows its ten design locations only: nothing changed there.
    assert version(api, shown_full) == before[shown_full["id"]]
    assert points(pass_json(api, shown_open)["locations"]) == [(55.7575, 37.6135)]

    api.patch(f"/locations/{created['id']}", {"latitude": 55.76})
    assert version(api, shown_open) == before[shown_open["id"]] + 2
    assert points(pass_json(api, shown_open)["locations"]) == [(55.76, 37.6135)]
    # A change nobody sees (the address) gives no new version.
    api.patch(f"/locations/{created['id']}", {"address": "Tverskaya 3"})
    assert version(api, shown_open) == before[shown_open["id"]] + 2

    api.delete(f"/locations/{created['id']}")
    assert version(api, shown_open) == before[shown_open["id"]] + 3
    assert "locations" not in pass_json(api, shown_open)
    assert version(api, shown_full) == before[shown_full["id"]]
    # Each new version went to the outbox, for the phones' pushes.
    assert published(app, shown_open) == published_before[shown_open["id"]] + 3
    assert published(app, shown_full) == published_before[shown_full["id"]]


def test_another_merchants_stores_stay_off_the_cards(api, other_api):
    member = api.member(api.program()["id"])
    other_api.post("/locations", TVERSKAYA)
    assert "locations" not in pass_json(api, member)


# --- on the Google object -----------------------------------------------------------------


def test_google_object_carries_the_stores_as_merchant_locations(gapi, google, worker):  # noqa: F811
    program = gapi.program(design={"locations": [design_location(1)]})
    gapi.post("/locations", TVERSKAYA)
    member = gapi.member(program["id"])
    oid = saved(gapi, member)
    assert google.objects[oid]["merchantLocations"] == [
        {"latitude": 40.01, "longitude": 20.01}, {"latitude": 55.7575, "longitude": 37.6135}]

    # A new store reaches the saved object through the worker, as one silent patch.
    worker.run_once()
    google.clear_requests()
    gapi.post("/locations", ARBAT)
    worker.run_once()
    assert google.objects[oid]["merchantLocations"][-1] == {"latitude": 55.752,
                                                            "longitude": 37.5925}
    sent = patches(google, oid)
    assert len(sent) == 1 and "notifyPreference" not in sent[0].body
    # Deleting every store leaves the program's own location only.
    for loc in gapi.get("/locations").json["items"]:
        gapi.delete(f"/locations/{loc['id']}")
    worker.run_once()
    assert google.objects[oid]["merchantLocations"] == [{"latitude": 40.01, "longitude": 20.01}]
