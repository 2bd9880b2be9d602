"""Card mechanics that used to come out wrong: stamp refunds after a reward, category
cashback against tier cashback, the balance answered with a referral bonus, tier progress over
a window, expiry reminders, repeated action bonuses and coupons for members who join a
segment later."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy import update
from test_mechanics_automations import booked_on
from test_mechanics_automations import daily
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files

from wallet_service import rules
from wallet_service.models import LedgerTransaction
from wallet_service.models import PointLot

BASE = "https://wallet.example.test"


def txn(api, m, **body):
    return api.post(f"/members/{m['id']}/transactions", body)


def member(api, m):
    return api.get(f"/members/{m['id']}").json


def card_page(client, m, lang):
    r = client.get(m["card_url"].removeprefix(BASE) + f"?lang={lang}")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def backdate(session, days, *conditions):
    """Move ledger rows ``days`` into the past, as if they were written then."""
    rows = session.execute(select(LedgerTransaction.id, LedgerTransaction.created_at)
                           .where(*conditions)).all()
    for row in rows:
        session.execute(update(LedgerTransaction).where(LedgerTransaction.id == row.id)
                        .values(created_at=row.created_at - dt.timedelta(days=days)))
    session.commit()


# --- 1. stamp refunds ---------------------------------------------------------------------


@pytest.fixture
def stamp_program(api):
    return api.program(kind="stamps", languages=["en", "ru"],
                       stamps={"goal": 6, "reward": "a free coffee", "max_per_window": None})


def test_stamp_rules_take_back_rewards_then_owe_stamps():
    # 5/6 and one reward ready; a refund of 1 stamp takes the reward back: 5/6 again.
    assert rules.take_back_stamps(0, 1, 6, ready=1) == rules.StampResult(5, rewards=-1)
    # Stamps on the card are taken first; no reward is touched.
    assert rules.take_back_stamps(3, 2, 6, ready=1) == rules.StampResult(1)
    # The reward was claimed already: the card owes the stamp.
    assert rules.take_back_stamps(0, 1, 6, ready=0) == rules.StampResult(0, debt=1)
    assert rules.take_back_stamps(0, 7, 6, ready=1) == rules.StampResult(0, -1, debt=1)
    assert rules.take_back_stamps(0, 2, 6, ready=0, debt=1) == rules.StampResult(0, debt=3)
    # New stamps pay the debt first, then count and wrap as before.
    assert rules.add_stamps(0, 2, 6, debt=3) == rules.StampResult(0, debt=1)
    assert rules.add_stamps(0, 8, 6, debt=1) == rules.StampResult(1, rewards=1)
    assert rules.add_stamps(5, 2, 6) == rules.StampResult(1, rewards=1)


def test_refunding_the_purchase_that_completed_the_card_takes_the_reward_back(api, stamp_program):
    m = api.member(stamp_program["id"])
    api.post(f"/members/{m['id']}/stamps", {"count": 5})
    sale = txn(api, m, type="earn", amount="300").json
    assert sale["transaction"]["points"] == 1 and sale["balance"] == 1  # the free coffee
    r = txn(api, m, type="refund", original_id=sale["transaction"]["id"])
    assert r.status_code == 201, r.json
    assert r.json["transaction"]["stamps"] == -1 and r.json["transaction"]["points"] == -1
    assert r.json["balance"] == 0
    got = member(api, m)
    assert (got["stamps"], got["balance"], got["stamp_debt"]) == (5, 0, 0)
    # The coffee is gone: it cannot be claimed.
    assert txn(api, m, type="redeem", points=1).status_code == 409


def test_refund_after_the_reward_was_claimed_leaves_a_stamp_debt(api, client, stamp_program):
    m = api.member(stamp_program["id"])
    api.post(f"/members/{m['id']}/stamps", {"count": 4})
    sales = [txn(api, m, type="earn", amount="300").json for _ in range(2)]  # 5/6, then a reward
    assert txn(api, m, type="redeem", points=1).status_code == 201  # coffee drunk
    for sale in sales:
        r = txn(api, m, type="refund", original_id=sale["transaction"]["id"])
        assert r.status_code == 201, r.json
        assert r.json["transaction"]["details"]["stamp_debt"] == 1
    got = member(api, m)
    assert (got["stamps"], got["balance"], got["stamp_debt"]) == (0, 0, 2)

    back = fields(pass_files(api, got))
    assert "2" in back["stamp_debt"]["value"]
    assert "8 more to a free coffee" in back["progress"]["value"]  # 2 owed + 6
    page = card_page(client, got, "en")
    assert re.search(r'id="stamp-debt">2\u00a0stamps owed for a refunded purchase', page)
    assert "Долг по штампам после возврата: 2\u00a0штампа" in card_page(client, got, "ru")

    # The next stamps pay the debt first.
    r = api.post(f"/members/{m['id']}/stamps", {"count": 3})
    assert r.status_code == 201
    got = member(api, m)
    assert (got["stamps"], got["balance"], got["stamp_debt"]) == (1, 0, 0)
    assert "stamp_debt" not in fields(pass_files(api, got))
    assert 'id="stamp-debt"' not in card_page(client, got, "en")


# --- 2. cashback: category against tier ----------------------------------------------------


def _cashback_program(api, **cashback):
    return api.program(
        kind="cashback", tier_basis="lifetime_spend",
        cashback={"percent": "5", "categories": {"bakery": "10", "tobacco": "1"}, **cashback},
        tiers=[{"name": "Base", "threshold": 0},
               {"name": "VIP", "threshold": 1000, "cashback_percent": "15"}])


LINES = [{"category": "bakery", "amount": "100"}, {"category": "tobacco", "amount": "100"}]


def test_a_category_rate_does_not_lower_a_higher_tier_rate(api):
    program = _cashback_program(api)
    assert program["cashback"]["category_rate_overrides_tier"] is False
    vip = api.member(program["id"])
    assert txn(api, vip, type="earn", amount="1000").json["tier"] == "VIP"
    sale = txn(api, vip, type="earn", lines=LINES).json
    assert sale["transaction"]["points"] == 1500 + 1500  # kopecks: the VIP 15 % twice

    base = api.member(program["id"], phone="+7 912 000-00-31")
    sale = txn(api, base, type="earn", lines=LINES).json
    assert sale["tier"] == "Base"
    assert sale["transaction"]["points"] == 1000 + 100  # no tier rate: the categories'


def test_a_program_may_let_category_rates_override_the_tier(api):
    program = _cashback_program(api, category_rate_overrides_tier=True)
    vip = api.member(program["id"])
    txn(api, vip, type="earn", amount="1000")
    sale = txn(api, vip, type="earn", lines=[*LINES, {"category": "coffee", "amount": "100"}])
    assert sale.json["transaction"]["points"] == 1000 + 100 + 1500

    schema = api.get("/openapi.json").json["components"]["schemas"]["CashbackRule-Input"]
    assert "tier" in schema["properties"]["category_rate_overrides_tier"]["description"]


# --- 3. the balance answered after a referral bonus ----------------------------------------


def test_the_answer_to_a_first_purchase_counts_the_referral_bonus(api):
    program = api.program(bonuses={"referred": 30, "referrer": 100})
    anna = api.member(program["id"])
    bob = api.member(program["id"], phone="+7 912 000-00-32",
                     referral_code=anna["referral_code"])
    key = {"Idempotency-Key": "first-purchase-bob"}
    r = api.post(f"/members/{bob['id']}/transactions", {"type": "earn", "amount": "100"},
                 headers=key)
    assert r.status_code == 201, r.json
    assert r.json["transaction"]["balance_after"] == 10  # the purchase row's own
    assert r.json["balance"] == 40 == member(api, bob)["balance"]
    replay = api.post(f"/members/{bob['id']}/transactions", {"type": "earn", "amount": "100"},
                      headers=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == r.json
    assert member(api, anna)["balance"] == 100
    second = txn(api, bob, type="earn", amount="100").json
    assert second["balance"] == second["transaction"]["balance_after"] == 50


# --- 4. tier progress over the window ------------------------------------------------------


def test_progress_after_a_window_downgrade_counts_the_window(api, client, session):
    program = api.program(tier_basis="visits", tier_window_days=30, languages=["en", "ru"],
                          tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 3}])
    m = api.member(program["id"])
    for _ in range(3):
        last = txn(api, m, type="earn", amount="100")
    assert last.json["tier"] == "Gold"
    # The first two visits were 40 days ago: only one is left in the window.
    first_two = select(LedgerTransaction.id).where(LedgerTransaction.type == "earn") \
        .order_by(LedgerTransaction.id).limit(2).scalar_subquery()
    backdate(session, 40, LedgerTransaction.id.in_(first_two))
    assert daily(api, booked_on(last))["downgrades"] == 1

    got = member(api, m)
    assert got["tier"] == "Bronze" and got["visits"] == 3
    progress = got["tier_progress"]
    assert progress["next_tier"] == "Gold" and Decimal(progress["left"]) == 2
    assert progress["percent"] == 33
    files = pass_files(api, got)
    assert fields(files)["tier_progress"]["value"] == "2 visits to Gold"
    # Russian counts visits in the form the number takes: 2 визита, not 2 визитов.
    assert fields(files, "ru")["tier_progress"]["value"] == "Gold: осталось 2 визита"
    page = card_page(client, got, "en")
    assert re.search(r'id="progress">2\u00a0visits to go until Gold', page)
    assert 'aria-valuenow="33"' in page


# --- 5. expiry reminders -------------------------------------------------------------------


def _lot_expiry(session):
    expiry = session.scalar(select(PointLot.expires_on).order_by(PointLot.id))
    session.rollback()
    return expiry


def test_a_reminder_leaves_the_card_when_its_points_expire(api, session):
    program = api.program(points_validity_days=30, expiry_reminder_days=7, languages=["en"])
    m = api.member(program["id"])
    txn(api, m, type="earn", points=100)
    expiry = _lot_expiry(session)
    assert daily(api, expiry - dt.timedelta(days=5))["reminded"] == 1
    got = member(api, m)
    assert got["reminder"] == (f"100\u00a0points expire on {expiry:%B} {expiry.day}, "
                               f"{expiry.year}. Don't miss out!")
    assert fields(pass_files(api, got))["expiry_reminder"]["value"] == got["reminder"]

    report = daily(api, expiry)
    assert report["expired"] == 1 and report["reminded"] == 0
    got = member(api, m)
    assert got["balance"] == 0 and got["reminder"] is None
    assert "expiry_reminder" not in fields(pass_files(api, got))


def test_a_reminder_follows_spending_and_keeps_the_campaign_message(api, session):
    program = api.program(points_validity_days=30, expiry_reminder_days=7, languages=["ru"])
    m = api.member(program["id"], marketing_consent=True)
    txn(api, m, type="earn", points=100)
    expiry = _lot_expiry(session)
    assert api.post(f"/programs/{program['id']}/campaigns",
                    {"text": "Новое меню с понедельника"}).status_code == 201
    daily(api, expiry - dt.timedelta(days=5))
    got = member(api, m)
    assert got["message"] == "Новое меню с понедельника"
    assert re.fullmatch(r"\d{1,2} \w+ \d{4}\s?г\. сгорят 100\u00a0баллов\. Успейте потратить!",
                        got["reminder"]), got["reminder"]

    version = got["version"]
    txn(api, m, type="redeem", points=99)
    got = member(api, m)
    assert got["reminder"].endswith("г. сгорит 1\u00a0балл. Успейте потратить!")
    assert got["version"] == version + 1
    txn(api, m, type="redeem", points=1)
    got = member(api, m)
    assert got["reminder"] is None and got["message"] == "Новое меню с понедельника"
    back = fields(pass_files(api, got))
    assert "expiry_reminder" not in back
    assert back["message"]["value"] == "Новое меню с понедельника"
    assert daily(api, expiry - dt.timedelta(days=4))["reminded"] == 0


# --- 6. action bonuses without a reference -------------------------------------------------


def test_an_action_without_a_reference_pays_once(api):
    program = api.program(bonuses={"actions": {"survey": 20}})
    m = api.member(program["id"])
    r = api.post(f"/members/{m['id']}/actions", {"action": "survey"})
    assert r.status_code == 201 and r.json["balance"] == 20
    again = api.post(f"/members/{m['id']}/actions", {"action": "survey"})
    assert again.status_code == 409
    assert again.json["errors"][0]["field"] == "action"
    assert "bonuses.action_period_days" in again.json["detail"]
    assert member(api, m)["balance"] == 20
    # A reference names another action: that still pays, once.
    assert api.post(f"/members/{m['id']}/actions",
                    {"action": "survey", "reference": "s-2"}).status_code == 201
    assert member(api, m)["balance"] == 40


def test_an_action_without_a_reference_pays_once_per_period(api, session):
    program = api.program(bonuses={"actions": {"survey": 20}, "action_period_days": 7})
    assert program["bonuses"]["action_period_days"] == 7
    m = api.member(program["id"])
    assert api.post(f"/members/{m['id']}/actions", {"action": "survey"}).status_code == 201
    assert api.post(f"/members/{m['id']}/actions", {"action": "survey"}).status_code == 409
    backdate(session, 6, LedgerTransaction.type == "bonus")
    assert api.post(f"/members/{m['id']}/actions", {"action": "survey"}).status_code == 409
    backdate(session, 2, LedgerTransaction.type == "bonus")  # 8 days ago now
    r = api.post(f"/members/{m['id']}/actions", {"action": "survey"})
    assert r.status_code == 201 and r.json["balance"] == 40
    assert api.post(f"/members/{m['id']}/actions", {"action": "survey"}).status_code == 409


def test_action_period_is_documented_and_checked(api):
    schema = api.get("/openapi.json").json["components"]["schemas"]["Bonuses"]
    assert "once" in schema["properties"]["action_period_days"]["description"]
    r = api.post("/programs", {"name": "X", "kind": "points",
                               "bonuses": {"action_period_days": 0}})
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "bonuses.action_period_days"


# --- 7. coupons ----------------------------------------------------------------------------


def test_a_coupon_for_a_tier_the_program_does_not_have_is_refused(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    m = api.member(program["id"])
    r = api.post(f"/programs/{program['id']}/coupons",
                 {"title": "Platinum treat", "segment": {"tier": "Platinum"}})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "segment.tier"
    assert "Bronze, Gold" in r.json["detail"]
    assert api.get(f"/members/{m['id']}/coupons").json["items"] == []
    plain = api.program(name="No tiers")
    r = api.post(f"/programs/{plain['id']}/coupons",
                 {"title": "Gold treat", "segment": {"tier": "Gold"}})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "segment.tier"


def test_an_evergreen_coupon_reaches_members_who_enter_the_segment_later(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Gold", "threshold": 100}])
    anna = api.member(program["id"])
    bob = api.member(program["id"], phone="+7 912 000-00-33")
    txn(api, anna, type="earn", points=150)
    txn(api, bob, type="earn", points=10)
    evergreen = api.post(f"/programs/{program['id']}/coupons", {
        "title": "Gold cake", "segment": {"tier": "Gold"}, "evergreen": True})
    assert evergreen.status_code == 201, evergreen.json
    assert evergreen.json["evergreen"] is True and evergreen.json["granted"] == 1
    once = api.post(f"/programs/{program['id']}/coupons",
                    {"title": "Gold coffee", "segment": {"tier": "Gold"}}).json
    assert once["evergreen"] is False

    last = txn(api, bob, type="earn", points=100)  # Bob is Gold now
    assert last.json["tier"] == "Gold"
    version = member(api, bob)["version"]
    day = booked_on(last)
    assert daily(api, day)["coupons_granted"] == 1
    assert daily(api, day)["coupons_granted"] == 0  # twice is once
    got = member(api, bob)
    assert got["version"] == version + 1
    assert [c["title"] for c in api.get(f"/members/{bob['id']}/coupons").json["items"]] == [
        "Gold cake"]
    assert fields(pass_files(api, got))["coupon"]["value"] == "Gold cake"

    # Used, it is not given again; a member who joins later and reaches Gold gets it too.
    assert api.post(f"/members/{bob['id']}/coupons/{evergreen.json['id']}/redeem"
                    ).status_code == 201
    cleo = api.member(program["id"], phone="+7 912 000-00-34")
    txn(api, cleo, type="earn", points=100)
    assert daily(api, day)["coupons_granted"] == 1
    assert [c["title"] for c in api.get(f"/members/{cleo['id']}/coupons").json["items"]] == [
        "Gold cake"]
    assert len(api.get(f"/members/{bob['id']}/coupons").json["items"]) == 1
