"""Purchases with receipt lines, excluded goods, refunds; cashback and discount programs."""

from __future__ import annotations

import pytest
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files


def earn(api, m, **body):
    r = api.post(f"/members/{m['id']}/transactions", {"type": "earn", **body})
    assert r.status_code == 201, r.json
    return r.json


def refund(api, m, original, **body):
    return api.post(f"/members/{m['id']}/transactions",
                    {"type": "refund", "original_id": original["transaction"]["id"], **body})


@pytest.fixture
def member(api):
    program = api.program(excluded={"skus": ["CIG-1"], "categories": ["alcohol"]})
    return api.member(program["id"])


def test_excluded_lines_earn_nothing(api, member):
    sale = earn(api, member, lines=[
        {"sku": "LATTE", "category": "coffee", "amount": "300"},
        {"sku": "CIG-1", "category": "tobacco", "amount": "500"},
        {"sku": "WINE", "category": "alcohol", "amount": "900"},
    ])
    t = sale["transaction"]
    assert t["points"] == 30  # 10 per 100 on the coffee only
    assert t["amount"] == "1700.00"
    assert t["details"]["eligible_minor"] == 30000
    assert [bool(line.get("excluded")) for line in t["details"]["lines"]] == [False, True, True]


def test_amount_must_match_the_lines(api, member):
    r = api.post(f"/members/{member['id']}/transactions",
                 {"type": "earn", "amount": "10", "lines": [{"amount": "9"}]})
    assert r.status_code == 422


def test_full_refund_reverses_exactly(api, member):
    sale = earn(api, member, amount="1000")
    r = refund(api, member, sale)
    assert r.status_code == 201
    assert r.json["transaction"]["points"] == -100 and r.json["balance"] == 0
    assert r.json["transaction"]["reference_id"] == sale["transaction"]["id"]
    got = api.get(f"/members/{member['id']}").json
    assert got["lifetime_points"] == 0 and got["lifetime_spend"] == "0.00"
    again = refund(api, member, sale)
    assert again.status_code == 409 and again.json["errors"][0]["field"] == "original_id"


def test_partial_refunds_add_up_to_the_purchase(api, member):
    sale = earn(api, member, amount="999")  # 99 points
    taken = [refund(api, member, sale, amount=a).json["transaction"]["points"]
             for a in ("333", "333", "333")]
    assert sum(taken) == -99
    assert api.get(f"/members/{member['id']}").json["balance"] == 0
    r = refund(api, member, sale, amount="1")
    assert r.status_code == 409


def test_refund_more_than_left_is_refused(api, member):
    sale = earn(api, member, amount="100")
    refund(api, member, sale, amount="60")
    r = refund(api, member, sale, amount="50")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "amount"


def test_refund_after_points_were_partly_spent_stops_at_zero(api, member):
    sale = earn(api, member, amount="1000")  # 100 points
    api.post(f"/members/{member['id']}/transactions", {"type": "redeem", "points": 70})
    r = refund(api, member, sale)
    assert r.status_code == 201
    t = r.json["transaction"]
    assert t["points"] == -30 and r.json["balance"] == 0
    assert t["details"]["reversed_points"] == 100 and t["details"]["unrecovered"] == 70


def test_refund_of_a_points_credit_is_not_a_purchase(api, member):
    credit = earn(api, member, points=10)
    assert refund(api, member, credit).status_code == 404


# --- cashback ---------------------------------------------------------------------------


@pytest.fixture
def cashback(api):
    program = api.program(
        kind="cashback",
        cashback={"percent": "5", "categories": {"beans": "10"}, "max_redeem_percent": "50"},
        tier_basis="lifetime_spend",
        tiers=[{"name": "Base", "threshold": 0},
               {"name": "Gold", "threshold": 5000, "cashback_percent": "7"}],
    )
    assert program["template"] == "cashback"
    return api.member(program["id"])


def test_cashback_per_category_and_tier(api, cashback):
    sale = earn(api, cashback, lines=[{"sku": "L", "category": "coffee", "amount": "200"},
                                      {"sku": "B", "category": "beans", "amount": "100"}])
    assert sale["transaction"]["points"] == 1000 + 1000  # kopecks: 5% of 200 + 10% of 100
    sale = earn(api, cashback, amount="5000")  # Gold from now on (upgrade after this sale)
    assert sale["tier"] == "Gold" and sale["transaction"]["points"] == 25000
    sale = earn(api, cashback, amount="100")
    assert sale["transaction"]["points"] == 700


def test_cashback_pays_at_most_its_share(api, cashback):
    earn(api, cashback, amount="2000")  # 100.00 RUB of cashback
    path = f"/members/{cashback['id']}/transactions"
    r = api.post(path, {"type": "redeem", "amount": "60"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "purchase_amount"
    r = api.post(path, {"type": "redeem", "amount": "60", "purchase_amount": "100"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "amount"
    r = api.post(path, {"type": "redeem", "amount": "50", "purchase_amount": "100"})
    assert r.status_code == 201 and r.json["balance"] == 5000


def test_cashback_card_shows_money_and_share(api, cashback):
    earn(api, cashback, amount="2000")
    f = fields(pass_files(api, api.get(f"/members/{cashback['id']}").json))
    assert f["bonus"]["value"] == 100 and f["bonus"]["currencyCode"] == "RUB"
    assert "5" in f["cashback"]["value"]


# --- discount ---------------------------------------------------------------------------


def test_discount_program_moves_up_by_spend_and_shows_the_discount(api):
    program = api.program(kind="discount", tier_basis="lifetime_spend", tiers=[
        {"name": "Silver", "threshold": 0, "discount_percent": "3"},
        {"name": "Gold", "threshold": 10000, "discount_percent": "10"},
    ])
    assert program["template"] == "tiers"
    m = api.member(program["id"])
    sale = earn(api, m, amount="12000")
    assert sale["tier"] == "Gold" and sale["transaction"]["points"] == 0
    assert sale["transaction"]["details"]["upgrade"] == {"from": "Silver", "to": "Gold"}
    f = fields(pass_files(api, api.get(f"/members/{m['id']}").json))
    assert f["tier"]["value"] == "Gold"
    assert f["tier"]["changeMessage"] == "tier.change"
    # The discount is a field of its own on the front, a number Wallet writes as a
    # percentage in the phone's language; a discount card has no points.
    assert f["discount"]["value"] == 0.1
    assert f["discount"]["numberStyle"] == "PKNumberStylePercent"
    assert "points" not in f
    r = api.post(f"/members/{m['id']}/transactions", {"type": "redeem", "points": 1})
    assert r.status_code == 422


def test_discount_program_needs_discounts(api):
    r = api.post("/programs", {"name": "D", "kind": "discount",
                               "tiers": [{"name": "A", "threshold": 0}]})
    assert r.status_code == 422
