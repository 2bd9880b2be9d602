"""Google Wallet cards end to end: the service talks to a local stand-in of the Google Wallet
REST API and OAuth token endpoint, reached only through its settings (spec §0–§4)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from api_support import Api
from api_support import make_merchant
from google_standin import QUOTA_EXCEEDED
from google_standin import RATE_LIMITED
from google_standin import CallbackKeys
from google_standin import GoogleWalletStandIn
from google_standin import callback_message
from sqlalchemy import func
from sqlalchemy import select

from wallet_service import create_app
from wallet_service.google import object_id
from wallet_service.models import GoogleCallback
from wallet_service.models import GoogleNotification
from wallet_service.models import GoogleObject
from wallet_service.push import NullPushClient
from wallet_service.worker import Worker

ISSUER = "3388000000022345678"


def verify_rs256(token: str, public_pem: bytes) -> dict:
    """Check the JWT's RS256 signature with the service account's public key; its claims."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    head, body, signature = token.split(".")
    assert json.loads(b64(head))["alg"] == "RS256"
    key = serialization.load_pem_public_key(public_pem)
    key.verify(b64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(b64(body))


@pytest.fixture(scope="module")
def keys():
    return CallbackKeys()


@pytest.fixture(scope="module")
def google(keys):
    with GoogleWalletStandIn(root_keys_document=keys.root_keys_document()) as standin:
        yield standin


@pytest.fixture(scope="module")
def account(google, tmp_path_factory):
    return google.service_account(tmp_path_factory.mktemp("google") / "service-account.json")


@pytest.fixture(scope="module")
def gapp(app, app_config, google, account):
    """The service with Google Wallet configured, on the same database as ``app``."""
    gapp = create_app({**app_config, "GOOGLE_ISSUER_ID": ISSUER,
                       "GOOGLE_CREDENTIALS": str(account.path), "GOOGLE_API_URL": google.url,
                       "GOOGLE_ROOT_KEYS_URL": google.root_keys_url,
                       "GOOGLE_RATE_PER_SECOND": "500"})
    gapp.config["TESTING"] = True
    yield gapp
    gapp.extensions["wallet"].close()


@pytest.fixture
def gapi(app, gapp, google):
    google.clear_requests()
    merchant_id, key = make_merchant(gapp, "Google coffee")
    return Api(gapp.test_client(), key, merchant_id)


@pytest.fixture
def worker(gapp):
    settings = dataclasses.replace(gapp.extensions["wallet"].settings, push_debounce_seconds=0.0)
    return Worker(sessions=gapp.extensions["wallet"].sessions, push=NullPushClient(),
                  settings=settings, google=gapp.extensions["wallet"].google)


def patches(google, oid):
    return [r for r in google.api_requests()
            if r.method == "PATCH" and r.path.endswith("/loyaltyObject/" + oid)]


def test_save_link_inserts_the_object_and_carries_a_short_signed_jwt(gapi, google, account):
    program = gapi.program(tiers=[{"name": "Bronze", "threshold": 0}])
    member = gapi.member(program["id"])
    url = member["google_save_url"]
    assert url.startswith("https://pay.google.com/gp/v/save/")
    assert len(url) < 1800
    claims = verify_rs256(url.rsplit("/", 1)[1], account.public_key_pem)
    assert claims["aud"] == "google"
    oid = object_id(ISSUER, member["serial_number"])
    assert claims["iss"] == account.email and claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://wallet.example.test"]
    assert claims["payload"]["loyaltyObjects"] == [{"id": oid}]
    stored = google.objects[oid]
    assert stored["loyaltyPoints"]["balance"]["int"] == 0
    assert member["serial_number"] not in oid  # no personal data or card number in ids
    assert any(r.kind == "token" for r in google.requests)
    # Reading the member again signs a new link without inserting again.
    inserts = len([r for r in google.api_requests() if r.method == "POST"])
    assert gapi.get(f"/members/{member['id']}").json["google_save_url"]
    assert len([r for r in google.api_requests() if r.method == "POST"]) == inserts


def test_points_change_patches_with_notification_budget(gapi, gapp, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = object_id(ISSUER, member["serial_number"])
    for i in range(1, 5):
        gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 10})
        worker.run_once()
        assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 10 * i
    sent = patches(google, oid)
    assert [p.body.get("notifyPreference") for p in sent] == ["NOTIFY_ON_UPDATE"] * 3 + [None]
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleNotification)) == 3


