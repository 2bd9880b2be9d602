"""Analytics (docs/analytics.md) on a small history made by hand, in a merchant time zone
ten hours east of UTC (Asia/Vladivostok), so that entries near midnight fall on another
day, and month, there than in UTC. Every expected number below is worked out by hand from
the table of entries, not read from the code.

The history is posted through the API as a till would post it (the rules give the points:
10 per 100 RUB), then each row is moved to its moment in the past, as if it had been posted
then; the worker brings the rollups up to date, and the API reads them.

Members and their local enrollment (UTC+10):
  A 2025-01-10, B 2025-01-20, C 2025-02-05,
  D 2025-03-01 05:00 local = 2025-02-28 19:00 UTC (a March member, a February one in UTC)

Entries (local time):
  #1  A 2025-01-10 12:00 purchase 1000 RUB            +100
  #2  B 2025-01-25 10:00 purchase  200 RUB            +20
  #3  B 2025-01-25 18:00 purchase  400 RUB            +40
  #4  C 2025-02-06 09:00 points only (a visit)         +50
  #5  A 2025-02-15 12:00 purchase  500 RUB            +50   A reaches Gold (150 points)
  #6  D 2025-03-01 06:00 purchase  100 RUB            +10   = 2025-02-28 20:00 UTC
  #7  A 2025-03-02 01:30 purchase  300 RUB            +30   = 2025-03-01 15:30 UTC, store L
  r   A 2025-03-03 12:00 reward "Free coffee"          −50
  c   B 2025-03-04 12:00 coupon "−20% on pastries"       0
  f   A 2025-03-05 12:00 refund 100 RUB of #7           −10
  t   D 2025-03-06 12:00 tier Gold assigned
  j   B 2025-03-07 12:00 manual adjustment              +5
  #8  C 2025-03-10 12:00 purchase  600 RUB            +60   store L
  x   A 2025-03-20 12:00 20 points expire               −20
  #9  C 2025-03-25 12:00 points only (a visit)          +5
  #10 D 2025-03-31 23:50 purchase  250 RUB            +25   = 2025-03-31 13:50 UTC
Wallets: A adds the card to Apple Wallet 2025-03-02 01:00 local (2025-03-01 15:00 UTC); B
saves it to Google Wallet 2025-02-10 and deletes it 2025-03-15.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from api_support import Api
from api_support import make_merchant
from console_support import make_user
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.db import utcnow
from wallet_service.models import AnalyticsRefresh
from wallet_service.models import LedgerTransaction
from wallet_service.models import LoyaltyCard
from wallet_service.models import Member
from wallet_service.services import wallet_events
from wallet_service.worker import Worker

ZONE = "Asia/Vladivostok"
EAST = dt.timezone(dt.timedelta(hours=10))


def at(text: str, tz: dt.tzinfo = EAST) -> dt.datetime:
    """A local moment written ``2025-03-02 01:30``, as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(dt.UTC)


def refresh(app: Any, now: dt.datetime | None = None) -> None:
    """What the worker does every few minutes, done now (or at ``now``)."""
    worker = Worker.from_state(app.extensions["wallet"], wakeups=(),
                               clock=lambda: now or utcnow())
    worker.ANALYTICS_EVERY = dt.timedelta(0)
    assert worker.analytics() >= 1


def backdate(app: Any, table: Any, row_id: int, moment: dt.datetime, **more: Any) -> None:
    column = "occurred_at" if table is wallet_events.EVENTS else "created_at"
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(table).where(table.c.id == row_id).values({column: moment, **more}))
        s.commit()


def post(api: Api, member: dict[str, Any], body: dict[str, Any]) -> int:
    r = api.post(f"/members/{member['id']}/transactions", body)
    assert r.status_code == 201, r.json
    return int(r.json["transaction"]["id"])


