"""Campaigns with a holdout: a share of the members the campaign could reach is drawn at
random, recorded and not messaged, and the campaign's effect compares the purchases of the
reached members in the 7 days after sending with the holdout's."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.models import Campaign
from wallet_service.models import CardChange
from wallet_service.models import LoyaltyCard


def members(api, program_id, count, *, consent=True, first=0):
    return [api.member(program_id, name=f"M{i}", phone=f"+7 912 000-{i // 100:02d}-{i % 100:02d}",
                       marketing_consent=consent)
            for i in range(first, first + count)]


def card_ids(session, member_ids):
    rows = session.execute(select(LoyaltyCard.member_id, LoyaltyCard.id)
                           .where(LoyaltyCard.member_id.in_(member_ids))).all()
    session.rollback()  # end the read: the API writes next
    return dict(rows)


def test_holdout_share_is_drawn_recorded_and_not_messaged(api, session):
    program = api.program()
    reachable = members(api, program["id"], 20)
    no_consent = members(api, program["id"], 2, consent=False, first=50)
    before = {m["id"]: api.get(f"/members/{m['id']}").json["version"] for m in reachable}

    r = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "Autumn menu", "holdout_percent": 10})
    assert r.status_code == 201, r.json
    campaign = r.json
    # 10 % of the 20 consenting members: 2 held out, 18 reached; the 2 without consent are
    # in neither group.
    assert (campaign["holdout_percent"], campaign["held_out"], campaign["reached"]) == (10, 2, 18)
    assert len(campaign["holdout_seed"]) == 32

    listed = api.get(f"/campaigns/{campaign['id']}/recipients").json
    assert len(listed["items"]) == 20 and listed["next_cursor"] is None
    groups = {i["member_id"]: i for i in listed["items"]}
    assert not {m["id"] for m in no_consent} & set(groups)
    held = {mid for mid, i in groups.items() if i["group"] == "holdout"}
    assert len(held) == 2

    # Anyone with the seed recomputes the draw: SHA-256 of "<seed>:<card id>", the two
    # lowest draws held out.
    cards = card_ids(session, list(groups))
    draws = {mid: hashlib.sha256(f"{campaign['holdout_seed']}:{cards[mid]}".encode())
             .hexdigest()[:16] for mid in groups}
    assert all(groups[mid]["draw"] == draws[mid] for mid in groups)
    assert held == set(sorted(draws, key=lambda mid: (draws[mid], cards[mid]))[:2])

    # The held-out cards did not change (no new version, nothing queued for their phones);
    # the reached ones show the message.
    for m in reachable:
        got = api.get(f"/members/{m['id']}").json
        if m["id"] in held:
            assert got["message"] is None and got["version"] == before[m["id"]]
        else:
            assert got["message"] == "Autumn menu" and got["version"] == before[m["id"]] + 1
    changes = session.scalar(select(func.count()).select_from(CardChange).where(
        CardChange.card_id.in_([cards[mid] for mid in held]),
        CardChange.version > 1))
    session.rollback()
    assert changes == 0

    only_held = api.get(f"/campaigns/{campaign['id']}/recipients?group=holdout").json["items"]
    assert {i["member_id"] for i in only_held} == held


def test_holdout_rounds_down_and_zero_keeps_none(api):
    program = api.program()
    members(api, program["id"], 9)
    # 15 % of 9 is 1.35: one member held out.
    c = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "A", "holdout_percent": 15}).json
    assert (c["held_out"], c["reached"]) == (1, 8)
    plain = api.post(f"/programs/{program['id']}/campaigns", {"text": "B"}).json
    assert (plain["holdout_percent"], plain["held_out"], plain["reached"]) == (0, 0, 9)
    assert plain["holdout_seed"] is None
    items = api.get(f"/campaigns/{plain['id']}/recipients").json["items"]
    assert {i["group"] for i in items} == {"reached"} and len(items) == 9


def test_bad_holdout_share_is_a_problem_naming_the_field(api):
    program = api.program()
    for value in (51, -1, "10", 10.5, True):
        r = api.post(f"/programs/{program['id']}/campaigns",
                     {"text": "A", "holdout_percent": value})
        assert r.status_code == 422, (value, r.json)
        assert "holdout_percent" in str(r.json), r.json
    r = api.get("/campaigns/1/recipients?group=everyone")
    assert r.status_code in (400, 422) and "group" in str(r.json)


def test_effect_compares_reached_with_holdout(api, session):
    program = api.program()
    reachable = members(api, program["id"], 10)
    outsider = members(api, program["id"], 1, consent=False, first=50)[0]
    c = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "Come back", "holdout_percent": 20}).json
    assert (c["reached"], c["held_out"]) == (8, 2)
    groups = {i["member_id"]: i["group"]
              for i in api.get(f"/campaigns/{c['id']}/recipients").json["items"]}
    reached = [m["id"] for m in reachable if groups[m["id"]] == "reached"]
    held = [m["id"] for m in reachable if groups[m["id"]] == "holdout"]

    def buy(member_id, amount):
        r = api.post(f"/members/{member_id}/transactions", {"type": "earn", "amount": amount})
        assert r.status_code == 201, r.json

    # Reached: A buys twice (100 + 50), B once (200), C once (stamps or points only would
    # count the same; here 0.50): 4 purchases by 3 of 8 members, 350.50 RUB.
    buy(reached[0], "100")
    buy(reached[0], "50")
    buy(reached[1], "200")
    buy(reached[2], "0.50")
    # Holdout: one of the 2 buys once, 100 RUB.
    buy(held[0], "100")
    # Not in the campaign: not counted anywhere.
    buy(outsider["id"], "999")
    # A redemption is not a purchase.
    api.post(f"/members/{reached[0]}/transactions", {"type": "redeem", "points": 1})

    r = api.get(f"/campaigns/{c['id']}/effect")
    assert r.status_code == 200, r.json
    effect = r.json
    assert effect["complete"] is False
    assert effect["reached"] == {
        "members": 8, "purchases": 4, "purchasing_members": 3,
        "revenue": {"amount": "350.5", "currency": "RUB"},
        # 4 / 8, 3 / 8, 350.50 / 8
        "purchases_per_member": "0.5000", "purchasing_rate": "0.3750",
        "revenue_per_member": "43.8125"}
    assert effect["holdout"] == {
        "members": 2, "purchases": 1, "purchasing_members": 1,
        "revenue": {"amount": "100", "currency": "RUB"},
        "purchases_per_member": "0.5000", "purchasing_rate": "0.5000",
        "revenue_per_member": "50.0000"}
    assert effect["difference"] == {"purchases_per_member": "0.0000",
                                    "purchasing_rate": "-0.1250",
                                    "revenue_per_member": "-6.1875"}
    start = dt.datetime.fromisoformat(effect["window_start"])
    assert dt.datetime.fromisoformat(effect["window_end"]) - start == dt.timedelta(days=7)

    # Sent 8 days ago: those purchases came after the window, which has ended.
    session.execute(update(Campaign).where(Campaign.id == c["id"]).values(
        created_at=start - dt.timedelta(days=8)))
    session.commit()
    late = api.get(f"/campaigns/{c['id']}/effect").json
    assert late["complete"] is True
    assert late["reached"]["purchases"] == 0 and late["holdout"]["purchases"] == 0
    assert late["reached"]["members"] == 8 and late["holdout"]["members"] == 2
    assert Decimal(late["difference"]["revenue_per_member"]) == 0


def test_effect_of_a_campaign_without_holdout_has_an_empty_group(api):
    program = api.program()
    m = members(api, program["id"], 2)
    c = api.post(f"/programs/{program['id']}/campaigns", {"text": "Hi"}).json
    api.post(f"/members/{m[0]['id']}/transactions", {"type": "earn", "amount": "10"})
    effect = api.get(f"/campaigns/{c['id']}/effect").json
    assert effect["reached"]["purchases_per_member"] == "0.5000"
    assert effect["holdout"]["members"] == 0
    assert effect["holdout"]["purchases_per_member"] is None
    assert effect["difference"]["purchasing_rate"] is None


def test_another_merchants_campaign_is_not_found(api, other_api):
    program = api.program()
    members(api, program["id"], 3)
    c = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "Hi", "holdout_percent": 50}).json
    assert c["held_out"] == 1
    for path in (f"/campaigns/{c['id']}/effect", f"/campaigns/{c['id']}/recipients"):
        r = other_api.get(path)
        assert r.status_code == 404, r.json
        assert r.json["errors"][0]["field"] == "campaign_id"
    assert api.get("/campaigns/999999/effect").status_code == 404
