"""Hostile input is refused early and cheaply: bodies, signatures, nesting, numbers, ids,
pictures and log lines are bounded before the expensive work; logs and pages leak nothing.

Each test keeps its inputs small: the limits are checked by status and by a generous time
budget, never by making the service do the expensive work.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import stat
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from google_standin import CallbackKeys
from google_standin import GoogleWalletStandIn
from google_standin import callback_message
from PIL import Image
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.routing import IntegerConverter

from wallet_service import create_app
from wallet_service.accesslog import redact
from wallet_service.apple import images
from wallet_service.apple import prepare_image
from wallet_service.errors import InvalidInput
from wallet_service.google import GoogleRootKeys
from wallet_service.google import GoogleUnavailable
from wallet_service.models import DeviceLog
from wallet_service.models import GoogleCallback
from wallet_service.push import NullPushClient
from wallet_service.worker import Worker

ISSUER = "3388000000099999999"
#: Generous: each refused request below costs milliseconds once refused early.
FAST = 1.0


# --- Google callbacks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return CallbackKeys()


@pytest.fixture(scope="module")
def google(keys):
    with GoogleWalletStandIn(root_keys_document=keys.root_keys_document()) as standin:
        yield standin


@pytest.fixture(scope="module")
def google_app_factory(app, app_config, google, tmp_path_factory):
    """Apps with Google Wallet configured, on the same database as ``app``."""
    account = google.service_account(tmp_path_factory.mktemp("google") / "account.json")
    made = []

    def make(**settings):
        gapp = create_app({**app_config, "GOOGLE_ISSUER_ID": ISSUER,
                           "GOOGLE_CREDENTIALS": str(account.path),
                           "GOOGLE_API_URL": google.url,
                           "GOOGLE_ROOT_KEYS_URL": google.root_keys_url, **settings})
        gapp.config["TESTING"] = True
        made.append(gapp)
        return gapp

    yield make
    for gapp in made:
        gapp.extensions["wallet"].close()


@pytest.fixture(scope="module")
def gapp(google_app_factory):
    return google_app_factory()


def post_callback(client, body):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/google/callbacks", data=data,
                       headers={"Content-Type": "application/json"})


def test_oversized_callback_is_refused_before_it_is_read(gapp):
    started = time.monotonic()
    r = post_callback(gapp.test_client(), b"x" * (100 * 1024))
    assert r.status_code == 413
    assert time.monotonic() - started < FAST


def test_callback_with_a_padded_signature_list_is_refused(gapp, keys):
    """A genuine callback with junk signatures before the real one: the list is capped, so a
    forger cannot make the service try thousands of signatures."""
    body = keys.sign(callback_message(ISSUER), recipient=ISSUER)
    real = body["intermediateSigningKey"]["signatures"]
    junk = body["signature"]  # well-formed base64 DER, but not over the signed key
    body["intermediateSigningKey"]["signatures"] = [junk] * 10 + real
    client = gapp.test_client()
    assert post_callback(client, body).status_code == 400
    body["intermediateSigningKey"]["signatures"] = [junk] * 9 + real
    assert post_callback(client, body).status_code == 200


def test_callbacks_are_rate_limited_per_client(google_app_factory):
    limited = google_app_factory(RATE_LIMIT_PER_MINUTE="3")
    client = limited.test_client()
    codes = [post_callback(client, {}).status_code for _ in range(5)]
    assert codes[:3] == [400] * 3 and codes[3:] == [429] * 2
    r = post_callback(client, {})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_deeply_nested_callback_is_400(gapp):
    nested = "[" * 30_000 + "]" * 30_000  # under the body cap
    r = post_callback(gapp.test_client(), '{"signedMessage": ' + nested + "}")
    assert r.status_code == 400


def test_unreachable_root_keys_answer_503_and_are_not_fetched_per_callback(
        google_app_factory, keys):
    with GoogleWalletStandIn(root_keys_document=None) as keyless:  # the key URL answers 404
        gapp = google_app_factory(GOOGLE_ROOT_KEYS_URL=keyless.root_keys_url)
        client = gapp.test_client()
        for _ in range(3):
            body = keys.sign(callback_message(ISSUER), recipient=ISSUER)
            r = post_callback(client, body)
            assert r.status_code == 503
            assert 1 <= int(r.headers["Retry-After"]) <= 60
        fetches = [r for r in keyless.requests if r.path.startswith("/gp/m/issuer/keys")]
        assert len(fetches) == 1


def test_root_key_failure_is_cached_then_retried(google, keys):
    now = [1_000_000.0]
    root_keys = GoogleRootKeys(url=google.url + "/nothing-here", clock=lambda: now[0],
                               failure_ttl=60)
    try:
        with pytest.raises(GoogleUnavailable) as first:
            root_keys.keys()
        assert first.value.retry_after == 60
        root_keys.url = google.root_keys_url  # reachable again, but not asked yet
        now[0] += 59
        with pytest.raises(GoogleUnavailable) as cached:
            root_keys.keys()
        assert cached.value.retry_after == 1
        now[0] += 1
        assert len(root_keys.keys()) == 1
    finally:
        root_keys.close()
    assert len([r for r in google.requests if r.path == "/nothing-here"]) == 1


def test_simultaneous_deliveries_of_one_nonce_record_it_once(gapp, keys):
    engine = gapp.extensions["wallet"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: there is no race to lose")
    body = keys.sign(callback_message(ISSUER), recipient=ISSUER)
    both_inserting = threading.Barrier(2)

    def hold_insert(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO google_callbacks"):
            both_inserting.wait(timeout=10)

    event.listen(engine, "before_cursor_execute", hold_insert)
    try:
        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(lambda _: post_callback(gapp.test_client(), body).status_code,
                                  range(2)))
    finally:
        event.remove(engine, "before_cursor_execute", hold_insert)
    assert codes == [200, 200]
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleCallback)) == 1


# --- Apple's log endpoint -----------------------------------------------------------------


def test_oversized_device_log_is_refused(client, session):
    r = client.post("/apple/v1/log", json={"logs": ["x" * 1000] * 100})  # ~100 KB
    assert r.status_code == 413
    assert session.scalar(select(func.count()).select_from(DeviceLog)) == 0


def test_deeply_nested_device_log_is_400(client):
    r = client.post("/apple/v1/log", data='{"logs": ' + "[" * 30_000 + "]" * 30_000 + "}",
                    content_type="application/json")
    assert r.status_code == 400


def test_device_logs_are_short_clean_lines(client, session):
    logs = [f"message {i}\x00\x1b[31m\u202e\ud800 " + "y" * 1000 for i in range(20)]
    assert client.post("/apple/v1/log", json={"logs": logs}).status_code == 200
    stored = session.scalars(select(DeviceLog.message).order_by(DeviceLog.id)).all()
    assert len(stored) == 10
    assert stored[0].startswith("message 0[31m ")
    for line in stored:
        assert len(line) <= 500
        assert line.isprintable()
        line.encode("utf-8")  # no lone surrogates


def test_the_daily_step_prunes_old_device_logs(app, session):
    now = dt.datetime.now(dt.UTC)
    session.add_all([DeviceLog(message="old", created_at=now - dt.timedelta(days=31)),
                     DeviceLog(message="recent", created_at=now - dt.timedelta(days=29))])
    session.commit()
    state = app.extensions["wallet"]
    worker = Worker(sessions=state.sessions, push=NullPushClient(), settings=state.settings)
    worker.run_once()
    session.expire_all()
    assert session.scalars(select(DeviceLog.message)).all() == ["recent"]


# --- the merchant API ---------------------------------------------------------------------


def test_large_api_body_is_refused(api):
    started = time.monotonic()
    r = api.post("/programs", {"name": "x" * (2 * 1024 * 1024), "kind": "points"})
    assert r.status_code == 413
    assert r.json["status"] == 413
    assert time.monotonic() - started < FAST


def test_deeply_nested_api_body_is_a_400_problem(api):
    r = api.client.post("/api/v1/programs", data="[" * 100_000 + "]" * 100_000,
                        headers={"Authorization": f"Bearer {api.key}",
                                 "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json["errors"][0]["field"] == "body"
    assert "nested" in r.json["detail"]


def test_nesting_within_the_limit_is_read(api):
    program = api.program()
    r = api.patch(f"/programs/{program['id']}", {"design": {"contact": {"phone": "+7 1"}}},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.json


def _id_paths(app, huge):
    """Every API route with an integer id, its ids set to ``huge``, and its methods."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or not any(
                isinstance(c, IntegerConverter) for c in rule._converters.values()):
            continue
        path = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>",
                      lambda m: str(huge) if m.group(1) == "int" else "logo", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