def test_quota_error_on_a_notifying_patch_falls_back_to_silent(gapi, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = object_id(ISSUER, member["serial_number"])
    google.fail(QUOTA_EXCEEDED, when=lambda r: r.method == "PATCH" and bool(
        isinstance(r.body, dict) and r.body.get("notifyPreference")))
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 7})
    worker.run_once()
    assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 7
    assert [p.status for p in patches(google, oid)][-1] == 200


def test_rate_limited_patch_is_retried(gapi, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = object_id(ISSUER, member["serial_number"])
    google.fail(RATE_LIMITED, when=lambda r: r.method == "PATCH")
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 3})
    worker.run_once()
    assert [p.status for p in patches(google, oid)] == [429, 200]
    assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 3


def test_design_change_patches_the_class_once_not_the_objects(gapi, google, worker):
    program = gapi.program()
    members = [gapi.member(program["id"], phone=f"+7912000000{i}") for i in range(3)]
    worker.run_once()
    google.clear_requests()
    gapi.patch(f"/programs/{program['id']}", {"design": {"background_color": "#225588"}})
    worker.run_once()
    class_patches = [r for r in google.api_requests() if "loyaltyClass" in r.path
                     and r.method in ("PATCH", "POST", "PUT")]
    assert len(class_patches) == 1
    assert all(not patches(google, object_id(ISSUER, m["serial_number"])) for m in members)


def test_campaign_message_reaches_google(gapi, google, worker):
    program = gapi.program()
    member = gapi.member(program["id"], marketing_consent=True)
    r = gapi.post(f"/programs/{program['id']}/campaigns", {"text": "Двойные баллы в субботу!"})
    assert r.status_code == 201, r.json
    worker.run_once()
    oid = object_id(ISSUER, member["serial_number"])
    messages = google.objects[oid].get("messages", [])
    assert [m["body"] for m in messages] == ["Двойные баллы в субботу!"]


def post_callback(client, body):
    return client.post("/google/callbacks", data=json.dumps(body),
                       headers={"Content-Type": "application/json"})


def test_valid_callback_recorded_once(gapi, gapp, keys):
    member = gapi.member(gapi.program()["id"])
    oid = object_id(ISSUER, member["serial_number"])
    message = callback_message(ISSUER, object_suffix=oid.split(".", 1)[1], event_type="save")
    body = keys.sign(message, recipient=ISSUER)
    client = gapp.test_client()
    assert post_callback(client, body).status_code == 200
    assert post_callback(client, body).status_code == 200  # Google retries: same nonce
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleCallback)) == 1
        assert s.scalar(select(GoogleObject.saved_at).where(GoogleObject.object_id == oid))
    deleted = callback_message(ISSUER, object_suffix=oid.split(".", 1)[1], event_type="del")
    assert post_callback(client, keys.sign(deleted, recipient=ISSUER)).status_code == 200
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(GoogleObject.deleted_at).where(GoogleObject.object_id == oid))


def test_forged_expired_or_foreign_callbacks_are_refused(gapp, keys):
    client = gapp.test_client()
    forger = CallbackKeys()
    now_ms = int(time.time() * 1000)
    bad = [
        forger.sign(callback_message(ISSUER), recipient=ISSUER),
        keys.sign(callback_message(ISSUER, exp_time_ms=now_ms - 1000), recipient=ISSUER),
        keys.sign(callback_message(ISSUER), recipient=ISSUER, key_expiration_ms=now_ms - 1000),
        keys.sign(callback_message(ISSUER), recipient="1111111111111111111"),
        {"signedMessage": "{}"},
    ]
    for body in bad:
        assert post_callback(client, body).status_code == 400
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleCallback)) == 0


def test_without_google_settings_the_callback_endpoint_is_off(client):
    assert client.post("/google/callbacks", data="{}").status_code == 404


def test_google_off_when_unreachable_does_not_break_enrollment(gapi, google):
    google.fail(*[dataclasses.replace(RATE_LIMITED, status=503)] * 20)
    member = gapi.post(f"/programs/{gapi.program()['id']}/members",
                       {"name": "B", "phone": "+79120000009"})
    assert member.status_code == 201
    assert member.json["google_save_url"] is None
    google._failures.clear()  # what enrollment did not use up


def test_doctor_checks_google(app_config, account, google, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from wallet_service.cli import main

    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("WALLET_GOOGLE_ISSUER_ID", ISSUER)
    monkeypatch.setenv("WALLET_GOOGLE_CREDENTIALS", str(account.path))
    r = CliRunner().invoke(main, ["doctor"])
    assert "ok      google: service account" in r.output, r.output
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    monkeypatch.setenv("WALLET_GOOGLE_CREDENTIALS", str(broken))
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1 and "error   google" in r.output