@pytest.fixture
def shop(app: Any, client: Any) -> dict[str, Any]:
    """The history above; returns the API, the program, members, location and ids."""
    merchant_id, key = make_merchant(app, "Vladivostok Coffee", time_zone=ZONE)
    api = Api(client, key, merchant_id)
    program = api.program(point_value="0.50",
                          tiers=[{"name": "Gold", "threshold": "150"}])
    pid = program["id"]
    location = api.post("/locations", {"name": "Harbour", "address": "Svetlanskaya 1",
                                       "latitude": 43.11, "longitude": 131.88}).json
    reward = api.post(f"/programs/{pid}/rewards", {"name": "Free coffee",
                                                   "cost_points": 50}).json
    members = {}
    for name, phone, joined in (("A", "+7 912 000-00-01", "2025-01-10 09:00"),
                                ("B", "+7 912 000-00-02", "2025-01-20 09:00"),
                                ("C", "+7 912 000-00-03", "2025-02-05 09:00"),
                                ("D", "+7 912 000-00-04", "2025-03-01 05:00")):
        members[name] = api.member(pid, name=name, phone=phone)
        backdate(app, Member.__table__, members[name]["id"], at(joined))
    coupon = api.post(f"/programs/{pid}/coupons", {
        "title": "−20% on pastries", "segment": {"member_ids": [members["B"]["id"]]}}).json
    A, B, C, D = (members[n] for n in "ABCD")
    txn = LedgerTransaction.__table__
    purchases = {}

    def earn(n: int, who: dict[str, Any], when: str, body: dict[str, Any], **more: Any) -> None:
        purchases[n] = post(api, who, {"type": "earn", **body})
        backdate(app, txn, purchases[n], at(when), **more)

    earn(1, A, "2025-01-10 12:00", {"amount": "1000"})
    earn(2, B, "2025-01-25 10:00", {"amount": "200"})
    earn(3, B, "2025-01-25 18:00", {"amount": "400"})
    earn(4, C, "2025-02-06 09:00", {"points": 50})
    earn(5, A, "2025-02-15 12:00", {"amount": "500"})
    earn(6, D, "2025-03-01 06:00", {"amount": "100"})
    earn(7, A, "2025-03-02 01:30", {"amount": "300"}, location_id=location["id"])
    r = api.post(f"/members/{A['id']}/rewards/{reward['id']}/redeem")
    assert r.status_code == 201, r.json
    backdate(app, txn, r.json["transaction"]["id"], at("2025-03-03 12:00"))
    r = api.post(f"/members/{B['id']}/coupons/{coupon['id']}/redeem")
    assert r.status_code == 201, r.json
    backdate(app, txn, r.json["transaction"]["id"], at("2025-03-04 12:00"))
    refund = post(api, A, {"type": "refund", "original_id": purchases[7], "amount": "100"})
    backdate(app, txn, refund, at("2025-03-05 12:00"))
    r = api.post(f"/members/{D['id']}/tier", {"tier": "Gold"})
    assert r.status_code == 200, r.json
    with app.extensions["wallet"].sessions() as s:
        tier_set = s.scalar(txn.select().with_only_columns(txn.c.id).where(
            txn.c.type == "tier_set"))
    backdate(app, txn, tier_set, at("2025-03-06 12:00"))
    adjust = post(api, B, {"type": "adjust", "points": 5, "reason": "goodwill"})
    backdate(app, txn, adjust, at("2025-03-07 12:00"))
    earn(8, C, "2025-03-10 12:00", {"amount": "600"}, location_id=location["id"])
    with app.extensions["wallet"].sessions() as s:
        # The entry the daily job writes when a lot of points runs out.
        card_a = s.scalars(select(LoyaltyCard).where(LoyaltyCard.member_id == A["id"])).one()
        s.execute(insert(txn).values(
            merchant_id=merchant_id, card_id=card_a.id, type="expire", points=-20,
            balance_after=card_a.balance - 20, tier_after=card_a.tier,
            reason="points expired", created_at=at("2025-03-20 12:00")))
        s.execute(update(LoyaltyCard.__table__).where(LoyaltyCard.id == card_a.id)
                  .values(balance=card_a.balance - 20))
        s.commit()
    earn(9, C, "2025-03-25 12:00", {"points": 5})
    earn(10, D, "2025-03-31 23:50", {"amount": "250"})
    with app.extensions["wallet"].sessions() as s:
        cards = {n: s.scalar(select(LoyaltyCard.id)
                             .where(LoyaltyCard.member_id == members[n]["id"])) for n in "AB"}
        for card, wallet, event, when in (
                (cards["A"], "apple", "installed", "2025-03-02 01:00"),
                (cards["B"], "google", "installed", "2025-02-10 12:00"),
                (cards["B"], "google", "removed", "2025-03-15 12:00")):
            wallet_events.record(s, merchant_id=merchant_id, card_id=card, wallet=wallet,
                                 event=event, cause="test history", at=at(when))
        s.commit()
    refresh(app)
    return {"api": api, "program": program, "members": members, "location": location,
            "reward": reward, "coupon": coupon}


