"""Tiers over a window, the daily job (expiry, reminders, birthdays, win-back), bonuses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy import update
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files

from wallet_service.models import PointLot


def booked_on(response):
    """The day (UTC) the service booked a posted transaction on, by its own clock: the days the
    tests run are counted from it, never from a "today" the test read for itself, which can be
    another day than the service's (collected before midnight, run after)."""
    created = dt.datetime.fromisoformat(response.json["transaction"]["created_at"])
    return created.astimezone(dt.UTC).date()


def daily(api, day):
    """The daily job for ``day``, through the service: days to come are the tests' way of
    moving time, and the API refuses them."""
    return api.run_daily(day)


def txn(api, m, **body):
    return api.post(f"/members/{m['id']}/transactions", body)


def history(api, m):
    return api.get(f"/members/{m['id']}/transactions").json["items"]


def in_utc(api):
    """The merchant's days are UTC days, as ``booked_on`` counts them."""
    assert api.patch("/merchant", {"time_zone": "UTC"}).status_code == 200


def test_tier_upgrade_now_and_scheduled_downgrade(api):
    in_utc(api)
    program = api.program(tier_basis="visits", tier_window_days=30, tiers=[
        {"name": "Bronze", "threshold": 0}, {"name": "Gold", "threshold": 3}])
    m = api.member(program["id"])
    first = txn(api, m, type="earn", amount="100")
    assert first.json["tier"] == "Bronze"
    assert txn(api, m, type="earn", amount="100").json["tier"] == "Bronze"
    r = txn(api, m, type="earn", amount="100")
    assert r.json["tier"] == "Gold"  # immediate
    day = booked_on(first)
    f = fields(pass_files(api, api.get(f"/members/{m['id']}").json))
    assert f["tier"]["value"] == "Gold" and "changeMessage" in f["tier"]
    # Within the window nothing moves; a day after the visits left it, Gold goes.
    assert daily(api, day + dt.timedelta(days=10))["downgrades"] == 0
    assert daily(api, day + dt.timedelta(days=31))["downgrades"] == 1
    assert daily(api, day + dt.timedelta(days=31))["downgrades"] == 0
    got = api.get(f"/members/{m['id']}").json
    assert got["tier"] == "Bronze"
    entry = history(api, m)[0]
    assert entry["type"] == "tier" and entry["details"]["from"] == "Gold"
    assert entry["tier_after"] == "Bronze"