@pytest.mark.parametrize("huge", [2**63, 10**30])
def test_path_ids_beyond_64_bits_are_404(app, api, huge):
    checked = 0
    for method, path in _id_paths(app, huge):
        r = api.client.open(path, method=method, json={},
                            headers={"Authorization": f"Bearer {api.key}"})
        assert r.status_code == 404, (method, path, r.status_code)
        assert r.mimetype == "application/problem+json"
        checked += 1
    assert checked > 10


def test_the_largest_64_bit_id_is_a_plain_404(api):
    assert api.get(f"/programs/{2**63 - 1}").status_code == 404


def test_ids_beyond_64_bits_in_bodies_and_queries_are_422(api):
    program = api.program()
    member = api.member(program["id"])
    huge = 2**63
    cases = [
        (api.post(f"/members/{member['id']}/transactions",
                  {"type": "refund", "original_id": huge}), "original_id"),
        (api.post(f"/programs/{program['id']}/coupons",
                  {"title": "x", "segment": {"member_ids": [huge]}}), "segment.member_ids.0"),
        (api.get(f"/members?program_id={huge}"), "program_id"),
        (api.get(f"/wallet-events?member_id={huge}"), "member_id"),
    ]
    for r, field in cases:
        assert r.status_code == 422, (field, r.status_code)
        assert r.json["errors"][0]["field"] == field


