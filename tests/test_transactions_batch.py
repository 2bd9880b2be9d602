"""``POST /transactions/batch``: many operations in one request, each with its own key and
its own answer."""

from __future__ import annotations

import pytest
from api_support import Api


@pytest.fixture
def members(api):
    program = api.program()
    return [api.member(program["id"], phone=f"+7 912 345-67-0{n}") for n in range(3)]


def batch(api, items):
    return api.post("/transactions/batch", {"items": items})


def earn(member, points, key):
    return {"member_id": member["id"], "idempotency_key": key, "type": "earn",
            "points": points}


def balance(api, member):
    return api.get(f"/members/{member['id']}").json["balance"]


def test_a_batch_applies_each_item_and_answers_in_order(api, members):
    a, b, c = members
    r = batch(api, [earn(a, 10, "k1"), earn(b, 20, "k2"), earn(a, 5, "k3"),
                    {"member_id": c["id"], "idempotency_key": "k4", "type": "earn",
                     "amount": "250"}])
    assert r.status_code == 200, r.json
    items = r.json["items"]
    assert [i["status"] for i in items] == [201, 201, 201, 201]
    assert [i["result"]["transaction"]["member_id"] for i in items] == [
        a["id"], b["id"], a["id"], c["id"]]
    assert [i["result"]["transaction"]["points"] for i in items] == [10, 20, 5, 25]
    assert [i["result"]["balance"] for i in items] == [10, 20, 15, 25]
    assert not any(i["replayed"] for i in items)
    assert (balance(api, a), balance(api, b), balance(api, c)) == (15, 20, 25)
    history = api.get(f"/members/{a['id']}/transactions").json["items"]
    assert [t["points"] for t in history] == [5, 10]


def test_retrying_a_batch_credits_nothing_twice(api, members):
    a, b, _ = members
    items = [earn(a, 10, "r1"), earn(b, 20, "r2")]
    first = batch(api, items).json["items"]
    # The retry carries one new item too: only that one is applied.
    again = batch(api, [*items, earn(a, 1, "r3")]).json["items"]
    assert [i["status"] for i in again] == [201, 201, 201]
    assert [i["replayed"] for i in again] == [True, True, False]
    assert again[0]["result"] == first[0]["result"]
    assert again[1]["result"] == first[1]["result"]
    assert (balance(api, a), balance(api, b)) == (11, 20)
    assert len(api.get(f"/members/{a['id']}/transactions").json["items"]) == 2


