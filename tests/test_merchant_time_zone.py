"""The merchant's time zone: its days (birthdays, expiry dates, win-back windows, the daily
job) begin at midnight where the merchant is, not in UTC.

The two merchants of most tests are eleven zones apart at the same instant: at
2026-03-09T15:30Z it is already 10 March, 01:30 in Vladivostok (UTC+10) and still 9 March,
12:30 in São Paulo (UTC−3).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from api_support import Api
from api_support import make_merchant
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.cli import main
from wallet_service.local_time import local_date
from wallet_service.local_time import start_of_day
from wallet_service.models import LoyaltyCard
from wallet_service.models import Merchant
from wallet_service.models import PointLot
from wallet_service.push import NullPushClient
from wallet_service.services.bonuses import grant_bonus
from wallet_service.worker import Worker

VLADIVOSTOK = "Asia/Vladivostok"
SAO_PAULO = "America/Sao_Paulo"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(at("2026-03-09T15:30"))


@pytest.fixture
def worker(app, clock):
    state = app.extensions["wallet"]
    return Worker(sessions=state.sessions, push=NullPushClient(), settings=state.settings,
                  clock=clock)


@pytest.fixture
def east(app, client):
    merchant_id, key = make_merchant(app, "Vladivostok coffee", time_zone=VLADIVOSTOK)
    return Api(client, key, merchant_id)


@pytest.fixture
def west(app, client):
    merchant_id, key = make_merchant(app, "São Paulo café", time_zone=SAO_PAULO)
    return Api(client, key, merchant_id)


def balance(api, member):
    return api.get(f"/members/{member['id']}").json["balance"]


def card_id(app, member):
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == member["id"]))


# --- the merchant's setting ---------------------------------------------------------------


def test_merchant_reads_and_changes_its_time_zone(api, app):
    r = api.get("/merchant")
    assert r.status_code == 200
    assert r.json == {"id": api.merchant_id, "name": "Coffee Shop", "time_zone": "Europe/Moscow"}
    r = api.patch("/merchant", {"time_zone": VLADIVOSTOK})
    assert r.status_code == 200 and r.json["time_zone"] == VLADIVOSTOK
    assert api.get("/merchant").json["time_zone"] == VLADIVOSTOK
    # null is the service's default again.
    r = api.patch("/merchant", {"time_zone": None},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert r.json["time_zone"] == app.extensions["wallet"].settings.default_time_zone


@pytest.mark.parametrize(("body", "field"), [
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"time_zone": "europe/moscow"}, "time_zone"),  # the database's spelling only
    ({"time_zone": "../../etc/passwd"}, "time_zone"),
    ({"time_zone": 3}, "time_zone"),
    ({"name": "Renamed"}, "name"),
])
def test_bad_merchant_patch_names_the_field_and_changes_nothing(api, body, field):
    api.patch("/merchant", {"time_zone": SAO_PAULO})
    r = api.patch("/merchant", body)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get("/merchant").json == {"id": api.merchant_id, "name": "Coffee Shop",
                                         "time_zone": SAO_PAULO}


def test_each_merchant_sees_and_changes_only_its_own_zone(api, other_api):
    api.patch("/merchant", {"time_zone": VLADIVOSTOK})
    assert other_api.get("/merchant").json["time_zone"] == "Europe/Moscow"
    assert other_api.get("/merchant").json["id"] == other_api.merchant_id


def test_default_time_zone_setting_is_validated(app_config):
    from wallet_service.config import load_settings
    from wallet_service.errors import ConfigurationError

    assert load_settings({**app_config, "DEFAULT_TIME_ZONE": SAO_PAULO},
                         environ={}).default_time_zone == SAO_PAULO
    with pytest.raises(ConfigurationError) as e:
        load_settings({**app_config, "DEFAULT_TIME_ZONE": "Moscow"}, environ={})
    assert e.value.field == "WALLET_DEFAULT_TIME_ZONE"


def test_create_merchant_command_takes_a_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    monkeypatch.setenv("WALLET_DEFAULT_TIME_ZONE", "Asia/Yekaterinburg")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(main, ["create-merchant", "Far east", "--time-zone", VLADIVOSTOK, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["time_zone"] == VLADIVOSTOK
    r = runner.invoke(main, ["create-merchant", "Urals", "--json"])
    assert json.loads(r.output)["time_zone"] == "Asia/Yekaterinburg"
    r = runner.invoke(main, ["create-merchant", "Nowhere", "--time-zone", "Nowhere/City"])
    assert r.exit_code != 0 and "time_zone" in r.output


# --- the merchant's days ---------------------------------------------------------------


def test_birthday_bonus_comes_at_local_midnight(east, west, worker, clock):
    """At 15:30 UTC on 9 March, 10 March has begun in Vladivostok but not in São Paulo."""
    members = {}
    for api in (east, west):
        program = api.program(bonuses={"birthday": 100})
        members[api] = api.member(program["id"], birthday="1990-03-10")
    assert worker.daily() == 2
    assert balance(east, members[east]) == 100
    assert balance(west, members[west]) == 0
    clock.now = at("2026-03-10T02:59")  # 23:59 on 9 March in São Paulo
    assert worker.daily() == 0
    assert balance(west, members[west]) == 0
    clock.now = at("2026-03-10T03:00")  # midnight in São Paulo
    assert worker.daily() == 1
    assert balance(west, members[west]) == 100
    assert balance(east, members[east]) == 100
    entry = west.get(f"/members/{members[west]['id']}/transactions").json["items"][0]
    assert entry["details"]["rule"] == "birthday" and entry["created_at"].startswith(
        "2026-03-10T03:00")


def test_each_merchant_day_runs_once_across_workers_and_restarts(app, east, west, worker, clock):
    program = east.program(bonuses={"birthday": 100})
    member = east.member(program["id"], birthday="1990-03-10")
    assert worker.daily() == 2
    state = app.extensions["wallet"]
    restarted = Worker(sessions=state.sessions, push=NullPushClient(), settings=state.settings,
                       clock=clock)
    assert restarted.daily() == 0
    assert worker.daily() == 0
    assert balance(east, member) == 100
    with state.sessions() as s:
        days = dict(s.execute(select(Merchant.id, Merchant.daily_done_on)).all())
    assert days == {east.merchant_id: dt.date(2026, 3, 10),
                    west.merchant_id: dt.date(2026, 3, 9)}


def test_a_new_time_zone_neither_repeats_nor_skips_a_day(east, west, worker, clock):
    assert worker.daily() == 2  # Vladivostok: 10 March, São Paulo: 9 March
    # Moving west (back to 9 March) runs nothing until 10 March comes there...
    east.patch("/merchant", {"time_zone": SAO_PAULO})
    assert worker.daily() == 0
    clock.now = at("2026-03-10T03:00")
    assert worker.daily() == 1  # ...where only the merchant that was there all along runs.
    # Moving east to where 11 March has begun runs that day at once.
    clock.now = at("2026-03-10T15:00")
    west.patch("/merchant", {"time_zone": VLADIVOSTOK})
    assert worker.daily() == 1


def test_a_failing_merchant_does_not_hold_up_the_others(app, east, west, worker, monkeypatch):
    from wallet_service.services import automations

    program = east.program(bonuses={"birthday": 100})
    member = east.member(program["id"], birthday="1990-03-10")
    real = automations.run_daily

    def broken_for_west(session, day, **kw):
        if kw.get("merchant_id") == west.merchant_id:
            raise RuntimeError("broken")
        return real(session, day, **kw)

    monkeypatch.setattr(automations, "run_daily", broken_for_west)
    assert worker.daily() == 1
    assert balance(east, member) == 100
    monkeypatch.setattr(automations, "run_daily", real)
    assert worker.daily() == 1  # the failed day was not claimed: it runs now


def test_points_expire_at_local_midnight(app, east, west, worker, clock):
    """Points earned at the same instant expire when the 30th day after the local day they
    were earned on begins, at midnight where each merchant is."""
    earned = at("2026-03-09T15:30")
    members = {}
    for api in (east, west):
        program = api.program(points_validity_days=30)
        members[api] = api.member(program["id"])
        with app.extensions["wallet"].sessions() as s:
            grant_bonus(s, api.merchant_id, card_id(app, members[api]), 50, "action",
                        key=None, now=earned)
            s.commit()
    with app.extensions["wallet"].sessions() as s:
        expiry = dict(s.execute(select(LoyaltyCard.member_id, PointLot.expires_on)
                                .join(LoyaltyCard, LoyaltyCard.id == PointLot.card_id)).all())
    assert expiry == {members[east]["id"]: dt.date(2026, 4, 9),
                      members[west]["id"]: dt.date(2026, 4, 8)}
    clock.now = at("2026-04-08T02:59")
    worker.daily()
    assert (balance(east, members[east]), balance(west, members[west])) == (50, 50)
    clock.now = at("2026-04-08T03:00")  # 8 April begins in São Paulo: 23:00 in Vladivostok
    worker.daily()
    assert (balance(east, members[east]), balance(west, members[west])) == (50, 0)
    clock.now = at("2026-04-08T14:00")  # 9 April begins in Vladivostok
    worker.daily()
    assert balance(east, members[east]) == 0


def test_winback_counts_days_from_local_midnight(app, east, west, worker, clock):
    """A visit at 15:30 UTC on 8 January was on 9 January in Vladivostok and on 8 January in
    São Paulo; 60 days without a visit are over when the 61st local day after it begins."""
    members = {}
    for api in (east, west):
        program = api.program(bonuses={"winback": 30, "winback_after_days": 60})
        members[api] = api.member(program["id"])
        with app.extensions["wallet"].sessions() as s:
            s.execute(update(LoyaltyCard).where(LoyaltyCard.member_id == members[api]["id"])
                      .values(last_visit_at=at("2026-01-08T15:30")))
            s.commit()
    clock.now = at("2026-03-10T02:59")  # São Paulo: 9 March; Vladivostok: 10 March
    worker.daily()
    assert (balance(east, members[east]), balance(west, members[west])) == (0, 0)
    clock.now = at("2026-03-10T03:00")  # São Paulo: 10 March, the 61st day
    worker.daily()
    assert (balance(east, members[east]), balance(west, members[west])) == (0, 30)
    clock.now = at("2026-03-10T14:00")  # Vladivostok: 11 March, its 61st day
    worker.daily()
    assert balance(east, members[east]) == 30
    entry = east.get(f"/members/{members[east]['id']}/transactions").json["items"][0]
    assert entry["reason"] == "we miss you: no visit since 2026-01-09"


def test_daily_run_through_the_api_defaults_to_the_merchants_local_today(app, client):
    """UTC+14 and UTC−11 are never on the same date, so at most one of them can be UTC's."""
    reports = {}
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        merchant_id, key = make_merchant(app, zone, time_zone=zone)
        api = Api(client, key, merchant_id)
        before = dt.datetime.now(dt.UTC)
        r = api.post("/automations/daily", {})
        after = dt.datetime.now(dt.UTC)
        assert r.status_code == 200, r.json
        reports[zone] = dt.date.fromisoformat(r.json["day"])
        assert reports[zone] in {local_date(before, zone), local_date(after, zone)}
    assert reports["Pacific/Kiritimati"] > reports["Pacific/Pago_Pago"]