# --- amounts ------------------------------------------------------------------------------


@pytest.fixture
def member(api):
    return api.member(api.program()["id"])


@pytest.mark.parametrize("amount", [
    "1e-999999999", "1E2", "1." + "0" * 5000 + "1", "١٢", "１２", "0.00001", "12.", ".5",
    " 12", "+12", "0x10", "NaN", "Infinity", True, "1" * 11,
])
def test_inexact_or_exotic_amounts_are_refused_naming_the_field(api, member, amount):
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": amount})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == "amount"
    assert api.get(f"/members/{member['id']}/transactions").json["items"] == []


def test_amount_json_numbers_are_read_exactly(api, member):
    url = f"/api/v1/members/{member['id']}/transactions"
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    r = api.client.post(url, data='{"type": "earn", "amount": 1.0000000000000000001}',
                        headers=headers)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "amount"
    r = api.client.post(url, data='{"type": "earn", "amount": 1e3}', headers=headers)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "amount"
    r = api.client.post(url, data='{"type": "earn", "amount": 250.5}', headers=headers)
    assert r.status_code == 201 and r.json["transaction"]["amount"] == "250.50"


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "earn", "lines": [{"amount": "1e-999999999"}]}, "lines.0.amount"),
    ({"type": "earn", "lines": [{"amount": "١٠٠"}]}, "lines.0.amount"),
])
def test_receipt_line_amounts_are_exact(api, member, body, field):
    r = api.post(f"/members/{member['id']}/transactions", body)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == field


@pytest.mark.parametrize(("fields", "field"), [
    ({"earning": {"points": 1, "per_amount": "1e-999999999"}}, "earning.per_amount"),
    ({"earning": {"points": 1, "per_amount": "١٠٠"}}, "earning.per_amount"),
    ({"tiers": [{"name": "A", "threshold": "1e3"}]}, "tiers.0.threshold"),
    ({"kind": "stamps", "stamps": {"min_amount": "٥"}}, "stamps.min_amount"),
])
def test_program_money_settings_are_exact(api, fields, field):
    r = api.post("/programs", {"name": "Coffee", "kind": "points", **fields})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field


def test_plain_amounts_still_work(api, member):
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": "99.99"})
    assert r.status_code == 201 and r.json["transaction"]["amount"] == "99.99"
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": 100})
    assert r.status_code == 201


# --- images -------------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size; refusing it must not need its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def encode(size, fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


def test_a_very_long_picture_is_refused_from_its_header(api):
    """39,000,000 × 1 pixels pass a pixel-count limit; the side limit stops them."""
    program = api.program()
    started = time.monotonic()
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/logo",
                       data=png_header_only(39_000_000, 1),
                       headers={"Authorization": f"Bearer {api.key}",
                                "Content-Type": "image/png"})
    assert time.monotonic() - started < FAST
    assert r.status_code == 413
    assert r.json["errors"][0]["field"] == "logo"
    assert "8192" in r.json["detail"]


