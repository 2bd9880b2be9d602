"""Google Wallet cards end to end: the service talks to a local stand-in of the Google Wallet
REST API and OAuth token endpoint, reached only through its settings (spec §0–§4)."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from urllib.parse import urlsplit

import pytest
from api_support import Api
from api_support import make_merchant
from google_standin import BACKEND_ERROR
from google_standin import QUOTA_EXCEEDED
from google_standin import RATE_LIMITED
from google_standin import CallbackKeys
from google_standin import GoogleWalletStandIn
from google_standin import callback_message
from PIL import Image
from sqlalchemy import func
from sqlalchemy import select

from wallet_service import create_app
from wallet_service import i18n
from wallet_service.config import load_settings
from wallet_service.errors import ConfigurationError
from wallet_service.google import object_id
from wallet_service.models import GoogleCallback
from wallet_service.models import GoogleNotification
from wallet_service.models import GoogleObject
from wallet_service.push import NullPushClient
from wallet_service.ratelimit import RateLimiter
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
    gapp.extensions["wallet"].limiters.pages = RateLimiter(10_000)
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


def tap(client, member):
    """The customer taps "Add to Google Wallet" on the card page: the answer."""
    return client.get(urlsplit(member["google_save_url"]).path)


def saved(gapi, member):
    """``member`` after the customer tapped the save link (so the card has its object)."""
    r = tap(gapi.client, member)
    assert r.status_code == 303, r.get_data(as_text=True)
    return object_id(ISSUER, member["serial_number"])


def test_reading_and_listing_members_never_calls_google(app, gapi, google):
    program = gapi.program(tiers=[{"name": "Bronze", "threshold": 0}])
    # Some enrolled before Google Wallet was turned on (the same database without it).
    before = Api(app.test_client(), gapi.key, gapi.merchant_id)
    enrolled = [before.member(program["id"], phone=f"+7912100{i:04d}") for i in range(20)]
    assert all(m["google_save_url"] is None for m in enrolled)
    enrolled += [gapi.member(program["id"], phone=f"+7912200{i:04d}") for i in range(180)]
    listed = gapi.get(f"/programs/{program['id']}/members?limit=200")
    assert listed.status_code == 200 and len(listed.json["items"]) == 200
    one = gapi.get(f"/members/{enrolled[0]['id']}").json
    page = gapi.client.get(urlsplit(one["card_url"]).path)
    assert page.status_code == 200
    assert google.requests == []  # neither the API nor the card page called Google
    for member in [*listed.json["items"], one]:
        token = urlsplit(member["card_url"]).path.rsplit("/", 1)[1]
        assert member["google_save_url"] == f"https://wallet.example.test/c/{token}/google"
    assert f'href="{one["google_save_url"]}"' in page.get_data(as_text=True)


def test_tapping_the_link_inserts_once_and_redirects_with_a_short_signed_jwt(
        gapi, google, account):
    program = gapi.program(tiers=[{"name": "Bronze", "threshold": 0}])
    member = gapi.member(program["id"])
    oid = object_id(ISSUER, member["serial_number"])
    assert oid not in google.objects
    r = tap(gapi.client, member)
    assert r.status_code == 303 and r.headers["Cache-Control"] == "no-store"
    url = r.headers["Location"]
    assert url.startswith("https://pay.google.com/gp/v/save/")
    assert len(url) < 1800
    claims = verify_rs256(url.rsplit("/", 1)[1], account.public_key_pem)
    assert claims["aud"] == "google"
    assert claims["iss"] == account.email and claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://wallet.example.test"]
    assert claims["payload"]["loyaltyObjects"] == [{"id": oid}]
    stored = google.objects[oid]
    assert stored["loyaltyPoints"]["balance"]["int"] == 0
    assert stored["classId"] == f"{ISSUER}.program-{program['id']}"
    assert member["serial_number"] not in oid  # no personal data or card number in ids
    assert any(r.kind == "token" for r in google.requests)
    # Tapping again signs a new link without inserting again.
    inserts = [r for r in google.api_requests() if r.method == "POST"]
    assert [r.path.rsplit("/", 1)[1] for r in inserts] == ["loyaltyClass", "loyaltyObject"]
    again = tap(gapi.client, member)
    assert again.status_code == 303 and again.headers["Location"].startswith(
        "https://pay.google.com/gp/v/save/")
    assert len([r for r in google.api_requests() if r.method == "POST"]) == 2


@pytest.mark.parametrize("who", ["one card", "two cards of a new program"])
def test_taps_at_the_same_moment_both_redirect(gapi, gapp, google, monkeypatch, who):
    if gapp.extensions["wallet"].engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: the second tap waits for the first")
    program = gapi.program()
    first = gapi.member(program["id"])
    if who == "one card":
        saved(gapi, gapi.member(program["id"], phone="+7 912 345-67-01"))  # the class exists
        members, held = [first, first], "upsert_object"
    else:
        members, held = [first, gapi.member(program["id"], phone="+7 912 345-67-01")], \
            "upsert_class"
    client = gapp.extensions["wallet"].google.client
    both_upserting = threading.Barrier(2)
    upsert = getattr(client, held)

    def together(payload, **kwargs):
        both_upserting.wait(timeout=10)  # both found nothing recorded, both ask Google
        return upsert(payload, **kwargs)

    monkeypatch.setattr(client, held, together)
    google.clear_requests()
    answers = []
    threads = [threading.Thread(target=lambda m=m: answers.append(tap(gapp.test_client(), m)))
               for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in answers] == [303, 303]
    assert all(r.headers["Location"].startswith("https://pay.google.com/") for r in answers)
    # Both asked Google to insert; it keeps one and answers the other 409 (spec §1.5). (The
    # stand-in outlives a test, so a class of the same program id may exist from before.)
    kind = "/loyaltyObject" if who == "one card" else "/loyaltyClass"
    inserts = sorted(r.status for r in google.api_requests() if r.path.endswith(kind))
    assert inserts == [200, 409] if who == "one card" else inserts[1:] == [409]
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleObject)
                        .where(GoogleObject.card_id.in_([m["id"] for m in members]))) == len(
            {m["id"] for m in members})


def test_a_tap_while_google_is_down_says_to_try_again(gapi, gapp, google):
    member = gapi.member(gapi.program()["id"])
    google.fail(*[BACKEND_ERROR] * 4)
    started = time.monotonic()
    r = tap(gapi.client, member)
    assert time.monotonic() - started < 5  # the customer is not kept waiting for retries
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    page = r.get_data(as_text=True)
    assert i18n.t("ru", "google_unavailable_text") in page
    assert f'href="{urlsplit(member["google_save_url"]).path}"' in page  # try again
    english = gapi.client.get(urlsplit(member["google_save_url"]).path + "?lang=en")
    assert english.status_code == 503
    assert i18n.t("en", "google_unavailable_text") in english.get_data(as_text=True)
    google._failures.clear()  # what the taps did not use up
    with gapp.extensions["wallet"].sessions() as s:
        assert s.get(GoogleObject, member["id"]) is None
    assert tap(gapi.client, member).status_code == 303
    assert object_id(ISSUER, member["serial_number"]) in google.objects


def test_the_link_of_an_unknown_or_closed_card_or_without_google_is_404(gapi, google,
                                                                        client):
    member = gapi.member(gapi.program()["id"])
    path = urlsplit(member["google_save_url"]).path
    assert client.get(path).status_code == 404  # the service without Google Wallet
    assert gapi.client.get("/c/no-such-card/google").status_code == 404
    gapi.post(f"/members/{member['id']}/close")
    closed = gapi.client.get(path)
    assert closed.status_code == 404
    assert i18n.t("ru", "not_found_title") in closed.get_data(as_text=True)
    assert google.api_requests() == []


def test_points_change_patches_with_notification_budget(gapi, gapp, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = saved(gapi, member)
    for i in range(1, 5):
        gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 10})
        worker.run_once()
        assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 10 * i
    sent = patches(google, oid)
    assert [p.body.get("notifyPreference") for p in sent] == ["NOTIFY_ON_UPDATE"] * 3 + [None]
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleNotification)) == 3


def test_changes_before_the_first_tap_wait_for_it(gapi, google, worker):
    member = gapi.member(gapi.program()["id"])
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 25})
    worker.run_once()
    assert google.api_requests() == []
    oid = saved(gapi, member)
    assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 25


def test_quota_error_on_a_notifying_patch_falls_back_to_silent(gapi, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = saved(gapi, member)
    google.fail(QUOTA_EXCEEDED, when=lambda r: r.method == "PATCH" and bool(
        isinstance(r.body, dict) and r.body.get("notifyPreference")))
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 7})
    worker.run_once()
    assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 7
    assert [p.status for p in patches(google, oid)][-1] == 200


def test_rate_limited_patch_is_retried(gapi, google, worker):
    member = gapi.member(gapi.program()["id"])
    oid = saved(gapi, member)
    google.fail(RATE_LIMITED, when=lambda r: r.method == "PATCH")
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 3})
    worker.run_once()
    assert [p.status for p in patches(google, oid)] == [429, 200]
    assert google.objects[oid]["loyaltyPoints"]["balance"]["int"] == 3


def test_colour_change_patches_the_class_once_not_the_objects(gapi, google, worker):
    program = gapi.program()
    members = [gapi.member(program["id"], phone=f"+7912000000{i}") for i in range(3)]
    for member in members:
        saved(gapi, member)
    worker.run_once()
    google.clear_requests()
    gapi.patch(f"/programs/{program['id']}", {"design": {"background_color": "#225588"}})
    worker.run_once()
    class_patches = [r for r in google.api_requests() if "loyaltyClass" in r.path
                     and r.method in ("PATCH", "POST", "PUT")]
    assert len(class_patches) == 1
    assert all(not patches(google, object_id(ISSUER, m["serial_number"])) for m in members)


def test_barcode_change_patches_barcode_and_links_of_every_object(gapi, google, worker):
    program = gapi.program()
    members = [gapi.member(program["id"], phone=f"+7912000001{i}") for i in range(3)]
    oids = [saved(gapi, member) for member in members]
    assert all(google.objects[oid]["barcode"]["type"] == "QR_CODE" for oid in oids)
    worker.run_once()
    google.clear_requests()
    r = gapi.patch(f"/programs/{program['id']}", {"design": {"barcode_format": "pdf417"}})
    assert r.status_code == 200, r.json
    worker.run_once()
    for member, oid in zip(members, oids, strict=True):
        (patch,) = patches(google, oid)
        assert patch.body["barcode"] == {"type": "PDF_417", "value": member["serial_number"],
                                         "alternateText": member["serial_number"]}
        assert patch.body["linksModuleData"]["uris"][0]["uri"] == member["card_url"]
        assert "notifyPreference" not in patch.body
        assert google.objects[oid]["barcode"]["type"] == "PDF_417"


def test_the_survey_link_is_on_the_object_beside_the_card_page(gapi, google, worker):
    """With the NPS survey on, the Google card links it as the Apple pass's back does; an
    object saved before the survey was turned on gets it with the next patch of links."""
    program = gapi.program()
    before = gapi.member(program["id"], phone="+79120000021")
    oid_before = saved(gapi, before)
    assert [u["id"] for u in google.objects[oid_before]["linksModuleData"]["uris"]] == ["card"]
    r = gapi.client.put(f"/api/v1/programs/{program['id']}/survey", json={"enabled": True},
                        headers={"Authorization": f"Bearer {gapi.key}"})
    assert r.status_code == 200, r.json
    member = gapi.member(program["id"], phone="+79120000022")
    oid = saved(gapi, member)
    uris = google.objects[oid]["linksModuleData"]["uris"]
    assert [(u["id"], u["uri"]) for u in uris] == [
        ("card", member["card_url"]), ("survey", member["card_url"] + "/survey")]
    assert {t["language"]: t["value"] for t in
            uris[1]["localizedDescription"]["translatedValues"]
            + [uris[1]["localizedDescription"]["defaultValue"]]}.get("en") == "Rate us"
    worker.run_once()
    assert [u["id"] for u in google.objects[oid_before]["linksModuleData"]["uris"]] == [
        "card", "survey"]


def test_campaign_message_reaches_google(gapi, google, worker):
    program = gapi.program()
    member = gapi.member(program["id"], marketing_consent=True)
    oid = saved(gapi, member)
    r = gapi.post(f"/programs/{program['id']}/campaigns", {"text": "Двойные баллы в субботу!"})
    assert r.status_code == 201, r.json
    worker.run_once()
    messages = google.objects[oid].get("messages", [])
    assert [m["body"] for m in messages] == ["Двойные баллы в субботу!"]


def test_the_eleventh_campaign_message_prunes_the_oldest(gapi, google, worker):
    program = gapi.program()
    member = gapi.member(program["id"], marketing_consent=True)
    oid = saved(gapi, member)
    for n in range(1, 12):
        r = gapi.post(f"/programs/{program['id']}/campaigns", {"text": f"Offer {n}"})
        assert r.status_code == 201, r.json
        worker.run_once()
    messages = google.objects[oid]["messages"]
    assert [m["body"] for m in messages] == [f"Offer {n}" for n in range(2, 12)]
    pruned = [r for r in patches(google, oid) if "messages" in r.body]
    assert len(pruned) == 1 and [m["body"] for m in pruned[0].body["messages"]] == [
        f"Offer {n}" for n in range(2, 11)]
    assert all(m["messageType"] == "TEXT" for m in pruned[0].body["messages"])
    # Only the first three notified: Google's budget is 3 a day per card (spec §2.6).
    types = [r.body["message"]["messageType"] for r in google.api_requests()
             if r.path.endswith("/addMessage")]
    assert types == ["TEXT_AND_NOTIFY"] * 3 + ["TEXT"] * 8
    assert all(r.status == 200 for r in google.api_requests() if oid in r.path)


def test_a_card_saved_with_older_messages_is_read_once_before_pruning(gapi, gapp, google,
                                                                     worker):
    program = gapi.program()
    member = gapi.member(program["id"], marketing_consent=True)
    oid = saved(gapi, member)
    # What an object synced before the service kept its messages looks like.
    with gapp.extensions["wallet"].sessions() as s:
        row = s.get(GoogleObject, member["id"])
        row.synced_state = {k: v for k, v in row.synced_state.items() if k != "messages"}
        s.commit()
    google.objects[oid]["messages"] = [
        {"id": f"old{n}", "header": "News", "body": f"Old {n}", "messageType": "TEXT",
         "kind": "walletobjects#walletObjectMessage"} for n in range(10)]
    gapi.post(f"/programs/{program['id']}/campaigns", {"text": "New"})
    worker.run_once()
    assert [m["body"] for m in google.objects[oid]["messages"]] == [
        *(f"Old {n}" for n in range(1, 10)), "New"]
    assert [r.method for r in google.api_requests() if oid in r.path] == [
        "GET", "PATCH", "POST"]


def test_a_new_tier_notifies_through_a_message_within_the_budget(gapi, gapp, google, worker):
    program = gapi.program(tiers=[{"name": "Bronze", "threshold": 0},
                                  {"name": "Silver", "threshold": 100},
                                  {"name": "Gold", "threshold": 1000}], languages=["en", "ru"])
    member = gapi.member(program["id"])
    oid = saved(gapi, member)
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 150})
    worker.run_once()
    stored = google.objects[oid]
    assert stored["secondaryLoyaltyPoints"]["balance"] == {"string": "Silver"}
    (message,) = stored["messages"]
    assert message["messageType"] == "TEXT_AND_NOTIFY"
    assert message["body"] == i18n.t("en", "google_tier_body", tier="Silver")
    assert {t["language"]: t["value"] for t in message["localizedBody"]["translatedValues"]} \
        == {lang: i18n.t(lang, "google_tier_body", tier="Silver") for lang in ("en", "ru")}
    # The points patch does not notify a second time for the same change.
    assert [p.body.get("notifyPreference") for p in patches(google, oid)] == [None]
    with gapp.extensions["wallet"].sessions() as s:
        assert list(s.scalars(select(GoogleNotification.kind)
                              .where(GoogleNotification.card_id == member["id"]))) == ["tier"]
    # Two more notifying changes use up the day's budget; the next tier arrives silently.
    for _ in range(2):
        gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
        worker.run_once()
    gapi.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1000})
    worker.run_once()
    assert google.objects[oid]["secondaryLoyaltyPoints"]["balance"] == {"string": "Gold"}
    last = google.objects[oid]["messages"][-1]
    assert last["body"] == i18n.t("en", "google_tier_body", tier="Gold")
    assert last["messageType"] == "TEXT"
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(GoogleNotification)
                        .where(GoogleNotification.card_id == member["id"])) == 3
    assert len(google.notifications[oid]) == 3


def png(size, colour):
    buffer = io.BytesIO()
    Image.new("RGBA", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_class_shows_a_square_logo_on_the_program_colour(gapi, gapp, google, worker,
                                                             client):
    program = gapi.program(design={"background_color": "#225588"})
    saved(gapi, gapi.member(program["id"]))
    cid = f"{ISSUER}.program-{program['id']}"
    first = google.classes[cid]["programLogo"]["sourceUri"]["uri"]
    assert first.startswith(program["join_url"] + "/google-logo.png?v=")

    def fetch(uri):
        r = gapi.client.get(urlsplit(uri).path, query_string=urlsplit(uri).query)
        assert r.status_code == 200 and r.mimetype == "image/png"
        logo = Image.open(io.BytesIO(r.data)).convert("RGB")
        assert logo.width == logo.height >= 660  # Google asks for 660 px, square (§2.4)
        assert logo.getpixel((5, 5)) == (0x22, 0x55, 0x88)
        return logo

    fetch(first)  # the template's logo
    made = gapp.extensions["wallet"].google.logos.made
    fetch(first)
    assert gapp.extensions["wallet"].google.logos.made == made  # once per revision
    r = gapi.client.put(f"/api/v1/programs/{program['id']}/images/logo",
                        data=png((1200, 300), (200, 30, 30, 255)),
                        headers={"Authorization": f"Bearer {gapi.key}",
                                 "Content-Type": "image/png"})
    assert r.status_code == 200, r.json
    worker.run_once()
    second = google.classes[cid]["programLogo"]["sourceUri"]["uri"]
    assert second != first  # a new logo, a new URL: Google keeps what it fetched
    assert fetch(second).getpixel((330, 330)) == (200, 30, 30)
    path = urlsplit(second).path
    assert client.get(path).status_code == 404  # the service without Google Wallet
    assert gapi.client.get("/join/no-such-program/google-logo.png").status_code == 404


@pytest.fixture(scope="module")
def staging(app, app_config, google, account):
    """A second deployment on the same Google issuer, in its own namespace."""
    staging = create_app({**app_config, "GOOGLE_ISSUER_ID": ISSUER,
                          "GOOGLE_CREDENTIALS": str(account.path), "GOOGLE_API_URL": google.url,
                          "GOOGLE_ROOT_KEYS_URL": google.root_keys_url,
                          "GOOGLE_RATE_PER_SECOND": "500", "GOOGLE_ID_PREFIX": "staging"})
    staging.config["TESTING"] = True
    yield staging
    staging.extensions["wallet"].close()


def test_an_id_prefix_keeps_a_deployment_apart_and_none_keeps_the_ids(gapi, staging, google,
                                                                      account):
    production = gapi.member(gapi.program()["id"])
    production_id = saved(gapi, production)
    assert production_id == f"{ISSUER}.card-{production_id.rsplit('-', 1)[1]}"
    merchant_id, key = make_merchant(staging, "Staging coffee")
    sapi = Api(staging.test_client(), key, merchant_id)
    program = sapi.program()
    member = sapi.member(program["id"], phone="+7 912 345-67-00")
    google.clear_requests()
    r = tap(sapi.client, member)
    assert r.status_code == 303
    claims = verify_rs256(r.headers["Location"].rsplit("/", 1)[1], account.public_key_pem)
    oid = object_id(ISSUER, member["serial_number"], prefix="staging")
    assert oid.startswith(f"{ISSUER}.staging.card-")
    assert claims["payload"]["loyaltyObjects"] == [{"id": oid}]
    assert google.objects[oid]["classId"] == f"{ISSUER}.staging.program-{program['id']}"
    assert f"{ISSUER}.staging.program-{program['id']}" in google.classes
    # Nothing of the other deployment was touched.
    assert all(".staging." in (req.resource_id or req.body["id"])
               for req in google.api_requests())
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"GOOGLE_ID_PREFIX": "staging.eu"}, environ={})
    assert caught.value.field == "WALLET_GOOGLE_ID_PREFIX"


def post_callback(client, body):
    return client.post("/google/callbacks", data=json.dumps(body),
                       headers={"Content-Type": "application/json"})


def test_valid_callback_recorded_once(gapi, gapp, keys):
    member = gapi.member(gapi.program()["id"])
    oid = saved(gapi, member)
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


def test_google_unreachable_does_not_touch_enrollment(gapi, google):
    google.fail(*[dataclasses.replace(RATE_LIMITED, status=503)] * 20)
    member = gapi.post(f"/programs/{gapi.program()['id']}/members",
                       {"name": "B", "phone": "+79120000009"})
    assert member.status_code == 201
    assert member.json["google_save_url"].endswith("/google")
    assert google.api_requests() == []
    google._failures.clear()


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
