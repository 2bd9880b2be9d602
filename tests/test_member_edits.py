"""Changing a member's details (JSON Merge Patch) and tiers the merchant assigns, through the
merchant API, the downloaded pass and the daily job."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select
from test_mechanics_automations import daily
from test_mechanics_automations import history
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files

from wallet_service.models import CardChange


def pending_changes(session, member):
    from wallet_service.models import LoyaltyCard

    count = session.scalar(
        select(func.count()).select_from(CardChange)
        .join(LoyaltyCard, LoyaltyCard.id == CardChange.card_id)
        .where(LoyaltyCard.member_id == member["id"]))
    session.commit()
    return count


# --- PATCH /members/{id} ------------------------------------------------------------------


def test_new_name_reaches_the_downloaded_pass(api, session):
    program = api.program()
    m = api.member(program["id"], name="Anna", email="anna@example.com",
                   birthday="1990-05-17", external_id="crm-1")
    assert fields(pass_files(api, m))["member"]["value"] == "Anna"
    queued = pending_changes(session, m)
    r = api.patch(f"/members/{m['id']}", {"name": "Anna Smirnova"})
    assert r.status_code == 200, r.json
    got = r.json
    assert got["name"] == "Anna Smirnova" and got["version"] == m["version"] + 1
    # Only the name changed; the rest is as enrolled.
    for key in ("phone", "email", "birthday", "external_id"):
        assert got[key] == m[key]
    assert pending_changes(session, m) == queued + 1  # the push is queued with the change
    assert fields(pass_files(api, got))["member"]["value"] == "Anna Smirnova"
    assert api.get(f"/members/{m['id']}").json == got


def test_phone_is_normalized_and_null_clears_optional_fields(api, session):
    program = api.program()
    m = api.member(program["id"], email="anna@example.com", birthday="1990-05-17",
                   external_id="crm-1")
    queued = pending_changes(session, m)
    r = api.patch(f"/members/{m['id']}", {"phone": "8 (912) 000-00-01", "email": None,
                                          "birthday": None, "external_id": None},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.json
    got = r.json
    assert got["phone"] == "+79120000001"
    assert got["email"] is None and got["birthday"] is None and got["external_id"] is None
    assert got["name"] == "Anna"
    # Nothing the card shows changed: no new version, nothing to push.
    assert got["version"] == m["version"] and pending_changes(session, m) == queued
    # The old phone is free again; the new one finds the member.
    assert api.get("/members", query_string={"phone": "+7 912 000-00-01"}).json["items"][0][
        "id"] == m["id"]
    api.member(program["id"], name="Boris")  # enrolls with Anna's former phone
    r = api.patch(f"/members/{m['id']}", {"email": "a@example.org", "birthday": "1991-02-03",
                                          "external_id": "crm-9"})
    assert r.status_code == 200
    assert (r.json["email"], r.json["birthday"], r.json["external_id"]) == (
        "a@example.org", "1991-02-03", "crm-9")


def test_phone_or_external_id_of_another_member_is_409_and_changes_nothing(api):
    program = api.program()
    anna = api.member(program["id"], external_id="crm-1")
    boris = api.member(program["id"], name="Boris", phone="+7 912 000-00-02",
                       external_id="crm-2")
    r = api.patch(f"/members/{boris['id']}", {"name": "Boris B.", "phone": "8 912 345 67 89"})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "phone"
    r = api.patch(f"/members/{boris['id']}", {"name": "Boris B.", "external_id": "crm-1"})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "external_id"
    assert api.get(f"/members/{boris['id']}").json == boris
    # A member keeping their own phone or id is no clash; another program is no clash.
    assert api.patch(f"/members/{anna['id']}", {"phone": "+79123456789",
                                                "external_id": "crm-1"}).status_code == 200
    other = api.program()
    carl = api.member(other["id"], name="Carl", phone="+7 912 000-00-03")
    assert api.patch(f"/members/{carl['id']}", {"phone": anna["phone"],
                                                "external_id": "crm-1"}).status_code == 200


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"name": None}, "name", 422),
    ({"phone": None}, "phone", 422),
    ({"name": ""}, "name", 422),
    ({"phone": "12345"}, "phone", 400),
    ({"email": "anna@"}, "email", 422),
    ({"birthday": "2999-01-01"}, "birthday", 422),
    ({"external_id": ""}, "external_id", 422),
    ({"answers": {"x": "y"}}, "answers", 422),
    ({"referral_code": "ABCDEFGH"}, "referral_code", 422),
])
def test_bad_patch_names_the_field_and_changes_nothing(api, body, field, status):
    m = api.member(api.program()["id"], email="anna@example.com")
    r = api.patch(f"/members/{m['id']}", {"email": "new@example.com", **body})
    assert r.status_code == status, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/members/{m['id']}").json == m


def test_another_merchants_member_cannot_be_changed(api, other_api):
    m = api.member(api.program()["id"])
    r = other_api.patch(f"/members/{m['id']}", {"name": "Mallory"})
    assert r.status_code == 404
    assert api.patch("/members/999999", {"name": "Nobody"}).status_code == 404
    assert api.get(f"/members/{m['id']}").json["name"] == "Anna"


# --- assigned tiers ---------------------------------------------------------------------

TIERS = [{"name": "Bronze", "threshold": 0}, {"name": "Silver", "threshold": 100},
         {"name": "VIP", "threshold": 10_000}]


def test_assigned_tier_holds_until_its_last_day_then_the_review_recomputes(api):
    program = api.program(tiers=TIERS)
    m = api.member(program["id"])
    today = dt.datetime.now(dt.UTC).date()
    until = today + dt.timedelta(days=30)
    r = api.post(f"/members/{m['id']}/tier", {"tier": "VIP", "until": until.isoformat()})
    assert r.status_code == 200, r.json
    got = r.json
    assert got["tier"] == "VIP" and got["version"] == m["version"] + 1
    assert got["manual_tier"] == {"tier": "VIP", "until": until.isoformat()}
    assert fields(pass_files(api, got))["tier"]["value"] == "VIP"
    entry = history(api, m)[0]
    assert entry["type"] == "tier_set" and entry["tier_after"] == "VIP"
    assert entry["details"]["from"] == "Bronze" and entry["details"]["until"] == until.isoformat()
    assert "VIP" in entry["reason"]

    # The basis says Bronze, but the review leaves VIP alone through its last day ...
    for day in (today, today + dt.timedelta(days=10), until):
        assert daily(api, day)["downgrades"] == 0
        assert api.get(f"/members/{m['id']}").json["tier"] == "VIP"
    # ... and the first review after it recomputes by the program's rules.
    assert daily(api, until + dt.timedelta(days=1))["downgrades"] == 1
    got = api.get(f"/members/{m['id']}").json
    assert got["tier"] == "Bronze" and got["manual_tier"] is None
    entry = history(api, m)[0]
    assert entry["type"] == "tier" and entry["details"]["manual_tier"] == {
        "tier": "VIP", "until": until.isoformat()}
    assert daily(api, until + dt.timedelta(days=2))["downgrades"] == 0


def test_review_keeps_a_card_at_its_assigned_tier_not_above_it(api):
    program = api.program(tiers=TIERS, tier_basis="visits", tier_window_days=30)
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/tier", {"tier": "silver"})  # any case; no end date
    got = api.get(f"/members/{m['id']}").json
    assert got["tier"] == "Silver" and got["manual_tier"] == {"tier": "Silver", "until": None}
    today = dt.datetime.now(dt.UTC).date()
    assert daily(api, today + dt.timedelta(days=400))["downgrades"] == 0
    assert api.get(f"/members/{m['id']}").json["tier"] == "Silver"


def test_ending_an_assignment_recomputes_the_tier_at_once(api):
    program = api.program(tiers=TIERS)
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/transactions", {"type": "earn", "points": 150})
    api.post(f"/members/{m['id']}/tier", {"tier": "VIP", "until": "2099-12-31"})
    r = api.delete(f"/members/{m['id']}/tier")
    assert r.status_code == 200, r.json
    assert r.json["tier"] == "Silver" and r.json["manual_tier"] is None
    entry = history(api, m)[0]
    assert entry["type"] == "tier_set" and entry["details"]["rule"] == "manual_tier_end"
    assert (entry["details"]["from"], entry["tier_after"]) == ("VIP", "Silver")
    # Ending again, or through "tier": null, changes nothing more.
    assert api.delete(f"/members/{m['id']}/tier").json == r.json
    assert api.post(f"/members/{m['id']}/tier", {"tier": None}).json == r.json
    api.post(f"/members/{m['id']}/tier", {"tier": "VIP"})
    r = api.post(f"/members/{m['id']}/tier", {"tier": None})
    assert r.status_code == 200 and r.json["tier"] == "Silver" and r.json["manual_tier"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"tier": "Platinum"}, "tier"),
    ({"tier": "VIP", "until": "2020-01-01"}, "until"),
    ({"tier": "VIP", "until": "soon"}, "until"),
    ({"until": "2099-01-01"}, "tier"),
])
def test_bad_assignment_is_422_naming_the_field_and_changes_nothing(api, body, field):
    program = api.program(tiers=TIERS)
    m = api.member(program["id"])
    r = api.post(f"/members/{m['id']}/tier", body)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/members/{m['id']}").json == m
    assert [e["type"] for e in history(api, m)] == []


def test_assignment_needs_an_open_card_of_ones_own(api, other_api):
    program = api.program(tiers=TIERS)
    m = api.member(program["id"])
    assert other_api.post(f"/members/{m['id']}/tier", {"tier": "VIP"}).status_code == 404
    assert other_api.delete(f"/members/{m['id']}/tier").status_code == 404
    api.post(f"/members/{m['id']}/close")
    r = api.post(f"/members/{m['id']}/tier", {"tier": "VIP"})
    assert r.status_code == 409
    assert api.get(f"/members/{m['id']}").json["tier"] == "Bronze"


def test_new_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    patch = paths["/members/{member_id}"]["patch"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert {"404", "409", "422"} <= set(patch["responses"])
    tier = paths["/members/{member_id}/tier"]
    assert {"404", "409", "422"} <= set(tier["post"]["responses"])
    assert "404" in tier["delete"]["responses"]