def test_local_midnight_in_utc():
    assert start_of_day(dt.date(2026, 3, 10), VLADIVOSTOK) == at("2026-03-09T14:00")
    assert start_of_day(dt.date(2026, 3, 10), SAO_PAULO) == at("2026-03-10T03:00")
    assert local_date(at("2026-03-09T15:30"), VLADIVOSTOK) == dt.date(2026, 3, 10)
    assert local_date(at("2026-03-09T15:30"), SAO_PAULO) == dt.date(2026, 3, 9)



def test_a_day_another_worker_is_running_is_passed_over(app, engine, east):
    """Two workers on PostgreSQL: the second does not wait for the first's run of a merchant's
    day, and the merchant's requests do not wait for it either."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    from sqlalchemy import text

    from wallet_service.services.automations import claim_day
    from wallet_service.services.locations import NewLocation
    from wallet_service.services.locations import create_location

    sessions = app.extensions["wallet"].sessions
    day = dt.date(2026, 3, 10)
    with sessions() as first, sessions() as second:
        assert claim_day(first, east.merchant_id, day)
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        assert not claim_day(second, east.merchant_id, day)  # passed over, not waited for
        create_location(second, east.merchant_id, NewLocation("Store", "Street 1", 43.1, 131.9))
        second.commit()
        first.rollback()  # the run failed: the day is free again
    with sessions() as third:
        assert claim_day(third, east.merchant_id, day)
        third.commit()
    with sessions() as fourth:
        assert not claim_day(fourth, east.merchant_id, day)
        assert not claim_day(fourth, east.merchant_id, day - dt.timedelta(days=1))