MARCH = {"start": "2025-03-01", "end": "2025-03-31"}


def metrics(api: Api, **query: Any) -> dict[str, dict[str, Any]]:
    r = api.get("/analytics/summary", query_string=query)
    assert r.status_code == 200, r.json
    return {m["key"]: m for m in r.json["metrics"]}


def test_headline_numbers_of_march_against_february(shop):
    api, program = shop["api"], shop["program"]
    r = api.get("/analytics/summary", query_string=MARCH)
    assert r.status_code == 200
    period = r.json["period"]
    # The 31 days before March: 29 January to 28 February.
    assert (period["previous_start"], period["previous_end"]) == ("2025-01-29", "2025-02-28")
    assert period["time_zone"] == ZONE and period["currency"] == "RUB"
    assert period["program_ids"] == [program["id"]]
    m = metrics(api, **MARCH)

    def pair(key: str) -> tuple[Any, Any]:
        return m[key]["value"], m[key]["previous"]

    # D joined on 1 March local time (28 February in UTC).
    assert pair("new_members") == (1, 1)
    assert pair("members_total") == (4, 3)
    # March: #6 #7 #8 #9 #10; before: #4 (points only) and #5.
    assert pair("purchases") == (5, 2)
    assert pair("paid_purchases") == (4, 1)
    # 100 + 300 + 600 + 250 RUB less the 100 RUB refund; before: 500 RUB.
    assert pair("revenue_minor") == (115_000, 50_000)
    assert m["revenue_minor"]["change"] == 65_000
    assert m["revenue_minor"]["change_percent"] == 130.0
    # 1250 RUB over 4 paid purchases; refunds do not lower a check.
    assert pair("average_check_minor") == (31_250, 50_000)
    # Members with a purchase from 2 to 31 March: A (#7, 2 March local), C, D (#10);
    # from 30 January to 28 February: C and A.
    assert pair("active_30") == (3, 2)
    # 1 January – 31 March: all four; 1 December – 28 February: A, B, C.
    assert pair("active_90") == (4, 3)
    # Two or more purchases within the 30 days: C (#8, #9) of 3; before: nobody of 2.
    assert pair("repeat_rate_30") == (0.3333, 0.0)
    # Within the 90 days: A (3), B (2 on one day), C (3), D (2) of 4; before: A, B of 3.
    assert pair("repeat_rate_90") == (1.0, 0.6667)
    # Purchases in the window over the members active in it: 4 / 3; before 2 / 2.
    assert pair("purchase_frequency_30") == (1.3333, 1.0)
    # 10 / 4; before: #1 – #5 over A, B, C.
    assert pair("purchase_frequency_90") == (2.5, 1.6667)
    # Issued: 10 + 30 + 60 + 5 + 25 + the adjustment's 5; before: 50 + 50.
    assert pair("points_issued") == (135, 100)
    assert pair("points_redeemed") == (50, 0)
    assert pair("points_expired") == (20, 0)
    assert pair("redemption_rate") == (0.3704, 0.0)
    assert pair("breakage") == (0.1481, 0.0)
    assert pair("rewards_redeemed") == (1, 0)
    assert pair("coupons_redeemed") == (1, 0)
    # A 100, B 65, C 115, D 35 at the end of March; #1 – #5 by the end of February.
    assert pair("points_outstanding") == (315, 260)
    # At 0.50 RUB a point.
    assert pair("points_liability_minor") == (15_750, 13_000)
    assert pair("apple_installs") == (1, 0)
    assert pair("google_installs") == (0, 1)
    assert pair("google_removals") == (1, 0)
    assert m["apple_removals"]["change_percent"] is None  # from nothing