@pytest.mark.parametrize(("kind", "size"), [("strip", (4000, 20)), ("logo", (6000, 5)),
                                            ("icon", (20, 3000))])
def test_pictures_too_thin_for_their_kind_are_422(api, kind, size):
    program = api.program()
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/{kind}", data=encode(size),
                       headers={"Authorization": f"Bearer {api.key}",
                                "Content-Type": "image/png"})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == kind


def test_side_limit_is_checked_before_decoding():
    with pytest.raises(InvalidInput, match="8192") as caught:
        prepare_image("strip", png_header_only(9000, 3000))
    assert caught.value.status == 413 and caught.value.field == "strip"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_pictures_are_shrunk_before_resampling(fmt):
    picture = images._decode("icon", encode((3000, 2000), fmt))
    assert 87 <= min(picture.size) and max(picture.size) <= 1500


# --- access log ---------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    ("GET /api/v1/members?phone=%2B79123456789&limit=5 HTTP/1.1",
     "GET /api/v1/members?phone=…&limit=5 HTTP/1.1"),
    ("GET /api/v1/members?barcode=4600000000017 HTTP/1.1",
     "GET /api/v1/members?barcode=… HTTP/1.1"),
    ("GET /api/v1/members?limit=5&email=anna%40example.com HTTP/1.1",
     "GET /api/v1/members?limit=5&email=… HTTP/1.1"),
    ("GET /api/v1/programs?api_key=wsk_secret&key=k&token=t&Token=T HTTP/1.1",
     "GET /api/v1/programs?api_key=…&key=…&token=…&Token=… HTTP/1.1"),
    ("phone=%2B7912&cursor=abc", "phone=…&cursor=abc"),
    ("GET /apple/v1/passes/pass.com.example/4600000000017 HTTP/1.1",
     "GET /apple/v1/passes/pass.com.example/… HTTP/1.1"),
    ("POST /apple/v1/devices/dev1/registrations/pass.com.example/4600000000017 HTTP/1.1",
     "POST /apple/v1/devices/dev1/registrations/pass.com.example/… HTTP/1.1"),
    ("GET /apple/v1/devices/dev1/registrations/pass.com.example?passesUpdatedSince=7 HTTP/1.1",
     "GET /apple/v1/devices/dev1/registrations/pass.com.example?passesUpdatedSince=7 HTTP/1.1"),
    ("GET /passes/AbC-123_xyz HTTP/1.1", "GET /passes/… HTTP/1.1"),
    ("GET /api/v1/programs/5?phoneme=x HTTP/1.1", "GET /api/v1/programs/5?phoneme=x HTTP/1.1"),
])
def test_personal_data_and_secrets_are_masked_in_the_access_log(line, expected):
    assert redact(line) == expected


# --- headers and files --------------------------------------------------------------------


def test_html_pages_carry_the_security_headers(client):
    for path in ("/api/v1/docs", "/join/unknown-token"):
        r = client.get(path)
        assert r.mimetype == "text/html", path
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
    docs = client.get("/api/v1/docs")
    # The page styles itself inline and loads nothing else: the policy must allow that.
    assert b"<style>" in docs.data and b"<script" not in docs.data
    assert "style-src 'self' 'unsafe-inline'" in docs.headers["Content-Security-Policy"]


def test_hsts_only_behind_https(client, app_config):
    assert "max-age=" in client.get("/healthz").headers["Strict-Transport-Security"]
    plain = create_app({**app_config, "PUBLIC_URL": "http://127.0.0.1:8000"})
    try:
        assert "Strict-Transport-Security" not in plain.test_client().get("/healthz").headers
    finally:
        plain.extensions["wallet"].close()


def test_embedded_database_and_secrets_are_private(tmp_path):
    from wallet_service.migrate import upgrade
    from wallet_service.services.apple import signer_from_settings

    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": None,
                      "SECRET_KEY": None})
    state = app.extensions["wallet"]
    try:
        upgrade(state.engine)
        signer_from_settings(state.settings)
    finally:
        state.close()
    private = [instance / "wallet.db", instance / "secret_key",
               instance / "certs" / "pass-key.pem", instance / "certs" / "wwdr-key.pem"]
    for path in private:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
