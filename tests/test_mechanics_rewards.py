"""Rewards catalog, coupons (one use, even concurrently) and campaign messages."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files


def test_catalog_reward_costs_points_atomically(api):
    program = api.program()
    m = api.member(program["id"])
    r = api.post(f"/programs/{program['id']}/rewards", {"name": "Croissant", "cost_points": 80})
    assert r.status_code == 201
    reward = r.json
    assert api.get(f"/programs/{program['id']}/rewards").json["items"] == [reward]
    path = f"/members/{m['id']}/rewards/{reward['id']}/redeem"
    assert api.post(path).status_code == 409
    api.post(f"/members/{m['id']}/transactions", {"type": "earn", "points": 100})
    r = api.post(path, headers={"Idempotency-Key": "claim-1"})
    assert r.status_code == 201 and r.json["balance"] == 20
    t = r.json["transaction"]
    assert t["type"] == "reward" and t["reference_id"] == reward["id"] and t["points"] == -80
    again = api.post(path, headers={"Idempotency-Key": "claim-1"})
    assert again.json == r.json and api.get(f"/members/{m['id']}").json["balance"] == 20


def test_stamp_reward_costs_stamps(api):
    program = api.program(kind="stamps", stamps={"goal": 10, "max_per_window": None})
    m = api.member(program["id"])
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Cookie", "cost_stamps": 3}).json
    api.post(f"/members/{m['id']}/stamps", {"count": 4})
    r = api.post(f"/members/{m['id']}/rewards/{reward['id']}/redeem")
    assert r.status_code == 201 and api.get(f"/members/{m['id']}").json["stamps"] == 1
    r = api.post(f"/members/{m['id']}/rewards/{reward['id']}/redeem")
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "stamps"
    bad = api.post(f"/programs/{api.program()['id']}/rewards", {"name": "X", "cost_stamps": 1})
    assert bad.status_code == 422


def test_coupon_for_a_segment_shows_on_the_card_and_is_used_once(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    gold = api.member(program["id"])
    bronze = api.member(program["id"], phone="+7 912 000-00-07")
    api.post(f"/members/{gold['id']}/transactions", {"type": "earn", "points": 150})
    version = api.get(f"/members/{gold['id']}").json["version"]
    now = dt.datetime.now(dt.UTC)
    r = api.post(f"/programs/{program['id']}/coupons", {
        "title": "−20% on pastries", "segment": {"tier": "Gold"},
        "valid_until": (now + dt.timedelta(days=7)).isoformat()})
    assert r.status_code == 201 and r.json["granted"] == 1
    coupon = r.json
    assert api.get(f"/members/{gold['id']}").json["version"] == version + 1
    f = fields(pass_files(api, api.get(f"/members/{gold['id']}").json))
    assert f["coupon"]["value"].startswith("−20% on pastries")
    assert "coupon" not in fields(pass_files(api, bronze))
    assert api.post(f"/members/{bronze['id']}/coupons/{coupon['id']}/redeem").status_code == 404

    r = api.post(f"/members/{gold['id']}/coupons/{coupon['id']}/redeem")
    assert r.status_code == 201 and r.json["transaction"]["type"] == "coupon"
    r = api.post(f"/members/{gold['id']}/coupons/{coupon['id']}/redeem")
    assert r.status_code == 409
    assert "coupon" not in fields(pass_files(api, api.get(f"/members/{gold['id']}").json))
    items = api.get(f"/members/{gold['id']}/coupons").json["items"]
    assert items[0]["used_at"] is not None


def test_coupon_outside_its_validity_is_refused(api):
    program = api.program()
    m = api.member(program["id"])
    now = dt.datetime.now(dt.UTC)
    coupon = api.post(f"/programs/{program['id']}/coupons", {
        "title": "Later", "segment": {"member_ids": [m["id"]]},
        "valid_from": (now + dt.timedelta(days=1)).isoformat()}).json
    r = api.post(f"/members/{m['id']}/coupons/{coupon['id']}/redeem")
    assert r.status_code == 409


def test_a_coupon_used_twice_concurrently_succeeds_once(app, api):
    program = api.program()
    m = api.member(program["id"])
    coupon = api.post(f"/programs/{program['id']}/coupons",
                      {"title": "Free cake", "segment": {"member_ids": [m["id"]]}}).json
    threads = 8
    start = threading.Barrier(threads)
    url = f"/api/v1/members/{m['id']}/coupons/{coupon['id']}/redeem"

    def attempt(_: int) -> int:
        client = app.test_client()
        start.wait()
        return client.post(url, headers={"Authorization": f"Bearer {api.key}"}).status_code

    with ThreadPoolExecutor(threads) as pool:
        codes = list(pool.map(attempt, range(threads)))
    assert sorted(codes) == [201] + [409] * (threads - 1)
    entries = api.get(f"/members/{m['id']}/transactions").json["items"]
    assert [e["type"] for e in entries].count("coupon") == 1


def test_campaign_reaches_a_segment_and_shows_on_the_back(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    gold = api.member(program["id"], birthday="1990-05-02", marketing_consent=True)
    bronze = api.member(program["id"], phone="+7 912 000-00-08", marketing_consent=True)
    api.post(f"/members/{gold['id']}/transactions", {"type": "earn", "points": 150})
    before = api.get(f"/members/{gold['id']}").json["version"]
    r = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "Gold evening on Friday!", "segment": {"tier": "Gold"}})
    assert r.status_code == 201 and r.json["reached"] == 1
    got = api.get(f"/members/{gold['id']}").json
    assert got["message"] == "Gold evening on Friday!" and got["version"] == before + 1
    back = fields(pass_files(api, got))["message"]
    assert back["value"] == "Gold evening on Friday!" and "%@" in back["changeMessage"]
    assert api.get(f"/members/{bronze['id']}").json["message"] is None

    everyone = api.post(f"/programs/{program['id']}/campaigns", {"text": "New menu"}).json
    assert everyone["reached"] == 2
    may = api.post(f"/programs/{program['id']}/campaigns",
                   {"text": "Happy May birthdays", "segment": {"birthday_month": 5}}).json
    assert may["reached"] == 1
    listed = api.get(f"/programs/{program['id']}/campaigns").json["items"]
    assert [c["reached"] for c in listed] == [1, 2, 1]


def test_history_explains_the_card(api):
    program = api.program(bonuses={"welcome": 10})
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/transactions", {"type": "earn", "amount": "200"})
    items = api.get(f"/members/{m['id']}/transactions").json["items"]
    assert sum(i["points"] for i in items) == api.get(f"/members/{m['id']}").json["balance"]
    assert [i["type"] for i in items] == ["earn", "bonus"]
    assert items[1]["details"]["rule"] == "welcome"


def test_coffee_shop_scenario_plays_a_week(app):
    from wallet_service.demo import play_scenario

    lines = list(play_scenario(app.extensions["wallet"], "coffee-shop"))
    assert lines[0].startswith("merchant ")
    assert sum(line.startswith("day ") for line in lines) >= 10
    assert any("tier Silver" in line for line in lines)
    assert any("free coffees 1" in line for line in lines)


def test_scenario_hands_over_a_key_and_working_card_links(app, client):
    from wallet_service.demo import play_scenario

    lines = list(play_scenario(app.extensions["wallet"], "coffee-shop", "https://wallet.example.test"))
    key = next(line for line in lines if line.startswith("API key")).rsplit(": ", 1)[1]
    assert client.get("/api/v1/programs", headers={"Authorization": f"Bearer {key}"}
                      ).json["items"][0]["kind"] == "stamps"
    card_lines = [line for line in lines if "'s cards: " in line]
    assert len(card_lines) == 3
    for url in card_lines[0].split(": ", 1)[1].split(" and "):
        assert client.get(url.removeprefix("https://wallet.example.test")).status_code == 200


def test_daily_job_refreshes_cards_when_a_coupon_starts_and_ends(api):
    program = api.program()
    m = api.member(program["id"])
    now = dt.datetime.now(dt.UTC)
    api.post(f"/programs/{program['id']}/coupons", {
        "title": "Free croissant", "segment": {"member_ids": [m["id"]]},
        "valid_from": (now + dt.timedelta(days=1)).isoformat(),
        "valid_until": (now + dt.timedelta(days=3)).isoformat()})
    version = api.get(f"/members/{m['id']}").json["version"]
    day = now.date()

    def run(offset):
        return api.run_daily(day + dt.timedelta(days=offset))["coupons_refreshed"]

    assert run(0) == 0  # not started yet
    assert run(2) == 1 and run(2) == 0  # started: once, however often the day runs
    assert api.get(f"/members/{m['id']}").json["version"] == version + 1
    assert run(4) == 1 and run(4) == 0  # ended: the coupon leaves the card
    assert api.get(f"/members/{m['id']}").json["version"] == version + 2