def test_a_batch_key_is_the_single_routes_key_both_ways(api, members):
    a, b, _ = members
    # Single route first, then the batch replays it.
    single = api.post(f"/members/{a['id']}/transactions", {"type": "earn", "points": 7},
                      headers={"Idempotency-Key": "shared-1"})
    assert single.status_code == 201
    r = batch(api, [earn(a, 7, "shared-1")]).json["items"][0]
    assert r["status"] == 201 and r["replayed"] is True
    assert r["result"] == single.json
    # Batch first, then the single route replays it.
    first = batch(api, [earn(b, 9, "shared-2")]).json["items"][0]
    again = api.post(f"/members/{b['id']}/transactions", {"type": "earn", "points": 9},
                     headers={"Idempotency-Key": "shared-2"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first["result"]
    assert (balance(api, a), balance(api, b)) == (7, 9)
    # The same key for another member or another body is refused, on either route.
    other = batch(api, [earn(b, 7, "shared-1"), earn(a, 8, "shared-1")]).json["items"]
    assert [i["status"] for i in other] == [422, 422]
    assert all(i["problem"]["errors"][0]["field"] == "Idempotency-Key" for i in other)
    assert other[0]["problem"]["used_for"] == {"operation": "transaction",
                                               "member_id": a["id"]}
    # A key of another operation (stamps) is another scope as well.
    refused = api.post(f"/members/{b['id']}/stamps", {"count": 1},
                       headers={"Idempotency-Key": "shared-2"})
    assert refused.status_code == 422
    assert (balance(api, a), balance(api, b)) == (7, 9)


def test_one_failing_item_fails_alone(api, other_api, members):
    a, b, _ = members
    api.post(f"/members/{a['id']}/transactions", {"type": "earn", "points": 5})
    stranger = other_api.member(other_api.program()["id"])
    r = batch(api, [
        earn(a, 10, "i1"),
        earn(stranger, 10, "i2"),
        {"member_id": b["id"], "idempotency_key": "i3", "type": "redeem", "points": 50},
        {"member_id": b["id"], "idempotency_key": "i4", "type": "earn", "points": -1},
        {"member_id": b["id"], "idempotency_key": "i5", "type": "earn"},
        {"member_id": b["id"], "type": "earn", "points": 1},
        earn(b, 3, "i6"),
    ])
    assert r.status_code == 200, r.json
    items = r.json["items"]
    assert [i["status"] for i in items] == [201, 404, 409, 422, 422, 422, 201]
    assert items[1]["problem"]["status"] == 404 and items[1]["result"] is None
    assert str(stranger["id"]) in items[1]["problem"]["detail"]
    assert items[2]["problem"]["title"] == "Insufficient balance"
    assert items[3]["problem"]["errors"][0]["field"] == "points"
    assert (balance(api, a), balance(api, b)) == (15, 3)
    assert other_api.get(f"/members/{stranger['id']}").json["balance"] == 0
    # A failed item's key is not used up: it can be sent again, fixed.
    fixed = batch(api, [{"member_id": b["id"], "idempotency_key": "i3", "type": "redeem",
                         "points": 2}]).json["items"][0]
    assert fixed["status"] == 201 and fixed["replayed"] is False
    assert balance(api, b) == 1


def test_the_envelope_is_checked_whole(api, members):
    a = members[0]
    too_many = batch(api, [earn(a, 1, f"c{n}") for n in range(501)])
    assert too_many.status_code == 422
    assert too_many.json["errors"][0]["field"] == "items"
    assert balance(api, a) == 0
    assert batch(api, []).status_code == 422
    assert api.post("/transactions/batch", {"items": {"a": 1}}).status_code == 422
    assert api.post("/transactions/batch", {"items": [], "extra": 1}).status_code == 422
    assert api.post("/transactions/batch", [earn(a, 1, "x")]).status_code == 400
    full = batch(api, [earn(a, 1, f"c{n}") for n in range(500)])
    assert full.status_code == 200
    assert len(full.json["items"]) == 500 and balance(api, a) == 500


def test_a_read_key_may_not_post_a_batch(api, members):
    r = api.post("/api-keys", {"name": "reader", "scope": "read"})
    reader = Api(api.client, r.json["api_key"], api.merchant_id)
    refused = reader.post("/transactions/batch", {"items": [earn(members[0], 5, "p1")]})
    assert refused.status_code == 403
    assert refused.json["permission"] == "transactions:write"
    assert balance(api, members[0]) == 0
    r = api.post("/api-keys", {"name": "till", "scope": "till"})
    till = Api(api.client, r.json["api_key"], api.merchant_id)
    assert till.post("/transactions/batch",
                     {"items": [earn(members[0], 5, "p1")]}).status_code == 200


def test_the_batch_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/transactions/batch"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TransactionBatch")
    item = doc["components"]["schemas"]["TransactionBatchItem"]
    assert {"member_id", "idempotency_key", "type"} <= set(item["required"])
    items = doc["components"]["schemas"]["TransactionBatch"]["properties"]["items"]
    # The envelope is a list of objects; what is in each is checked (and answered) alone.
    assert items["maxItems"] == 500 and items["items"]["type"] == "object"
    assert "TransactionBatchItem" in items["items"]["description"]


def test_an_item_that_is_not_an_object_fails_the_envelope(api):
    r = api.post("/transactions/batch", {"items": [[None, None]]})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"].startswith("items")


def test_a_batch_posts_its_items_as_the_single_route_would(api):
    """A batch of new keys on plain cards is written set-based; its answers, entries, cards
    and pushes are those of the same operations posted one by one."""
    program = api.program(tiers=[{"name": "Silver", "threshold": 0},
                                 {"name": "Gold", "threshold": 30}])
    one = [api.member(program["id"], phone=f"+7 912 111-22-0{n}") for n in range(2)]
    two = [api.member(program["id"], phone=f"+7 912 111-33-0{n}") for n in range(2)]

    def operations(a, b, k):
        return [({"member_id": a["id"], "type": "earn", "amount": "250"}, f"{k}1"),
                ({"member_id": b["id"], "type": "redeem", "points": 50}, f"{k}2"),  # too much
                ({"member_id": a["id"], "type": "redeem", "points": 5}, f"{k}3"),
                ({"member_id": a["id"], "type": "earn", "points": 20}, f"{k}4"),  # to Gold
                ({"member_id": b["id"], "type": "adjust", "points": 4, "reason": "fix"},
                 f"{k}5")]

    singles = []
    for body, key in operations(*one, "x"):
        r = api.post(f"/members/{body['member_id']}/transactions",
                     {k: v for k, v in body.items() if k != "member_id"},
                     headers={"Idempotency-Key": key})
        singles.append((r.status_code, r.json))
    batched = batch(api, [{**body, "idempotency_key": key}
                          for body, key in operations(*two, "y")]).json["items"]
    assert [i["status"] for i in batched] == [s for s, _ in singles] == [201, 409, 201, 201, 201]

    def same(result, member):
        t = dict(result["transaction"])
        t.pop("id"), t.pop("created_at")
        return {**result, "transaction": {**t, "member_id": member}}

    for (status, single), item in zip(singles, batched, strict=True):
        if status == 201:
            assert same(item["result"], 0) == same(single, 0)
        else:
            assert item["problem"]["title"] == single["title"]
    for a, b in zip(one, two, strict=True):
        ma, mb = api.get(f"/members/{a['id']}").json, api.get(f"/members/{b['id']}").json
        for name in ("balance", "tier"):
            assert ma[name] == mb[name]
        ha = api.get(f"/members/{a['id']}/transactions").json["items"]
        hb = api.get(f"/members/{b['id']}/transactions").json["items"]
        assert [(t["type"], t["points"], t["balance_after"]) for t in ha] == [
            (t["type"], t["points"], t["balance_after"]) for t in hb]
    assert api.get(f"/members/{two[0]['id']}").json["tier"] == "Gold"
    # The answers carry the entries' real ids.
    listed = {t["id"] for t in api.get(f"/members/{two[0]['id']}/transactions").json["items"]}
    assert {i["result"]["transaction"]["id"] for i in batched if i["status"] == 201
            and i["result"]["transaction"]["member_id"] == two[0]["id"]} == listed
    # And the batch is replayed whole, item by item, with the same answers.
    again = batch(api, [{**body, "idempotency_key": key}
                        for body, key in operations(*two, "y")]).json["items"]
    assert [i["replayed"] for i in again] == [True, False, True, True, True]
    assert [i["result"] for i in again if i["replayed"]] == [
        i["result"] for i in batched if i["status"] == 201]


def _stored(session, member_ids):
    """What the database keeps of these members' cards, entries, card changes and webhook
    events, without what differs between two members anyway (ids, times, keys)."""
    from sqlalchemy import String
    from sqlalchemy import cast
    from sqlalchemy import select

    from wallet_service.models import CardChange
    from wallet_service.models import DeliveryJob
    from wallet_service.models import LedgerTransaction as T
    from wallet_service.models import LoyaltyCard as C
    from wallet_service.models import WebhookDelivery
    from wallet_service.models import WebhookEvent as E

    out = []
    for member_id in member_ids:
        card = session.execute(select(C).where(C.member_id == member_id)).scalar_one()
        entries = session.execute(
            select(T.type, T.points, T.stamps, T.amount_minor, T.reason, T.balance_after,
                   T.tier_after, T.reference_id, cast(T.details, String), T.details.is_(None),
                   T.idempotency_operation, T.api_key_id, T.natural_key)
            .where(T.card_id == card.id).order_by(T.id)).all()
        changes = session.scalars(select(CardChange.version).where(
            CardChange.card_id == card.id).order_by(CardChange.id)).all()
        events = []
        for event in session.scalars(select(E).where(E.member_id == member_id).order_by(E.id)):
            data = dict(event.payload["data"])
            data.pop("member_id", None)
            if "transaction" in data:
                data["transaction"] = {k: v for k, v in data["transaction"].items()
                                       if k not in ("id", "member_id", "created_at")}
            data.pop("transaction_id", None)
            deliveries = session.scalars(select(WebhookDelivery.id).where(
                WebhookDelivery.event_id == event.id)).all()
            jobs = session.scalars(select(DeliveryJob.status).where(
                DeliveryJob.channel == "webhook", DeliveryJob.target_id.in_(deliveries))).all()
            events.append((event.type, event.payload["type"], data, len(deliveries), jobs,
                           event.payload["timestamp"] is not None))
        out.append(({k: getattr(card, k) for k in (
            "balance", "tier", "lifetime_points", "lifetime_spend_minor", "stamps", "visits",
            "version", "message", "reminder")}, entries, changes, events))
    return out


def _post_both_ways(api, program, make_operations):
    """The same operations, one by one on the single route for two members and as a batch
    for two others; returns both sets of members."""
    one = [api.member(program["id"], phone=f"+7 912 222-22-0{n}") for n in range(2)]
    two = [api.member(program["id"], phone=f"+7 912 222-33-0{n}") for n in range(2)]
    for body, key in make_operations(*one, "x"):
        api.post(f"/members/{body['member_id']}/transactions",
                 {k: v for k, v in body.items() if k != "member_id"},
                 headers={"Idempotency-Key": key})
    r = batch(api, [{**body, "idempotency_key": key} for body, key in make_operations(*two, "y")])
    assert r.status_code == 200, r.json
    return one, two


def _mixed(a, b, k):
    return [({"member_id": a["id"], "type": "earn", "amount": "250"}, f"{k}1"),
            ({"member_id": b["id"], "type": "redeem", "points": 50}, f"{k}2"),  # too much
            ({"member_id": a["id"], "type": "earn", "lines": [
                {"amount": "10", "sku": "cig-1"}, {"amount": "90.50", "category": "food"}]},
             f"{k}3"),
            ({"member_id": a["id"], "type": "redeem", "points": 5, "reason": "café"}, f"{k}4"),
            ({"member_id": a["id"], "type": "earn", "points": 20}, f"{k}5"),  # to Gold
            ({"member_id": b["id"], "type": "adjust", "points": 4, "reason": "fix"}, f"{k}6")]


def test_a_batch_stores_the_rows_single_requests_store(api, session):
    """Entries (their details as stored, JSON ``null`` included), cards and card changes
    written set-based are those the single route writes."""
    program = api.program(tiers=[{"name": "Silver", "threshold": 0},
                                 {"name": "Gold", "threshold": 30}],
                          excluded={"skus": ["cig-1"]})
    one, two = _post_both_ways(api, program, _mixed)
    single = _stored(session, [m["id"] for m in one])
    batched = _stored(session, [m["id"] for m in two])
    assert batched == single
    assert [len(entries) for _, entries, _, _ in batched] == [4, 1]
    assert batched[0][0]["tier"] == "Gold"


def test_a_batch_records_the_webhook_events_single_requests_record(api, session):
    """For a merchant with endpoints the batch is still set-based, and records the same
    events, deliveries and jobs as the same operations posted one by one."""
    for events in (["transaction.created", "tier.changed"], ["tier.changed"]):
        r = api.post("/webhooks", {"url": "https://hooks.example.com/in", "events": events})
        assert r.status_code == 201, r.json
    program = api.program(tiers=[{"name": "Silver", "threshold": 0},
                                 {"name": "Gold", "threshold": 30}],
                          excluded={"skus": ["cig-1"]})
    one, two = _post_both_ways(api, program, _mixed)
    single = _stored(session, [m["id"] for m in one])
    batched = _stored(session, [m["id"] for m in two])
    assert batched == single
    kinds = [(kind, deliveries) for kind, _, _, deliveries, _, _ in batched[0][3]]
    created, changed = ("transaction.created", 1), ("tier.changed", 2)
    assert kinds == [created, created, changed, created, created]


def test_a_batch_items_key_is_bound_to_the_body_the_single_route_binds():
    from dataclasses import asdict
    from decimal import Decimal

    from wallet_service.services import transactions as t

    op = t.Operation(type="earn", amount=Decimal("12.50"), reason="r", lines=(
        t.Line(Decimal("10"), sku="a"), t.Line(Decimal("2.5"), category="c")))
    assert t._body(op) == asdict(op)
    assert t._body(t.Operation(type="redeem", points=3)) == asdict(t.Operation("redeem", 3))