def test_daily_rows_follow_local_days(shop):
    api = shop["api"]
    r = api.get("/analytics/daily", query_string={"start": "2025-02-28", "end": "2025-03-02"})
    assert r.status_code == 200
    days = {d["day"]: d for d in r.json["days"]}
    assert list(days) == ["2025-02-28", "2025-03-01", "2025-03-02"]
    # In UTC, D's joining, #6 and A's Apple install would all be on 28 February.
    assert days["2025-02-28"]["new_members"] == 0 and days["2025-02-28"]["purchases"] == 0
    assert days["2025-03-01"]["new_members"] == 1
    assert (days["2025-03-01"]["purchases"], days["2025-03-01"]["revenue_minor"]) == (1, 10_000)
    assert (days["2025-03-02"]["purchases"], days["2025-03-02"]["revenue_minor"]) == (1, 30_000)
    assert days["2025-03-02"]["apple_installs"] == 1
    assert [d["members_total"] for d in days.values()] == [3, 4, 4]
    # 28 Feb: C (#4), A (#5) since 30 Jan; 1 March: and D; 2 March: and A again.
    assert [d["active_30"] for d in days.values()] == [2, 3, 3]


def test_cohorts_retention_and_ltv(shop):
    api = shop["api"]
    r = api.get("/analytics/cohorts", query_string={"start": "2025-01-01", "end": "2025-03-31"})
    assert r.status_code == 200
    jan, feb, mar = r.json["cohorts"]
    assert (jan["month"], jan["members"]) == ("2025-01-01", 2)
    # January: A and B bought; February and March: A only; nobody since.
    assert jan["retention"][:4] == [1.0, 0.5, 0.5, 0.0]
    assert set(jan["retention"][3:]) == {0.0}
    # 1600 RUB in January, 500 in February, 300 − 100 in March, over 2 members.
    assert jan["ltv_minor"] == {"1": 80_000, "3": 115_000, "6": 115_000, "12": 115_000}
    assert (feb["month"], feb["members"]) == ("2025-02-01", 1)
    # C's points-only visit makes February count; its money comes in March.
    assert feb["retention"][:3] == [1.0, 1.0, 0.0]
    assert feb["ltv_minor"] == {"1": 0, "3": 60_000, "6": 60_000, "12": 60_000}
    assert (mar["month"], mar["members"]) == ("2025-03-01", 1)
    assert mar["retention"][:2] == [1.0, 0.0]
    assert mar["ltv_minor"]["1"] == 35_000


def test_points_liability_breakage_and_redemption(shop):
    api = shop["api"]
    r = api.get("/analytics/points", query_string=MARCH)
    assert r.status_code == 200
    (p,) = r.json["programs"]
    assert (p["outstanding"], p["point_value_minor"], p["liability_minor"]) == (315, 50.0, 15_750)
    assert (p["issued"], p["redeemed"], p["expired"]) == (135, 50, 20)
    assert (p["redemption_rate"], p["breakage"]) == (0.3704, 0.1481)
    # 20 expired of 100 + 20 + 40 + 50 + 50 + 135 issued to date.
    assert p["breakage_to_date"] == 0.0506


def test_reward_and_coupon_popularity(shop):
    api = shop["api"]
    r = api.get("/analytics/rewards", query_string=MARCH)
    assert r.status_code == 200
    assert [(i["kind"], i["id"], i["name"], i["count"]) for i in r.json["items"]] == [
        ("reward", shop["reward"]["id"], "Free coffee", 1),
        ("coupon", shop["coupon"]["id"], "−20% on pastries", 1)]
    r = api.get("/analytics/rewards", query_string={"start": "2025-02-01",
                                                    "end": "2025-02-28"})
    assert r.json["items"] == []


def test_per_location_and_a_location_filter(shop):
    api, location = shop["api"], shop["location"]
    r = api.get("/analytics/locations", query_string=MARCH)
    assert r.status_code == 200
    rows = {i["id"]: i for i in r.json["items"]}
    assert set(rows) == {None, location["id"]}
    harbour, elsewhere = rows[location["id"]], rows[None]
    assert harbour["name"] == "Harbour"
    # #7 and #8 at the store: 300 + 600 RUB.
    assert (harbour["purchases"], harbour["revenue_minor"],
            harbour["average_check_minor"], harbour["points_issued"]) == (2, 90_000, 45_000, 90)
    # #6, #9, #10 and the refund, reward, coupon, adjustment through the API.
    assert (elsewhere["purchases"], elsewhere["paid_purchases"], elsewhere["revenue_minor"],
            elsewhere["average_check_minor"]) == (3, 2, 25_000, 17_500)
    assert (elsewhere["rewards_redeemed"], elsewhere["coupons_redeemed"],
            elsewhere["manual_entries"], elsewhere["points_issued"]) == (1, 1, 1, 45)
    m = metrics(api, location_id=location["id"], **MARCH)
    assert m["purchases"]["value"] == 2 and m["revenue_minor"]["value"] == 90_000
    # Members belong to programs, not stores.
    assert m["members_total"]["value"] is None and m["active_30"]["value"] is None
    r = api.get("/analytics/staff", query_string=MARCH)
    assert [(i["id"], i["purchases"]) for i in r.json["items"]] == [(None, 5)]



