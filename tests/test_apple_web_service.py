"""Apple's pass web service, driven the way Wallet on an iPhone drives it (spec §3)."""

from __future__ import annotations

import datetime as dt
import time
from email.utils import parsedate_to_datetime

import pytest
from apple_device import Device
from apple_device import balance_of
from sqlalchemy import select

from wallet_service.models import DeviceLog
from wallet_service.models import LoyaltyCard
from wallet_service.services import outbox


def card_token(session, serial):
    token = session.scalar(select(LoyaltyCard.authentication_token)
                           .where(LoyaltyCard.serial_number == serial))
    session.commit()  # end the read: on SQLite an open transaction holds the write lock
    return token


def sequence(app):
    with app.extensions["wallet"].sessions() as s:
        n = outbox.sequence_changes(s, now=dt.datetime.now(dt.UTC), debounce=dt.timedelta(0))
        s.commit()
    return n


@pytest.fixture
def card(api, session):
    member = api.member(api.program()["id"])
    return member, card_token(session, member["serial_number"])


def test_register_201_then_200_and_token_is_always_updated(client, card, session):
    member, token = card
    phone = Device(client, "lib-1", "aa" * 32)
    assert phone.register(member["serial_number"], token).status_code == 201
    assert phone.register(member["serial_number"], token).status_code == 200
    assert phone.register(member["serial_number"], token, push_token="bb" * 32).status_code == 200
    from wallet_service.models import Device as DeviceRow

    assert session.scalar(select(DeviceRow.push_token)) == "bb" * 32
    session.commit()


@pytest.mark.parametrize("header", [None, "ApplePass wrong-token-123456789", "Bearer x", "ApplePass"])
def test_wrong_or_missing_token_is_401_everywhere(client, card, header):
    member, _ = card
    serial = member["serial_number"]
    headers = {} if header is None else {"Authorization": header}
    base = "/apple/v1/devices/lib-1/registrations/pass.dev.wallet-service.loyalty/" + serial
    assert client.post(base, json={"pushToken": "aa"}, headers=headers).status_code == 401
    assert client.delete(base, headers=headers).status_code == 401
    assert client.get(f"/apple/v1/passes/pass.dev.wallet-service.loyalty/{serial}",
                      headers=headers).status_code == 401


def test_another_cards_token_does_not_open_this_card(api, client, session):
    program = api.program()
    a = api.member(program["id"], phone="+79120000001")
    b = api.member(program["id"], phone="+79120000002")
    r = Device(client, "lib-1", "aa" * 32).register(a["serial_number"],
                                                    card_token(session, b["serial_number"]))
    assert r.status_code == 401


def test_unknown_serial_or_pass_type(client, card):
    member, token = card
    phone = Device(client, "lib-1", "aa" * 32)
    assert phone.register("0000000000000", token).status_code == 404
    other = Device(client, "lib-1", "aa" * 32, pass_type="pass.com.other")
    assert other.register(member["serial_number"], token).status_code == 404


def test_bad_registration_body_is_400(client, card):
    member, token = card
    url = f"/apple/v1/devices/lib-1/registrations/pass.dev.wallet-service.loyalty/{member['serial_number']}"
    for body in (None, {}, {"pushToken": 5}, {"pushToken": ""}):
        r = client.post(url, json=body, headers={"Authorization": f"ApplePass {token}"})
        assert r.status_code == 400


def test_serials_list_without_tag_with_tag_and_after_changes(app, api, client, session):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7912000000{i}") for i in range(3)]
    tokens = {m["serial_number"]: card_token(session, m["serial_number"]) for m in members}
    phone = Device(client, "lib-1", "aa" * 32)
    for m in members[:2]:
        phone.register(m["serial_number"], tokens[m["serial_number"]])

    assert phone.changed().status_code == 200
    first = phone.changed().json
    assert sorted(first["serialNumbers"]) == sorted(m["serial_number"] for m in members[:2])
    assert phone.changed(first["lastUpdated"]).status_code == 204
    assert phone.sync(tokens)  # initial download
    assert phone.sync(tokens) == []

    api.post(f"/members/{members[0]['id']}/transactions", {"type": "earn", "points": 10})
    api.post(f"/members/{members[2]['id']}/transactions", {"type": "earn", "points": 10})  # not on this phone
    assert phone.changed(phone.tag).status_code == 204  # not published until sequenced
    sequence(app)
    assert phone.sync(tokens) == [members[0]["serial_number"]]
    assert balance_of(phone.passes[members[0]["serial_number"]]) == 10
    assert phone.sync(tokens) == []