def test_negative_adjust_lowers_the_tier_only_at_review(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Silver", "threshold": 100}])
    m = api.member(program["id"])
    txn(api, m, type="earn", points=150)
    r = txn(api, m, type="adjust", points=-100, reason="mistake")
    assert r.json["tier"] == "Silver"
    daily(api, booked_on(r))
    assert api.get(f"/members/{m['id']}").json["tier"] == "Bronze"


def test_expiry_takes_the_oldest_lot_and_leaves_spent_points(api, session):
    program = api.program(points_validity_days=30, expiry_reminder_days=7)
    m = api.member(program["id"])
    first = txn(api, m, type="earn", points=100).json["transaction"]["id"]
    txn(api, m, type="earn", points=50)
    # The first lot is older: make it expire ten days earlier than the second, whose expiry
    # the service set from its own day.
    last = session.scalar(select(PointLot.expires_on).where(PointLot.transaction_id != first))
    expiry = last - dt.timedelta(days=10)
    session.execute(update(PointLot).where(PointLot.transaction_id == first)
                    .values(expires_on=expiry))
    session.commit()
    txn(api, m, type="redeem", points=30)  # from the first lot
    lots = session.execute(select(PointLot.points, PointLot.remaining)
                           .order_by(PointLot.id)).all()
    session.rollback()  # end the read: SQLite writers would wait for it
    assert [tuple(lot) for lot in lots] == [(100, 70), (50, 50)]

    report = daily(api, expiry - dt.timedelta(days=5))  # reminder, nothing expires
    assert report["reminded"] == 1 and report["expired"] == 0
    assert "70" in api.get(f"/members/{m['id']}").json["reminder"]

    report = daily(api, expiry)
    assert report["expired"] == 1
    assert api.get(f"/members/{m['id']}").json["balance"] == 50
    assert daily(api, expiry)["expired"] == 0
    entry = history(api, m)[0]
    assert entry["type"] == "expire" and entry["points"] == -70
    assert entry["reference_id"] == first

    daily(api, last)
    assert api.get(f"/members/{m['id']}").json["balance"] == 0


def test_birthday_bonus_on_29_february(api):
    program = api.program(bonuses={"birthday": 200})
    leap = api.member(program["id"], birthday="2000-02-29")
    other = api.member(program["id"], phone="+7 912 000-00-09", birthday="1990-03-01")
    # 2027 is a common year: 28 February; twice is once.
    assert daily(api, dt.date(2027, 2, 27))["birthdays"] == 0
    assert daily(api, dt.date(2027, 2, 28))["birthdays"] == 1
    assert daily(api, dt.date(2027, 2, 28))["birthdays"] == 0
    assert daily(api, dt.date(2027, 3, 1))["birthdays"] == 1
    # 2028 is a leap year: 29 February, not the 28th.
    assert daily(api, dt.date(2028, 2, 28))["birthdays"] == 0
    assert daily(api, dt.date(2028, 2, 29))["birthdays"] == 1
    assert api.get(f"/members/{leap['id']}").json["balance"] == 400
    assert api.get(f"/members/{other['id']}").json["balance"] == 200
    assert history(api, leap)[0]["details"]["rule"] == "birthday"


def test_welcome_referral_winback_and_action_bonuses(api):
    in_utc(api)
    program = api.program(bonuses={"welcome": 10, "referrer": 100, "referred": 50,
                                   "winback": 30, "winback_after_days": 60,
                                   "actions": {"review": 25}})
    anna = api.member(program["id"])
    assert anna["balance"] == 10 and anna["referral_code"]
    bob = api.member(program["id"], phone="+7 912 000-00-05",
                     referral_code=anna["referral_code"])
    assert bob["balance"] == 10
    bad = api.post(f"/programs/{program['id']}/members",
                   {"name": "X", "phone": "+7 912 000-00-06", "referral_code": "NOPE1234"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "referral_code"
    txn(api, bob, type="earn", amount="100")  # first purchase: 10 points + 50 referral
    last_visit = booked_on(txn(api, bob, type="earn", amount="100"))  # not again
    assert api.get(f"/members/{bob['id']}").json["balance"] == 10 + 10 + 50 + 10
    assert api.get(f"/members/{anna['id']}").json["balance"] == 10 + 100

    r = api.post(f"/members/{anna['id']}/actions", {"action": "review", "reference": "r-1"})
    assert r.status_code == 201 and r.json["balance"] == 135
    r = api.post(f"/members/{anna['id']}/actions", {"action": "review", "reference": "r-1"})
    assert r.status_code == 409
    r = api.post(f"/members/{anna['id']}/actions", {"action": "survey"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "action"

    # Bob bought today; 61 days later he gets the win-back bonus, once.
    assert daily(api, last_visit + dt.timedelta(days=30))["winbacks"] == 0
    assert daily(api, last_visit + dt.timedelta(days=61))["winbacks"] == 1
    assert daily(api, last_visit + dt.timedelta(days=62))["winbacks"] == 0
    assert api.get(f"/members/{bob['id']}").json["balance"] == 80 + 30


def test_run_daily_is_one_function_for_the_worker(app, api):
    from wallet_service.services.automations import run_daily

    program = api.program(bonuses={"birthday": 5})
    m = api.member(program["id"], birthday="1999-07-14")
    with app.extensions["wallet"].sessions() as s:
        assert run_daily(s, dt.date(2030, 7, 14))["birthdays"] == 1
        s.commit()
    with app.extensions["wallet"].sessions() as s:
        assert run_daily(s, dt.date(2030, 7, 14))["birthdays"] == 0
    assert api.get(f"/members/{m['id']}").json["balance"] == 5