def test_per_staff_names_the_merchants_own_users(shop, app, other_api):
    api, location = shop["api"], shop["location"]
    staff_id, email = make_user(app, api.merchant_id, "staff")
    stranger_id, _ = make_user(app, other_api.merchant_id, "staff")
    txn = LedgerTransaction.__table__
    with app.extensions["wallet"].sessions() as s:
        # The till's purchases (#7, #8) by the staff user; the reward by an id that is
        # another merchant's user (it names nobody here).
        s.execute(update(txn).where(txn.c.location_id == location["id"],
                                    txn.c.type == "earn").values(staff_user_id=staff_id))
        s.execute(update(txn).where(txn.c.merchant_id == api.merchant_id,
                                    txn.c.type == "reward").values(staff_user_id=stranger_id))
        s.execute(delete(AnalyticsRefresh.__table__))  # recompute every day
        s.commit()
    refresh(app)
    r = api.get("/analytics/staff", query_string=MARCH)
    assert r.status_code == 200
    rows = {i["id"]: (i["name"], i["purchases"]) for i in r.json["items"]}
    assert rows == {staff_id: (email, 2), stranger_id: (None, 0), None: (None, 3)}

def test_tier_distribution_and_movement(shop):
    api = shop["api"]
    today = utcnow().astimezone(EAST).date().isoformat()
    r = api.get("/analytics/tiers", query_string={"start": "2025-03-01", "end": today})
    assert r.status_code == 200 and r.json["as_of"] == today
    assert {(t["tier"], t["members"]) for t in r.json["distribution"]} == {("Gold", 2),
                                                                            (None, 2)}
    # D was given Gold on 6 March.
    assert r.json["movements"] == [{"from_tier": None, "to_tier": "Gold", "members": 1}]
    r = api.get("/analytics/tiers", query_string={"start": "2025-01-01", "end": "2025-03-31"})
    # And A reached it on 15 February.
    assert r.json["movements"] == [{"from_tier": None, "to_tier": "Gold", "members": 2}]


