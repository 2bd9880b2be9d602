"""The points ledger through the API: earn, redeem, adjust, idempotency, history."""

from __future__ import annotations

import pytest

TIERS = [
    {"name": "Bronze", "threshold": 0, "multiplier": "1"},
    {"name": "Silver", "threshold": 100, "multiplier": "1.5"},
    {"name": "Gold", "threshold": 1000, "multiplier": "2"},
]


@pytest.fixture
def member(api):
    program = api.program(tiers=TIERS)
    return api.member(program["id"])


def post(api, member, body, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/members/{member['id']}/transactions", body, headers=headers)


def test_earn_points(api, member):
    r = post(api, member, {"type": "earn", "points": 30})
    assert r.status_code == 201
    assert r.json["balance"] == 30
    assert r.json["tier"] == "Bronze"
    t = r.json["transaction"]
    assert t["type"] == "earn" and t["points"] == 30 and t["balance_after"] == 30
    assert t["member_id"] == member["id"]
    m = api.get(f"/members/{member['id']}").json
    assert m["balance"] == 30 and m["lifetime_points"] == 30
    assert m["version"] == member["version"] + 1


def test_earn_by_amount_uses_rule_and_tier_multiplier_rounding_down(api, member):
    # 10 points per 100 RUB: 99.99 RUB → 9 points (rounded down).
    r = post(api, member, {"type": "earn", "amount": "99.99"})
    assert r.json["transaction"]["points"] == 9
    assert r.json["transaction"]["amount"] == "99.99"
    # Reach Silver, then the multiplier 1.5 applies: 1000 RUB → 150 points.
    post(api, member, {"type": "earn", "points": 91})
    r = post(api, member, {"type": "earn", "amount": "1000"})
    assert r.json["transaction"]["points"] == 150
    assert r.json["tier"] == "Silver"
    m = api.get(f"/members/{member['id']}").json
    assert m["lifetime_spend"] == "1099.99"


def test_tier_rises_in_the_same_transaction(api, member):
    r = post(api, member, {"type": "earn", "points": 1000})
    assert r.json["tier"] == "Gold"
    assert r.json["transaction"]["tier_after"] == "Gold"
    assert api.get(f"/members/{member['id']}").json["tier"] == "Gold"


def test_redeem_does_not_lower_the_tier(api, member):
    post(api, member, {"type": "earn", "points": 150})
    r = post(api, member, {"type": "redeem", "points": 150})
    assert r.status_code == 201
    assert r.json["balance"] == 0 and r.json["tier"] == "Silver"
    assert r.json["transaction"]["points"] == -150


def test_redeem_below_zero_is_409_and_writes_nothing(api, member):
    post(api, member, {"type": "earn", "points": 20})
    before = api.get(f"/members/{member['id']}").json
    r = post(api, member, {"type": "redeem", "points": 21})
    assert r.status_code == 409
    assert r.json["errors"][0]["field"] == "points"
    assert r.json["balance"] == 20
    assert api.get(f"/members/{member['id']}").json == before
    assert len(api.get(f"/members/{member['id']}/transactions").json["items"]) == 1


def test_adjust_needs_reason_and_can_be_negative(api, member):
    post(api, member, {"type": "earn", "points": 50})
    r = post(api, member, {"type": "adjust", "points": -20})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "reason"
    r = post(api, member, {"type": "adjust", "points": -20, "reason": "till error"})
    assert r.status_code == 201 and r.json["balance"] == 30
    assert r.json["transaction"]["reason"] == "till error"
    r = post(api, member, {"type": "adjust", "points": -31, "reason": "too much"})
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "earn"}, "body"),
        ({"type": "earn", "points": 5, "amount": "10"}, "body"),
        ({"type": "earn", "points": 0}, "points"),
        ({"type": "earn", "points": -5}, "points"),
        ({"type": "earn", "amount": "-1"}, "amount"),
        ({"type": "earn", "amount": "abc"}, "amount"),
        ({"type": "earn", "points": "5x"}, "points"),
        ({"type": "redeem"}, "points"),
        ({"type": "redeem", "amount": "5"}, "amount"),
        ({"type": "adjust", "points": 0, "reason": "x"}, "points"),
        ({"type": "gift", "points": 5}, "type"),
        ({"points": 5}, "type"),
    ],
)
def test_bad_transaction_is_refused_naming_the_field(api, member, body, field):
    r = post(api, member, body)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/members/{member['id']}").json["balance"] == 0


def test_amount_with_too_many_decimals_is_400(api, member):
    r = post(api, member, {"type": "earn", "amount": "10.001"})
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "amount"


def test_idempotent_replay_returns_the_same_body_and_credits_once(api, member):
    first = post(api, member, {"type": "earn", "points": 40}, key="sale-1")
    again = post(api, member, {"type": "earn", "points": 40}, key="sale-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    post(api, member, {"type": "earn", "points": 1})
    third = post(api, member, {"type": "earn", "points": 40}, key="sale-1")
    assert third.json == first.json  # the original result, not today's balance
    assert api.get(f"/members/{member['id']}").json["balance"] == 41


def test_reusing_a_key_for_another_request_is_refused(api, member):
    post(api, member, {"type": "earn", "points": 40}, key="sale-2")
    r = post(api, member, {"type": "earn", "points": 41}, key="sale-2")
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "Idempotency-Key"
    assert api.get(f"/members/{member['id']}").json["balance"] == 40


def test_keys_are_per_merchant(api, other_api, member):
    theirs = other_api.member(other_api.program()["id"])
    post(api, member, {"type": "earn", "points": 5}, key="same")
    r = other_api.post(f"/members/{theirs['id']}/transactions", {"type": "earn", "points": 5},
                       headers={"Idempotency-Key": "same"})
    assert r.status_code == 201 and r.json["balance"] == 5


def test_bad_idempotency_key_is_400(api, member):
    r = post(api, member, {"type": "earn", "points": 5}, key="x" * 256)
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "Idempotency-Key"


def test_history_newest_first_and_paginated(api, member):
    for p in range(1, 6):
        post(api, member, {"type": "earn", "points": p})
    page = api.get(f"/members/{member['id']}/transactions", query_string={"limit": 3}).json
    assert [t["points"] for t in page["items"]] == [5, 4, 3]
    rest = api.get(f"/members/{member['id']}/transactions",
                   query_string={"limit": 3, "cursor": page["next_cursor"]}).json
    assert [t["points"] for t in rest["items"]] == [2, 1]
    assert rest["next_cursor"] is None


def test_unknown_member_is_404(api):
    assert api.post("/members/424242/transactions", {"type": "earn", "points": 1}).status_code == 404
    assert api.get("/members/424242/transactions").status_code == 404