@pytest.mark.parametrize("tag", ["", "2024-03-26 02:30:00", "-5", "abc", "9" * 30])
def test_unparseable_tag_means_all_passes(client, card, tag):
    member, token = card
    phone = Device(client, "lib-1", "aa" * 32)
    phone.register(member["serial_number"], token)
    r = phone.changed(tag)
    assert r.status_code == 200 and r.json["serialNumbers"] == [member["serial_number"]]


def test_unknown_device_is_404(client):
    assert Device(client, "nobody", "aa").changed().status_code == 404


def test_latest_pass_304_head_and_last_modified(api, app, client, card):
    member, token = card
    phone = Device(client, "lib-1", "aa" * 32)
    r = phone.fetch(member["serial_number"], token)
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    assert r.headers["Cache-Control"] == "no-store"
    first_lm = parsedate_to_datetime(r.headers["Last-Modified"])
    again = phone.fetch(member["serial_number"], token)
    assert again.status_code == 304 and not again.data
    head = client.head(f"/apple/v1/passes/pass.dev.wallet-service.loyalty/{member['serial_number']}",
                       headers={"Authorization": f"ApplePass {token}"})
    assert head.status_code == 200 and head.headers["Last-Modified"] == r.headers["Last-Modified"]
    # Two changes in the same second still get distinct, increasing Last-Modified dates.
    stamps = []
    for _ in range(2):
        api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
        got = phone.fetch(member["serial_number"], token)
        assert got.status_code == 200
        stamps.append(parsedate_to_datetime(got.headers["Last-Modified"]))
    assert first_lm < stamps[0] < stamps[1]
    # A malformed If-Modified-Since is ignored, not an error.
    bad = client.get(f"/apple/v1/passes/pass.dev.wallet-service.loyalty/{member['serial_number']}",
                     headers={"Authorization": f"ApplePass {token}", "If-Modified-Since": "yesterday"})
    assert bad.status_code == 200


def test_invisible_change_bumps_nothing(api, app, client, card):
    member, token = card
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": "5.00"})  # 0 points
    assert api.get(f"/members/{member['id']}").json["version"] == member["version"]
    assert sequence(app) == 0


def test_unregister_is_idempotent_and_forgets_the_device(client, card, session):
    member, token = card
    phone = Device(client, "lib-1", "aa" * 32)
    phone.register(member["serial_number"], token)
    assert phone.unregister(member["serial_number"], token).status_code == 200
    assert phone.unregister(member["serial_number"], token).status_code == 200
    assert phone.changed().status_code == 404
    assert Device(client, "never-seen", "cc").unregister(member["serial_number"], token).status_code == 200


def test_log_messages_are_stored(client, session):
    r = client.post("/apple/v1/log", json={"logs": ["Web service error for pass.x (https://…): "
                                                    "Register task encountered error", "second"]})
    assert r.status_code == 200
    assert [m.message for m in session.scalars(select(DeviceLog).order_by(DeviceLog.id))][1] == "second"
    assert client.post("/apple/v1/log", data="garbage").status_code == 200


def test_unauthenticated_endpoints_are_rate_limited(app, client):
    from wallet_service.ratelimit import RateLimiter

    state = app.extensions["wallet"]
    saved = state.limiters.apple
    state.limiters.apple = RateLimiter(5)
    try:
        codes = [client.post("/apple/v1/log", json={"logs": ["x"]}).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        r = client.post("/apple/v1/log", json={"logs": ["x"]})
        assert int(r.headers["Retry-After"]) >= 1
        assert Device(client, "unknown-device", "y").changed().status_code == 429
    finally:
        state.limiters.apple = saved


def test_rate_limiter_window_moves(monkeypatch):
    """At most ``per_minute`` in any 60 s: a request frees its place 60 s after it was let in."""
    from wallet_service.ratelimit import RateLimiter

    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    limiter = RateLimiter(60)
    assert all(limiter.allow("a") == 0 for _ in range(30))
    now[0] += 30.0
    assert all(limiter.allow("a") == 0 for _ in range(30))
    assert limiter.allow("a") == pytest.approx(30.0)  # the first 30 leave the window at 60 s
    assert limiter.allow("b") == 0
    now[0] += 29.0
    assert limiter.allow("a") == pytest.approx(1.0)  # refused requests do not count
    now[0] += 1.001
    assert all(limiter.allow("a") == 0 for _ in range(30))
    assert limiter.allow("a") > 0