def test_csv_variants(shop):
    api = shop["api"]
    r = api.get("/analytics/summary", query_string={**MARCH, "format": "csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "summary-2025-03-01-2025-03-31.csv" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["metric", "unit", "value", "previous", "change", "change_percent"]
    assert ["revenue_minor", "minor", "115000", "50000", "65000", "130.0"] in rows
    r = api.get("/analytics/daily", query_string={"start": "2025-03-01", "end": "2025-03-02"},
                headers={"Accept": "text/csv"})
    assert r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [(d["day"], d["purchases"]) for d in rows] == [("2025-03-01", "1"),
                                                           ("2025-03-02", "1")]
    r = api.get("/analytics/cohorts", query_string={"start": "2025-01-01", "end": "2025-01-31",
                                                    "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0]["members"] == "2" and rows[0]["ltv_month_3_minor"] == "115000"
    assert rows[0]["retention_month_1"] == "0.5"
    r = api.get("/analytics/rewards", query_string={**MARCH, "format": "csv"})
    lines = r.get_data(as_text=True).splitlines()
    # A name a spreadsheet would take for a formula stays text.
    assert lines[2].startswith("coupon,") and ",'−20% on pastries," not in lines[2]


def test_one_merchant_never_sees_another(shop, other_api):
    program = shop["program"]
    r = other_api.get("/analytics/summary", query_string={"program_id": program["id"]})
    assert r.status_code == 404 and r.json["errors"][0]["field"] == "program_id"
    r = other_api.get("/analytics/locations",
                      query_string={"location_id": shop["location"]["id"]})
    assert r.status_code == 404
    m = metrics(other_api, **MARCH)
    assert m["purchases"]["value"] == 0 and m["members_total"]["value"] == 0


def test_bad_periods_and_permissions(app, client, api):
    r = api.get("/analytics/summary", query_string={"start": "2025-03-10",
                                                    "end": "2025-03-01"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "end"
    r = api.get("/analytics/summary", query_string={"start": "2015-01-01",
                                                    "end": "2025-03-01"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "end"
    r = api.get("/analytics/daily", query_string={"start": "2025-02-30"})
    assert r.status_code == 422
    r = api.get("/analytics/cohorts", query_string={"location_id": 1})
    assert r.status_code == 422
    r = api.get("/analytics/summary", query_string={"format": "xml"})
    assert r.status_code == 422
    r = client.get("/api/v1/analytics/summary")
    assert r.status_code == 401
    # A read-only key may read them.
    key = api.post("/api-keys", {"name": "reports", "scope": "read"}).json["api_key"]
    r = client.get("/api/v1/analytics/daily", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert len(r.json["days"]) == 30  # the 30 days through today by default


def test_programs_of_two_currencies_need_a_choice(api):
    api.program()
    api.program(name="Euro", currency="EUR")
    r = api.get("/analytics/summary")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "program_id"


def test_a_summer_time_change_moves_the_day_boundary(app, client):
    """Europe/Berlin goes from UTC+1 to UTC+2 at 01:00 UTC on 30 March 2025."""
    merchant_id, key = make_merchant(app, "Berlin", time_zone="Europe/Berlin")
    api = Api(client, key, merchant_id)
    pid = api.program()["id"]
    for phone, moment in (("+7 912 000-00-11", "2025-03-29 23:30"),   # 00:30 CET, 30 March
                          ("+7 912 000-00-12", "2025-03-30 21:30"),   # 23:30 CEST, 30 March
                          ("+7 912 000-00-13", "2025-03-30 22:30")):  # 00:30 CEST, 31 March
        member = api.member(pid, phone=phone)
        backdate(app, Member.__table__, member["id"], at(moment, dt.UTC))
    refresh(app)
    r = api.get("/analytics/daily", query_string={"start": "2025-03-29", "end": "2025-03-31"})
    assert [d["new_members"] for d in r.json["days"]] == [0, 2, 1]


def test_refresh_picks_up_where_it_left_off(app, client):
    """Refreshes within a day read that day's entries only: sums are live, the rolling
    windows show the day before's until the day is over; the next day's first refresh
    counts the finished day."""
    merchant_id, key = make_merchant(app, "Daily", time_zone="UTC")
    api = Api(client, key, merchant_id)
    pid = api.program()["id"]
    anna = api.member(pid)
    now = utcnow()
    today = now.date()
    first = post(api, anna, {"type": "earn", "amount": "100"})
    backdate(app, LedgerTransaction.__table__, first, now - dt.timedelta(days=1))
    backdate(app, Member.__table__, anna["id"], now - dt.timedelta(days=2))
    refresh(app)
    post(api, anna, {"type": "earn", "amount": "50"})
    refresh(app)
    period = {"start": (today - dt.timedelta(days=2)).isoformat(), "end": today.isoformat()}
    m = metrics(api, **period)
    assert m["purchases"]["value"] == 2 and m["revenue_minor"]["value"] == 15_000
    assert m["members_total"]["value"] == 1 and m["points_outstanding"]["value"] == 15
    # Through yesterday: one purchase, so active but not yet a repeat buyer.
    assert m["active_30"]["value"] == 1 and m["repeat_rate_30"]["value"] == 0.0
    refresh(app, now + dt.timedelta(days=1))
    m = metrics(api, **period)
    assert m["active_30"]["value"] == 1 and m["repeat_rate_30"]["value"] == 1.0
    assert m["purchases"]["value"] == 2 and m["points_outstanding"]["value"] == 15


def test_the_running_worker_refreshes_beside_its_deliveries(app, api):
    """``Worker.run`` refreshes in a thread of its own: the numbers arrive without anyone
    asking, and pushes never wait for a refresh."""
    import threading
    import time

    anna = api.member(api.program()["id"])
    post(api, anna, {"type": "earn", "amount": "120"})
    worker = Worker.from_state(app.extensions["wallet"], wakeups=())
    worker.ANALYTICS_START_DELAY = 0.0
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while metrics(api)["purchases"]["value"] != 1:
            assert time.monotonic() < deadline, "the worker never refreshed"
            time.sleep(0.2)
        assert metrics(api)["revenue_minor"]["value"] == 12_000
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
