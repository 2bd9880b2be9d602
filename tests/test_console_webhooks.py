"""The console's Webhooks page (owners): endpoints listed with their state, created with the
secret shown once, enabled, disabled and deleted; the delivery log and redelivery; every
change audited, in the console and through the API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from console_support import Console
from push_support import Clock
from push_support import count
from sqlalchemy import select

from wallet_service import create_app
from wallet_service.models import AuditEntry
from wallet_service.models import WebhookDelivery
from wallet_service.models import WebhookEndpoint
from wallet_service.push import NullPushClient
from wallet_service.worker import Worker

PAGE = "/console/settings/webhooks"
URL = "https://crm.example.com/hooks"


class NoJitter:
    def random(self) -> float:
        return 0.0


def create(console: Any, url: str = URL, events: tuple[str, ...] = ("member.created",)
           ) -> Any:
    return console.post(PAGE, {"url": url, "events": list(events), "description": "CRM"})


def endpoint_ids(app: Any, merchant_id: int) -> list[int]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(WebhookEndpoint.id).where(
            WebhookEndpoint.merchant_id == merchant_id).order_by(WebhookEndpoint.id)))


def audit_of(app: Any, merchant_id: int) -> list[tuple[str, str, str | None, Any]]:
    with app.extensions["wallet"].sessions() as s:
        return [(e.action, e.actor_kind, e.target, e.changes) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.merchant_id == merchant_id,
                                     AuditEntry.action.like("webhook.%"))
            .order_by(AuditEntry.id))]


def test_the_owner_creates_an_endpoint_and_sees_its_secret_once(app, console, api):
    settings = console.get("/console/settings").get_data(as_text=True)
    assert f'href="{PAGE}"' in settings
    r = create(console, events=("tier.changed", "member.created"))
    assert r.status_code == 201
    html = r.get_data(as_text=True)
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', html)
    assert secret, html
    assert "member.created, tier.changed" in html  # in the catalogue's order
    listed = console.get(PAGE).get_data(as_text=True)
    assert URL in listed and secret.group(1) not in listed
    # The API sees the same endpoint, and never its secret.
    [hook] = api.get("/webhooks").json["items"]
    assert hook["url"] == URL and hook["events"] == ["member.created", "tier.changed"]
    assert secret.group(1) not in str(api.get("/webhooks").json)


def test_bad_input_is_shown_next_to_the_field_it_concerns(app, console, api):
    r = create(console, url="ftp://crm.example.com/")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'id="url-error"' in html and 'aria-invalid="true"' in html
    assert 'value="ftp://crm.example.com/"' in html  # what was typed stays
    r = create(console, events=())
    assert r.status_code == 422 and 'id="events-error"' in r.get_data(as_text=True)
    r = create(console, events=("member.created", "no.such"))
    assert r.status_code == 422 and 'id="events-error"' in r.get_data(as_text=True)
    r = console.post(PAGE, {"url": URL, "events": ["member.created"],
                            "description": "x" * 201})
    assert r.status_code == 422 and 'id="description-error"' in r.get_data(as_text=True)
    assert endpoint_ids(app, api.merchant_id) == []
    assert audit_of(app, api.merchant_id) == []


def test_a_private_address_is_refused_naming_the_url(app, app_config, api):
    strict = create_app({**app_config, "WEBHOOKS_ALLOW_PRIVATE": "false"})
    strict.config["TESTING"] = True
    console = Console(strict.test_client(), api.merchant_id).sign_in_as(strict, "owner")
    r = create(console, url="http://127.0.0.1:8080/hooks")
    assert r.status_code == 422 and 'id="url-error"' in r.get_data(as_text=True)
    assert "private" in r.get_data(as_text=True)
    strict.extensions["wallet"].engine.dispose()


def test_managers_and_staff_are_refused(app, console, console_as, api):
    create(console)
    [hook] = endpoint_ids(app, api.merchant_id)
    for role in ("manager", "staff"):
        other = console_as(role)
        assert other.get(PAGE).status_code == 403
        assert other.get(f"{PAGE}/{hook}").status_code == 403
        assert create(other).status_code == 403
        assert other.post(f"{PAGE}/{hook}/disable").status_code == 403
        assert other.post(f"{PAGE}/{hook}/delete").status_code == 403
        assert f'href="{PAGE}"' not in other.get("/console/settings").get_data(as_text=True)
    assert endpoint_ids(app, api.merchant_id) == [hook]
    assert api.get(f"/webhooks/{hook}").json["enabled"] is True


def test_another_merchants_endpoint_is_not_found(app, console, console_as, api, other_api):
    theirs = other_api.post("/webhooks", {"url": URL, "events": ["member.created"]}).json
    program = other_api.program()
    other_api.member(program["id"])
    [delivery] = other_api.get(f"/webhooks/{theirs['id']}/deliveries").json["items"]
    hook = theirs["id"]
    assert console.get(f"{PAGE}/{hook}").status_code == 404
    for action in ("enable", "disable", "delete"):
        assert console.post(f"{PAGE}/{hook}/{action}").status_code == 404
    r = console.post(f"{PAGE}/{hook}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 404
    assert URL not in console.get(PAGE).get_data(as_text=True)
    assert other_api.get(f"/webhooks/{hook}").json["enabled"] is True
    assert count(app, WebhookDelivery) == 1
    # Nor a delivery of another merchant through one's own endpoint.
    create(console)
    [mine] = endpoint_ids(app, api.merchant_id)
    r = console.post(f"{PAGE}/{mine}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 404


def test_a_disabled_endpoint_shows_why_and_since_when_and_can_be_enabled(app, console, api):
    # Nothing listens on port 9 of the loopback: every try fails at once.
    create(console, url="http://127.0.0.1:9/hooks")
    [hook] = endpoint_ids(app, api.merchant_id)
    api.member(api.program()["id"])
    state = app.extensions["wallet"]
    clock = Clock()
    worker = Worker(sessions=state.sessions, push=NullPushClient(),
                    settings=dataclasses.replace(state.settings,
                                                 webhook_disable_after_hours=2.0),
                    clock=clock, rng=NoJitter())
    worker.run_once()
    clock.now += dt.timedelta(hours=3)
    worker.run_once()
    assert api.get(f"/webhooks/{hook}").json["enabled"] is False
    html = console.get(PAGE).get_data(as_text=True)
    note = re.search(r'<p class="alert webhook-disabled">(.*?)</p>', html, re.S)
    assert note, html
    assert "Disabled since" in note.group(1)
    assert "failed without a success since" in note.group(1)
    log = console.get(f"{PAGE}/{hook}").get_data(as_text=True)
    assert "webhook-disabled" in log and "Connection refused" in log
    assert "Redeliver" not in log
    r = console.post(f"{PAGE}/{hook}/enable", {"back": "log"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"{PAGE}/{hook}")
    shown = api.get(f"/webhooks/{hook}").json
    assert shown["enabled"] is True and shown["disabled_reason"] is None
    assert "webhook-disabled" not in console.get(PAGE).get_data(as_text=True)


def test_the_delivery_log_shows_each_try_and_redeliver_queues_a_new_one(app, console, api):
    create(console)
    [hook] = endpoint_ids(app, api.merchant_id)
    api.member(api.program()["id"])
    log = console.get(f"{PAGE}/{hook}").get_data(as_text=True)
    [first] = re.findall(r'id="delivery-(\d+)"', log)
    assert "member.created" in log and "Pending" in log
    r = console.post(f"{PAGE}/{hook}/deliveries/{first}/redeliver")
    assert r.status_code == 303
    items = api.get(f"/webhooks/{hook}/deliveries").json["items"]
    assert [d["status"] for d in items] == ["pending", "pending"]
    assert items[0]["id"] != int(first) and items[0]["message_id"] == items[1]["message_id"]
    shown = console.get(f"{PAGE}/{hook}").get_data(as_text=True)
    assert re.findall(r'id="delivery-(\d+)"', shown) == [str(items[0]["id"]), first]
    # While the endpoint is off, a redelivery is refused with the reason.
    console.post(f"{PAGE}/{hook}/disable")
    r = console.post(f"{PAGE}/{hook}/deliveries/{first}/redeliver")
    assert r.status_code == 409 and "enable it first" in r.get_data(as_text=True)
    assert len(api.get(f"/webhooks/{hook}/deliveries").json["items"]) == 2


def test_every_change_in_the_console_is_audited(app, console, api):
    create(console)
    [hook] = endpoint_ids(app, api.merchant_id)
    api.member(api.program()["id"])
    [delivery] = api.get(f"/webhooks/{hook}/deliveries").json["items"]
    console.post(f"{PAGE}/{hook}/deliveries/{delivery['id']}/redeliver")
    console.post(f"{PAGE}/{hook}/disable")
    console.post(f"{PAGE}/{hook}/disable")  # no change, no entry
    console.post(f"{PAGE}/{hook}/enable")
    assert console.post(f"{PAGE}/{hook}/delete").status_code == 303
    assert endpoint_ids(app, api.merchant_id) == []
    entries = audit_of(app, api.merchant_id)
    assert [(a, k, t) for a, k, t, _ in entries] == [
        ("webhook.create", "user", f"webhook:{hook}"),
        ("webhook.redeliver", "user", f"webhook:{hook}"),
        ("webhook.update", "user", f"webhook:{hook}"),
        ("webhook.update", "user", f"webhook:{hook}"),
        ("webhook.delete", "user", f"webhook:{hook}")]
    assert entries[0][3] == {"url": URL, "events": ["member.created"]}
    assert entries[1][3]["delivery_id"] == delivery["id"]
    assert entries[1][3]["message_id"] == delivery["message_id"]
    assert [e[3] for e in entries[2:4]] == [{"enabled": [True, False]},
                                            {"enabled": [False, True]}]
    assert "whsec_" not in str(entries)
    log = console.get("/console/settings/audit").get_data(as_text=True)
    assert "webhook.create" in log and "webhook.redeliver" in log


def test_every_change_through_the_api_is_audited_with_its_key(app, api):
    hook = api.post("/webhooks", {"url": URL, "events": ["member.created"]}).json
    api.patch(f"/webhooks/{hook['id']}", {"description": "CRM", "enabled": False})
    api.patch(f"/webhooks/{hook['id']}", {"enabled": True})
    api.member(api.program()["id"])
    [delivery] = api.get(f"/webhooks/{hook['id']}/deliveries").json["items"]
    assert api.post(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"
                    ).status_code == 202
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    entries = audit_of(app, api.merchant_id)
    assert [(a, k) for a, k, _, _ in entries] == [
        ("webhook.create", "key"), ("webhook.update", "key"), ("webhook.update", "key"),
        ("webhook.redeliver", "key"), ("webhook.delete", "key")]
    assert entries[1][3] == {"description": [None, "CRM"], "enabled": [True, False]}
    assert entries[2][3] == {"enabled": [False, True]}
    assert "whsec_" not in str(entries)
    with app.extensions["wallet"].sessions() as s:
        labels = set(s.scalars(select(AuditEntry.actor_label).where(
            AuditEntry.merchant_id == api.merchant_id)))
    assert all(label.startswith("API key") for label in labels)


def test_the_page_speaks_russian(app, api):
    russian = Console(app.test_client(), api.merchant_id).sign_in_as(
        app, "owner", email="ru-owner@example.test", locale="ru")
    html = russian.get(PAGE).get_data(as_text=True)
    assert "Новый адрес" in html and "участник зарегистрирован" in html
