"""Outbound webhooks: endpoints through the API, events written with the change they report,
delivered by the worker to a real HTTP receiver on 127.0.0.1, signed per Standard Webhooks
and checked with the ``standardwebhooks`` package's own verifier.

The test app allows private addresses through its configuration
(``WEBHOOKS_ALLOW_PRIVATE``, tests/conftest.py), since the receiver listens on loopback;
the refusal tests turn it off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from apple_device import Device
from push_support import Clock
from push_support import count
from push_support import tokens_of
from sqlalchemy import func
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from wallet_service import create_app
from wallet_service.models import DeliveryJob
from wallet_service.models import WebhookDelivery
from wallet_service.models import WebhookEvent
from wallet_service.push import NullPushClient
from wallet_service.safe_http import is_public
from wallet_service.safe_http import post
from wallet_service.services import members as member_service
from wallet_service.services.webhook_delivery import RETRY
from wallet_service.worker import Worker

ALL_EVENTS = ["member.created", "member.updated", "member.closed", "transaction.created",
              "tier.changed", "reward.redeemed", "coupon.redeemed", "card.installed",
              "card.removed", "campaign.sent"]


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A merchant's HTTP endpoint: answers each request with the next scripted status
    (then 200), and keeps what it got."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(Received(dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/wallet"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.received]


class NoJitter:
    """Back-off jitter that always draws 0: a failed try is due again at once."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def make_worker(app):
    def make(clock: Any = None, **changes: Any) -> Worker:
        state = app.extensions["wallet"]
        settings = dataclasses.replace(state.settings, **changes)
        return Worker(sessions=state.sessions, push=NullPushClient(), settings=settings,
                      clock=clock or Clock(), rng=NoJitter())
    return make


def endpoint(api, url: str, events: list[str] | None = None) -> dict[str, Any]:
    r = api.post("/webhooks", {"url": url, "events": events or ["member.created"]})
    assert r.status_code == 201, r.json
    return r.json  # type: ignore[no-any-return]


