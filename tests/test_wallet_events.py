"""The wallet event log: cards installed in and removed from Apple Wallet (the pass web
service as a phone drives it, and a dead token reported by APNs to the worker) and Google
Wallet (signed save and delete callbacks), listed per merchant in order."""

# Fixtures of the APNs stand-in and of the Google-enabled app come from the modules that
# define them; pytest hands them to the tests by name, which ruff takes for unused imports
# and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from api_support import Api
from api_support import make_merchant
from apns_standin import Reply
from apple_device import Device
from google_standin import callback_message
from sqlalchemy import select
from test_google_cards import account
from test_google_cards import gapi
from test_google_cards import gapp
from test_google_cards import google
from test_google_cards import keys
from test_google_cards import saved
from test_push_delivery import apns
from test_push_delivery import make_worker

from wallet_service.google import object_id
from wallet_service.models import LoyaltyCard
from wallet_service.models import WalletEvent

ISSUER = "3388000000022345678"  # test_google_cards' issuer


def token_of(app: Any, serial: str) -> str:
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(LoyaltyCard.authentication_token)
                        .where(LoyaltyCard.serial_number == serial))


def events(api: Any, **query: Any) -> list[tuple[int, str, str, str]]:
    r = api.get("/wallet-events", query_string=query)
    assert r.status_code == 200, r.json
    return [(e["member_id"], e["wallet"], e["event"], e["cause"]) for e in r.json["items"]]


def callback(client: Any, keys: Any, serial: str, event_type: str) -> None:
    oid = object_id(ISSUER, serial)
    message = callback_message(ISSUER, object_suffix=oid.split(".", 1)[1], event_type=event_type)
    r = client.post("/google/callbacks", data=json.dumps(keys.sign(message, recipient=ISSUER)),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200


def test_installs_and_removals_in_both_wallets_are_listed_in_order(gapi, gapp, keys, apns,
                                                                   make_worker):
    program = gapi.program()
    anna = gapi.member(program["id"])
    boris = gapi.member(program["id"], phone="+7 916 000-00-21")
    client = gapi.client
    a_serial, b_serial = anna["serial_number"], boris["serial_number"]
    a_token, b_token = token_of(gapp, a_serial), token_of(gapp, b_serial)

    # Apple: the first device installs the card; a second one and the first leaving change
    # nothing; the last one leaving removes it.
    iphone, ipad = Device(client, "lib-phone", "11" * 32), Device(client, "lib-pad", "22" * 32)
    assert iphone.register(a_serial, a_token).status_code == 201
    assert iphone.register(a_serial, a_token).status_code == 200  # a repeat: no new event
    assert ipad.register(a_serial, a_token).status_code == 201
    assert iphone.unregister(a_serial, a_token).status_code == 200
    assert iphone.unregister(a_serial, a_token).status_code == 200  # already gone
    assert ipad.unregister(a_serial, a_token).status_code == 200
    # Google: the customer saves and deletes Boris's card.
    saved(gapi, boris)
    callback(client, keys, b_serial, "save")
    callback(client, keys, b_serial, "del")
    # Apple again: a phone whose token APNs declares dead loses the card's last device.
    old_phone = Device(client, "lib-old", "33" * 32)
    assert old_phone.register(b_serial, b_token).status_code == 201
    apns.script(old_phone.push_token, Reply(410, "Unregistered"))
    gapi.post(f"/members/{boris['id']}/transactions", {"type": "earn", "points": 5})
    make_worker().run_once()
    assert [r.token for r in apns.requests] == [old_phone.push_token]

    a, b = anna["id"], boris["id"]
    assert events(gapi) == [
        (a, "apple", "installed", "registered"),
        (a, "apple", "removed", "unregistered"),
        (b, "google", "installed", "saved"),
        (b, "google", "removed", "deleted"),
        (b, "apple", "installed", "registered"),
        (b, "apple", "removed", "token_invalid"),
    ]
    assert events(gapi, member_id=b) == events(gapi)[2:]
    first_page = gapi.get("/wallet-events", query_string={"limit": 4}).json
    assert len(first_page["items"]) == 4 and first_page["next_cursor"]
    rest = gapi.get("/wallet-events", query_string={"cursor": first_page["next_cursor"]}).json
    assert [e["id"] for e in first_page["items"] + rest["items"]] == [
        e["id"] for e in gapi.get("/wallet-events").json["items"]]
    assert rest["next_cursor"] is None
    # Another merchant sees none of it, and not even that the member exists.
    merchant_id, key = make_merchant(gapp, "Bakery")
    other = Api(gapp.test_client(), key, merchant_id)
    assert events(other) == []
    r = other.get("/wallet-events", query_string={"member_id": a})
    assert r.status_code == 404 and r.json["errors"][0]["field"] == "member_id"


def test_events_by_time(api, app, client):
    member = api.member(api.program()["id"])
    serial = member["serial_number"]
    token = token_of(app, serial)
    phone = Device(client, "lib-time", "44" * 32)
    phone.register(serial, token)
    phone.unregister(serial, token)
    with app.extensions["wallet"].sessions() as s:
        installed, removed = s.scalars(select(WalletEvent).order_by(WalletEvent.id)).all()
        # Spread the two events an hour apart, as a day of use would.
        installed.occurred_at = removed.occurred_at - dt.timedelta(hours=1)
        s.commit()
        at_install, at_removal = installed.occurred_at, removed.occurred_at

    def iso(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).isoformat()

    assert [e[2] for e in events(api, since=iso(at_removal))] == ["removed"]
    assert [e[2] for e in events(api, until=iso(at_removal))] == ["installed"]
    assert [e[2] for e in events(api, since=iso(at_install),
                                 until=iso(at_removal + dt.timedelta(seconds=1)))] == [
        "installed", "removed"]
    got = api.get("/wallet-events").json["items"][0]
    assert dt.datetime.fromisoformat(got["occurred_at"]) == at_install


def test_bad_queries_name_the_field(api):
    for query, field in (({"since": "2026-11-30T10:00:00"}, "since"),
                         ({"until": "yesterday"}, "until"),
                         ({"since": "2026-11-30T10:00:00Z", "until": "2026-11-30T09:00:00Z"},
                          "until"),
                         ({"limit": "0"}, "limit"), ({"cursor": "abc"}, "cursor"),
                         ({"member_id": "x"}, "member_id"), ({"colour": "red"}, "colour")):
        r = api.get("/wallet-events", query_string=query)
        assert r.status_code == 422, (query, r.status_code)
        assert r.json["errors"][0]["field"] == field, (query, r.json)
    assert api.get("/wallet-events", query_string={"member_id": 999999}).status_code == 404
