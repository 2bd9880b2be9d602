"""Operating the service: ``/metrics`` (Prometheus text, behind a bearer token), request
ids from the request to the card change to the push's log line, JSON logs without secrets,
and certificate expiry warnings 30 days ahead."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import pytest
from apns_standin import ApnsStandIn
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from push_support import PASS_TYPE
from push_support import WorkerFactory
from push_support import register
from sqlalchemy import select

from wallet_service import logs
from wallet_service import tracing
from wallet_service.cli import main
from wallet_service.models import CardChange

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def metrics_on(app):
    state = app.extensions["wallet"]
    before = state.settings
    state.settings = dataclasses.replace(before, metrics_token=TOKEN)
    yield
    state.settings = before


@pytest.fixture
def apns(apns_certs):
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE) as standin:
        yield standin


@pytest.fixture
def make_worker(app, apns):
    factory = WorkerFactory(app, apns)
    yield factory
    factory.close()


def scrape(client) -> dict[str, list]:
    """The page as Prometheus reads it: samples by metric family name."""
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.data
    assert r.content_type.startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(r.get_data(as_text=True))}


def value(page, family, sample=None, **labels) -> float:
    found = [s.value for s in page[family]
             if (sample is None or s.name == sample) and all(s.labels.get(k) == v
                                                             for k, v in labels.items())]
    return sum(found)


def test_metrics_do_not_exist_while_no_token_is_set(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789",
                                           f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_metrics_need_the_bearer_token(client, metrics_on, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"wallet_" not in r.data


def test_push_queue_rises_and_falls_around_a_fan_out(app, api, client, apns, make_worker,
                                                    metrics_on):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 912 345-67-{n:02d}") for n in range(3)]
    register(app, client, members, n_devices=2)
    worker = make_worker()
    worker.run_once()  # settle the registrations
    before = scrape(client)
    assert value(before, "wallet_delivery_jobs", channel="apns", status="pending") == 0
    assert value(before, "wallet_outbox_changes") == 0
    accepted = value(before, "wallet_apns_responses", status="200", outcome="delivered")

    r = api.patch(f"/programs/{program['id']}", {"design": {"background_color": "#102030"}})
    assert r.status_code == 200
    published = scrape(client)
    assert value(published, "wallet_outbox_changes") == 3  # one per card, not yet sequenced
    assert value(published, "wallet_outbox_oldest_change_age_seconds") >= 0

    worker.sequence()
    queued = scrape(client)
    assert value(queued, "wallet_outbox_changes") == 0
    assert value(queued, "wallet_delivery_jobs", channel="apns", status="pending") == 2
    assert value(queued, "wallet_delivery_overdue_seconds", channel="apns") >= 0

    worker.run_once()
    drained = scrape(client)
    assert value(drained, "wallet_delivery_jobs", channel="apns", status="pending") == 0
    assert value(drained, "wallet_delivery_overdue_seconds", channel="apns") == 0
    assert len(apns.requests) == 2
    assert value(drained, "wallet_apns_responses", status="200",
                 outcome="delivered") == accepted + 2

    # Requests are counted by route, never by raw path (no ids, tokens or card numbers).
    routes = {s.labels["route"] for s in drained["wallet_http_requests"]}
    assert "/api/v1/programs/<int:program_id>" in routes
    assert not any(re.search(r"/\d+(/|$)", route) or members[0]["serial_number"] in route
                   for route in routes)
    assert value(drained, "wallet_http_request_duration_seconds",
                 "wallet_http_request_duration_seconds_count",
                 route="/api/v1/programs/<int:program_id>", method="PATCH") >= 1
    assert value(drained, "wallet_ledger_operations", type="earn") >= 0
    days = {s.labels["certificate"]: s.value for s in drained["wallet_certificate_days_left"]}
    assert set(days) == {"pass", "wwdr"} and all(d > 30 for d in days.values())


def test_ledger_operations_count_only_committed_entries(api, client, metrics_on):
    member = api.member(api.program()["id"])
    before = value(scrape(client), "wallet_ledger_operations", type="redeem")
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 10})
    assert api.post(f"/members/{member['id']}/transactions",
                    {"type": "redeem", "points": 5}).status_code == 201
    refused = api.post(f"/members/{member['id']}/transactions", {"type": "redeem", "points": 99})
    assert refused.status_code == 409
    assert value(scrape(client), "wallet_ledger_operations", type="redeem") == before + 1


def test_one_request_id_follows_a_purchase_to_the_push(app, api, client, make_worker, caplog):
    member = api.member(api.program()["id"])
    register(app, client, [member])
    worker = make_worker()
    worker.run_once()
    request_id = "till-3-receipt-1187"
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 42},
                 headers={"X-Request-Id": request_id})
    assert r.status_code == 201
    assert r.headers["X-Request-Id"] == request_id
    with app.extensions["wallet"].sessions() as s:
        [change] = s.execute(select(CardChange.id, CardChange.request_id)).all()
    assert change.request_id == request_id

    with caplog.at_level(logging.INFO, logger="wallet_service.worker"):
        worker.run_once()
    lines = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert lines[0].startswith("push job=")
    assert f"changes={change.id}:{request_id}" in lines[0]
    assert "status=200 outcome=delivered" in lines[0]


@pytest.mark.parametrize("given", ["has space in it", "short", "x" * 65, "forged]\tline-0123",
                                   "ünïcode-request-id"])
def test_an_invalid_incoming_request_id_is_replaced(client, given):
    r = client.get("/healthz", headers={"X-Request-Id": given})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])


def test_every_answer_has_a_fresh_request_id(client):
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/no/such/page").headers["X-Request-Id"]
    assert first != second and re.fullmatch(r"[0-9a-f]{32}", second)


def test_json_logs_carry_the_request_id_and_no_secrets():
    record = logging.LogRecord("wallet_service.web", logging.WARNING, __file__, 1,
                               "odd download /passes/%s?phone=%s", ("Tk9-secret", "+79123456789"),
                               None)
    token = tracing.bind("req-0123456789")
    try:
        tracing.RequestIdFilter().filter(record)
    finally:
        tracing.unbind(token)
    line = logs.JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["request_id"] == "req-0123456789"
    assert entry["level"] == "WARNING" and entry["logger"] == "wallet_service.web"
    assert "Tk9-secret" not in line and "79123456789" not in line
    assert entry["message"] == "odd download /passes/…?phone=…"
    text = logs.TextFormatter().format(record)
    assert "[req-0123456789]" in text and "Tk9-secret" not in text


def test_doctor_and_metrics_warn_30_days_before_a_certificate_expires(tmp_path, monkeypatch):
    from wallet_service.apple.assets import generate_dev_certs

    generate_dev_certs(tmp_path / "certs", "pass.dev.wallet-service.loyalty", "DEVTEAM000",
                       valid_days=20)
    for name in [n for n in list(__import__("os").environ) if n.startswith("WALLET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["doctor"])
    assert re.search(r"warning pass certificate expiry: the pass certificate expires in 1\d days",
                     result.output), result.output
    from wallet_service.config import load_settings
    from wallet_service.services.apple import PassFactory

    days = PassFactory(load_settings()).days_left()
    assert 19 < days["pass"] <= 20