def deliveries(api, webhook_id: int) -> list[dict[str, Any]]:
    r = api.get(f"/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.json
    return r.json["items"]  # type: ignore[no-any-return]


def test_a_webhook_is_signed_so_that_the_standard_verifier_accepts_it(api, receiver,
                                                                      make_worker):
    hook = endpoint(api, receiver.url)
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/webhooks/{hook['id']}").json  # shown once
    member = api.member(api.program()["id"], email="anna@example.com")

    assert make_worker(clock=lambda: dt.datetime.now(dt.UTC)).run_once() > 0
    [got] = receiver.received
    assert got.headers["Content-Type"] == "application/json"
    payload = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "member.created"
    data = payload["data"]
    assert (data["id"], data["name"], data["email"]) == (member["id"], "Anna",
                                                         "anna@example.com")
    assert data["card_number"] == member["serial_number"]
    # Another secret, or a changed body, does not verify.
    other = api.post("/webhooks", {"url": receiver.url, "events": ["member.created"]}).json
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(got.body.replace(b"Anna", b"Olga"), got.headers)

    [log] = deliveries(api, hook["id"])
    assert log["status"] == "delivered" and log["attempts"] == 1
    assert log["response_status"] == 200 and log["latency_ms"] >= 0
    assert log["message_id"] == got.headers["webhook-id"] and log["event_type"] == "member.created"


def test_a_rolled_back_change_sends_nothing(app, api, receiver, make_worker, session):
    endpoint(api, receiver.url, ["member.created", "transaction.created"])
    program = api.program(bonuses={"welcome": 50})
    new = member_service.NewMember(name="Boris", phone="+7 912 000-00-01")
    member_service.enroll_member(session, api.merchant_id, program["id"], new,
                                 default_region="RU")
    # Written in the change's transaction: the member and the welcome bonus.
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 2
    session.rollback()
    assert count(app, WebhookEvent) == 0
    # A request that fails half-way (a redeem beyond the balance) records nothing either.
    member = api.member(program["id"])
    refused = api.post(f"/members/{member['id']}/transactions", {"type": "redeem", "points": 999})
    assert refused.status_code == 409

    make_worker().run_once()
    assert [r.payload["data"].get("name") for r in receiver.received
            if r.payload["type"] == "member.created"] == ["Anna"]
    assert [r.payload["data"]["transaction"]["type"] for r in receiver.received
            if r.payload["type"] == "transaction.created"] == ["bonus"]  # Anna's welcome
    assert count(app, WebhookEvent) == 2


def test_a_receiver_that_fails_three_times_then_succeeds_gets_the_event_once(
        app, api, make_worker):
    with Receiver([500, 503, 502]) as receiver:
        hook = endpoint(api, receiver.url)
        worker = make_worker(clock=lambda: dt.datetime.now(dt.UTC), worker_poll_seconds=0.2)
        stop = threading.Event()
        running = threading.Thread(target=worker.run, args=(stop,))
        running.start()
        try:
            api.member(api.program()["id"])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    r.answered == 200 for r in receiver.received):
                time.sleep(0.05)
            passes = worker.passes
            while worker.passes < passes + 3:  # the worker keeps going; nothing more comes
                time.sleep(0.05)
        finally:
            stop.set()
            running.join()
    assert [r.answered for r in receiver.received] == [500, 503, 502, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for got in receiver.received[-1:]:
        # Each try is signed anew, for its own time.
        assert Webhook(hook["secret"]).verify(got.body, got.headers)["type"] == "member.created"
    [log] = deliveries(api, hook["id"])
    assert (log["status"], log["attempts"], log["response_status"]) == ("delivered", 4, 200)
    assert log["last_error"] is None
    assert count(app, DeliveryJob) == 0


def test_retries_last_about_a_day_and_then_the_delivery_fails(app, api, make_worker):
    """With the worst jitter (every delay at its ceiling) the tries span under two days; on
    average (half the ceiling) about a day."""
    ceilings = [min(RETRY.cap, RETRY.base * 2 ** n) for n in range(RETRY.max_attempts - 1)]
    assert 18 * 3600 < sum(ceilings) / 2 < 30 * 3600
    clock = Clock()
    with Receiver([500] * RETRY.max_attempts) as receiver:
        hook = endpoint(api, receiver.url)
        api.member(api.program()["id"])
        worker = make_worker(clock=clock)
        for _ in range(RETRY.max_attempts + 2):
            worker.run_once()
            clock.now += dt.timedelta(seconds=RETRY.cap)
    assert len(receiver.received) == RETRY.max_attempts
    [log] = deliveries(api, hook["id"])
    assert (log["status"], log["attempts"], log["last_error"]) == (
        "failed", RETRY.max_attempts, "HTTP 500")


def test_an_endpoint_failing_for_long_is_disabled_with_a_reason_and_can_be_enabled(
        app, api, make_worker):
    with Receiver([500] * 5) as receiver:
        hook = endpoint(api, receiver.url)
        program = api.program()
        api.member(program["id"])
        clock = Clock()
        worker = make_worker(clock=clock, webhook_disable_after_hours=2.0)
        worker.run_once()
        assert api.get(f"/webhooks/{hook['id']}").json["failing_since"] is not None
        clock.now += dt.timedelta(hours=3)
        worker.run_once()
        shown = api.get(f"/webhooks/{hook['id']}").json
        assert shown["enabled"] is False and shown["disabled_at"] is not None
        assert "failed without a success since" in shown["disabled_reason"]
        assert "HTTP 500" in shown["disabled_reason"]
        # A disabled endpoint gets no new events, and cannot be redelivered to.
        api.member(program["id"], phone="+7 912 000-00-02")
        worker.run_once()
        assert len(receiver.received) == 2
        [log] = deliveries(api, hook["id"])
        r = api.post(f"/webhooks/{hook['id']}/deliveries/{log['id']}/redeliver")
        assert r.status_code == 409 and r.json["errors"][0]["field"] == "webhook_id"
        # Enabled again: the reason goes, and a redelivery reaches it.
        enabled = api.patch(f"/webhooks/{hook['id']}", {"enabled": True}).json
        assert enabled["enabled"] is True
        assert enabled["disabled_reason"] is enabled["failing_since"] is None
        r = api.post(f"/webhooks/{hook['id']}/deliveries/{log['id']}/redeliver")
        assert r.status_code == 202 and r.json["message_id"] == log["message_id"]
        receiver.statuses.clear()
        worker.run_once()
    assert receiver.received[-1].answered == 200
    assert receiver.received[-1].headers["webhook-id"] == log["message_id"]
    statuses = [d["status"] for d in deliveries(api, hook["id"])]
    assert statuses == ["delivered", "failed"]


def test_private_addresses_are_refused_unless_the_operator_allows_them(app, app_config, api,
                                                                       receiver, make_worker):
    port = receiver.server.server_address[1]
    loopback = endpoint(api, receiver.url)
    by_name = endpoint(api, f"http://localhost:{port}/hooks")
    api.member(api.program()["id"])
    make_worker(webhooks_allow_private=False).run_once()
    assert receiver.received == []
    for hook in (loopback, by_name):
        [log] = deliveries(api, hook["id"])
        assert log["status"] == "failed" and log["response_status"] is None
        assert log["last_error"].startswith("refused:")
    assert count(app, DeliveryJob) == 0  # not tried again

    # The API refuses an address it can tell is private at once, naming the field.
    closed = create_app({**app_config, "WEBHOOKS_ALLOW_PRIVATE": "false"})
    closed.config["TESTING"] = True
    headers = {"Authorization": f"Bearer {api.key}"}
    try:
        for url in ("http://127.0.0.1:8080/x", "http://[::1]/x", "http://10.1.2.3/x",
                    "http://169.254.169.254/latest/meta-data", "https://localhost/x",
                    "http://[::ffff:192.168.0.1]/x"):
            r = closed.test_client().post("/api/v1/webhooks", headers=headers,
                                          json={"url": url, "events": ["member.created"]})
            assert r.status_code == 422, url
            assert r.json["errors"][0]["field"] == "url"
        r = closed.test_client().patch(f"/api/v1/webhooks/{loopback['id']}", headers=headers,
                                       json={"url": "http://192.168.1.10/x"})
        assert r.status_code == 422 and r.json["errors"][0]["field"] == "url"
    finally:
        closed.extensions["wallet"].close()


def test_the_address_connected_to_is_checked_not_the_name(receiver):
    """A name that resolves to loopback (DNS rebinding's second answer) is refused; the
    request goes only to the address resolved once."""
    port = receiver.server.server_address[1]

    def rebinding(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    answer = post(f"http://hooks.example.com:{port}/x", b"{}", {}, timeout=2,
                  allow_private=False, resolve=rebinding)
    assert answer.refused and answer.status is None and "127.0.0.1" in (answer.error or "")
    assert receiver.received == []
    allowed = post(f"http://hooks.example.com:{port}/x", b"{}", {}, timeout=2,
                   allow_private=True, resolve=rebinding)
    assert allowed.ok and receiver.received[0].headers["Host"] == f"hooks.example.com:{port}"
    for address in ("10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                    "224.0.0.1"):
        assert not is_public(address), address
    assert is_public("93.184.216.34") and is_public("2606:4700::1111")


def test_one_merchant_cannot_see_or_touch_anothers_endpoints(api, other_api, receiver,
                                                             make_worker):
    hook = endpoint(api, receiver.url, ALL_EVENTS)
    theirs = endpoint(other_api, receiver.url, ALL_EVENTS)
    other_api.member(other_api.program()["id"])
    make_worker().run_once()
    [got] = receiver.received
    assert Webhook(theirs["secret"]).verify(got.body, got.headers)  # the other's event only
    [their_log] = deliveries(other_api, theirs["id"])

    assert [h["id"] for h in other_api.get("/webhooks").json["items"]] == [theirs["id"]]
    base = f"/webhooks/{hook['id']}"
    for r in (other_api.get(base), other_api.patch(base, {"enabled": False}),
              other_api.get(f"{base}/deliveries"), other_api.delete(base),
              other_api.post(f"{base}/deliveries/{their_log['id']}/redeliver"),
              api.post(f"/webhooks/{theirs['id']}/deliveries/{their_log['id']}/redeliver")):
        assert r.status_code == 404, r.json
    assert api.get(base).json["enabled"] is True
    assert deliveries(api, hook["id"]) == []


def test_a_key_without_the_webhooks_permission_is_refused(api):
    till = api.post("/api-keys", {"name": "till", "scope": "till"}).json["api_key"]
    r = api.client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {till}"})
    assert r.status_code == 403 and r.json["permission"] == "webhooks"


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/x", "events": ["member.created"]}, "url"),
    ({"url": "https://user:pw@example.com/x", "events": ["member.created"]}, "url"),
    ({"url": "example.com", "events": ["member.created"]}, "url"),
    ({"url": "https://example.com/" + "x" * 2000, "events": ["member.created"]}, "url"),
    ({"url": "https://example.com/x", "events": []}, "events"),
    ({"url": "https://example.com/x", "events": ["member.born"]}, "events.0"),
    ({"url": "https://example.com/x", "events": "member.created"}, "events"),
    ({"url": "https://example.com/x"}, "events"),
    ({"url": "https://example.com/x", "events": ["member.created"], "enabled": "yes"},
     "enabled"),
    ({"url": "https://example.com/x", "events": ["member.created"], "secret": "mine"},
     "secret"),
])
def test_bad_input_gets_a_problem_naming_the_field(api, body, field):
    r = api.post("/webhooks", body)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json"
    assert r.json["errors"][0]["field"] == field


@pytest.mark.parametrize(("patch", "field"), [
    ({"url": None}, "url"), ({"events": None}, "events"), ({"events": []}, "events"),
    ({"url": "nope"}, "url"), ({"enabled": None}, "enabled"), ({"colour": "red"}, "colour"),
])
def test_bad_changes_get_a_problem_naming_the_field(api, patch, field):
    hook = endpoint(api, "https://crm.example.com/hooks")
    r = api.patch(f"/webhooks/{hook['id']}", patch)
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field
    assert api.get(f"/webhooks/{hook['id']}").json["url"] == "https://crm.example.com/hooks"


def test_endpoints_are_changed_listed_and_deleted(app, api):
    hook = endpoint(api, "https://crm.example.com/hooks", ["tier.changed", "member.created",
                                                           "member.created"])
    assert hook["events"] == ["member.created", "tier.changed"]  # once, in catalogue order
    changed = api.patch(f"/webhooks/{hook['id']}", {"description": "CRM",
                                                    "events": ["card.installed"]}).json
    assert (changed["description"], changed["events"]) == ("CRM", ["card.installed"])
    assert api.patch(f"/webhooks/{hook['id']}", {"description": None}).json["description"] is None
    api.member(api.program()["id"])  # not subscribed: nothing queued
    assert count(app, WebhookDelivery) == 0
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/webhooks/{hook['id']}").status_code == 404
    assert api.get("/webhooks").json["items"] == []
    assert api.get("/webhooks/999/deliveries").status_code == 404


def test_every_event_of_the_catalogue_reaches_the_endpoint(app, api, client, receiver,
                                                          make_worker):
    hook = endpoint(api, receiver.url, ALL_EVENTS)
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0},
                                 {"name": "Silver", "threshold": 100}])
    member = api.member(program["id"], marketing_consent=True)
    mid = member["id"]
    assert api.patch(f"/members/{mid}", {"name": "Anna K."}).status_code == 200
    assert api.post(f"/members/{mid}/transactions",
                    {"type": "earn", "points": 150}).status_code == 201
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Coffee", "cost_points": 10}).json
    assert api.post(f"/members/{mid}/rewards/{reward['id']}/redeem").status_code == 201
    coupon = api.post(f"/programs/{program['id']}/coupons", {"title": "Croissant"}).json
    assert api.post(f"/members/{mid}/coupons/{coupon['id']}/redeem").status_code == 201
    assert api.post(f"/programs/{program['id']}/campaigns", {"text": "Sale!"}).status_code == 201
    phone = Device(client, "lib-1", "ab" * 32)
    token = tokens_of(app)[member["serial_number"]]
    assert phone.register(member["serial_number"], token).status_code == 201
    assert phone.unregister(member["serial_number"], token).status_code == 200
    assert api.post(f"/members/{mid}/close").status_code == 200

    make_worker().run_once()
    assert set(receiver.types()) == set(ALL_EVENTS)
    for got in receiver.received:
        Webhook(hook["secret"]).verify(got.body, got.headers)
    by_type: dict[str, list[Any]] = {}
    for got in receiver.received:
        by_type.setdefault(got.payload["type"], []).append(got.payload["data"])
    assert by_type["member.updated"][0]["changed"] == ["name"]
    assert by_type["tier.changed"] == [{"member_id": mid, "from": "Bronze", "to": "Silver",
                                        "cause": "upgrade",
                                        "transaction_id": by_type["tier.changed"][0][
                                            "transaction_id"]}]
    assert by_type["reward.redeemed"][0]["reward"]["name"] == "Coffee"
    assert by_type["coupon.redeemed"][0]["coupon"]["title"] == "Croissant"
    assert by_type["card.installed"][0]["wallet"] == "apple"
    assert by_type["card.removed"][0]["cause"] == "unregistered"
    assert by_type["campaign.sent"][0]["campaign"]["reached"] == 1
    assert by_type["member.closed"][0]["status"] == "closed"
    earn = [t["transaction"] for t in by_type["transaction.created"]
            if t["transaction"]["type"] == "earn"]
    assert earn[0]["points"] == 150 and earn[0]["balance_after"] == 150


def test_erasure_removes_the_members_data_from_waiting_events(app, api, receiver,
                                                              make_worker):
    hook = endpoint(api, receiver.url, ["member.created"])
    member = api.member(api.program()["id"], email="anna@example.com")
    assert api.post(f"/members/{member['id']}/erase").status_code == 200
    make_worker().run_once()
    [got] = receiver.received
    assert Webhook(hook["secret"]).verify(got.body, got.headers)["data"] == {
        "member_id": member["id"], "erased": True}
    assert b"Anna" not in got.body and b"anna@example.com" not in got.body
