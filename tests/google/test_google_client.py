"""``GoogleWalletClient`` against the local stand-in: token, insert/409/patch/get, messages,
retries, quota errors on notifying calls (spec §1, §2.6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from google.auth import jwt as google_jwt
from google_helpers import CARD
from google_helpers import ISSUER
from google_helpers import PROGRAM
from google_helpers import card
from google_standin import BACKEND_ERROR
from google_standin import QUOTA_EXCEEDED
from google_standin import RATE_LIMITED
from google_standin import Failure
from google_standin import GoogleWalletStandIn
from google_standin import ServiceAccount
from google_standin import make_service_account_info

from wallet_service.google import SCOPE
from wallet_service.google import GoogleAuthError
from wallet_service.google import GoogleConflict
from wallet_service.google import GoogleInvalidRequest
from wallet_service.google import GoogleNotFound
from wallet_service.google import GoogleRateLimited
from wallet_service.google import GoogleUnavailable
from wallet_service.google import GoogleWalletClient
from wallet_service.google import NotificationQuotaExceeded
from wallet_service.google import SchemaViolation
from wallet_service.google import class_id
from wallet_service.google import loyalty_class
from wallet_service.google import loyalty_object
from wallet_service.google import object_id
from wallet_service.google import object_patch

MakeClient = Callable[..., GoogleWalletClient]
CLASS = loyalty_class(ISSUER, PROGRAM)
OBJECT = loyalty_object(ISSUER, PROGRAM, CARD)
OID = OBJECT["id"]


@pytest.fixture
def with_class(standin: GoogleWalletStandIn) -> None:
    standin.seed_class(CLASS)


@pytest.fixture
def with_object(standin: GoogleWalletStandIn, with_class: None) -> None:
    standin.seed_object(OBJECT)


def test_token_comes_from_the_files_token_uri_once(client: GoogleWalletClient,
                                                   standin: GoogleWalletStandIn,
                                                   account: ServiceAccount) -> None:
    client.insert_class(CLASS)
    client.get_class(CLASS["id"])
    tokens = standin.token_requests()
    assert len(tokens) == 1
    assert tokens[0].body == {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
    api = standin.api_requests()
    assert [r.status for r in api] == [200, 200]
    assert all(r.headers["authorization"] == f"Bearer {client.credentials.token}" for r in api)
    assert client.credentials.token in standin.tokens
    assert client.service_account_email == account.email


def test_token_endpoint_checks_signature_audience_and_scope(standin: GoogleWalletStandIn,
                                                           tmp_path: Path) -> None:
    # An account whose public key the token endpoint does not know: a forged assertion.
    info, _ = make_service_account_info(standin.token_uri, email="forger@x.iam.gserviceaccount.com")
    _, other_public = make_service_account_info(standin.token_uri)
    standin.register_service_account(info["client_email"], other_public)
    with GoogleWalletClient(credentials=_credentials(info), base_url=standin.url) as client, \
            pytest.raises(GoogleAuthError, match="token endpoint refused"):
        client.get_class(CLASS["id"])
    assert standin.token_requests()[-1].status == 400
    assert standin.api_requests() == []
    # A correct assertion, checked by hand: aud is the token_uri, the scope is the wallet's.
    account = standin.service_account()
    assertion = google_jwt.encode(account.signer(), {
        "iss": account.email, "aud": standin.token_uri, "scope": SCOPE,
        "iat": 1, "exp": 4_000_000_000})
    answer = requests.post(standin.token_uri, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion}, timeout=5)
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"
    wrong_aud = google_jwt.encode(account.signer(), {
        "iss": account.email, "aud": "https://oauth2.googleapis.com/token", "scope": SCOPE,
        "iat": 1, "exp": 4_000_000_000})
    answer = requests.post(standin.token_uri, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": wrong_aud}, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def _credentials(info: dict[str, object]):  # type: ignore[no-untyped-def]
    from wallet_service.google import load_credentials
    return load_credentials(info)


def test_api_requires_a_bearer_token(standin: GoogleWalletStandIn) -> None:
    answer = requests.get(f"{standin.url}/walletobjects/v1/loyaltyClass/{CLASS['id']}", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_expired_token_is_replaced_once(client: GoogleWalletClient, standin: GoogleWalletStandIn,
                                        with_class: None) -> None:
    client.get_class(CLASS["id"])
    standin.tokens.clear()                     # the server forgets it (revoked)
    client.get_class(CLASS["id"])
    assert [r.status for r in standin.api_requests()] == [200, 401, 200]
    assert len(standin.token_requests()) == 2


def test_insert_then_conflict_then_patch(client: GoogleWalletClient,
                                         standin: GoogleWalletStandIn) -> None:
    created = client.insert_class(CLASS)
    assert created["reviewStatus"] == "APPROVED"            # Google approves UNDER_REVIEW
    with pytest.raises(GoogleConflict) as caught:
        client.insert_class(CLASS)
    assert caught.value.status_code == 409
    # Patching an approved class with UNDER_REVIEW works (never send APPROVED, §7.5).
    client.upsert_class({**CLASS, "programName": "New name"})
    assert standin.classes[CLASS["id"]]["programName"] == "New name"

    inserted = client.upsert_object(OBJECT)
    assert inserted["loyaltyPoints"]["balance"] == {"int": 1250}
    client.upsert_object(loyalty_object(ISSUER, PROGRAM, card(balance=99)))
    assert [(r.method, r.status) for r in standin.api_requests()][-3:] == [
        ("POST", 200), ("POST", 409), ("PATCH", 200)]
    fetched = client.get_object(OID)
    assert fetched["loyaltyPoints"]["balance"] == {"int": 99}
    assert fetched["classReference"]["id"] == CLASS["id"]


def test_patch_with_new_balance_keeps_other_fields(client: GoogleWalletClient,
                                                   standin: GoogleWalletStandIn,
                                                   with_object: None) -> None:
    patch = object_patch(PROGRAM, card(balance=1400, tier="Platinum"))
    answer = client.patch_object(OID, patch)
    assert answer["loyaltyPoints"]["balance"] == {"int": 1400}
    assert answer["secondaryLoyaltyPoints"]["balance"] == {"string": "Platinum"}
    stored = standin.objects[OID]
    assert stored["barcode"] == OBJECT["barcode"]                     # untouched (§7.6)
    assert stored["linksModuleData"] == OBJECT["linksModuleData"]
    sent = standin.api_requests()[-1]
    assert sent.method == "PATCH" and sent.body == patch
    assert "notifyPreference" not in sent.body


def test_patch_with_notification(client: GoogleWalletClient, standin: GoogleWalletStandIn,
                                 with_object: None) -> None:
    client.patch_object(OID, object_patch(PROGRAM, card(balance=1)), notify=True)
    sent = standin.api_requests()[-1]
    assert sent.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert "notifyPreference" not in standin.objects[OID]                 # ephemeral
    client.patch_object(OID, object_patch(PROGRAM, card(balance=2), notify=True), notify=False)
    assert "notifyPreference" not in standin.api_requests()[-1].body


def test_get_and_patch_unknown_ids_are_not_found(client: GoogleWalletClient,
                                                 with_class: None) -> None:
    with pytest.raises(GoogleNotFound):
        client.get_object(object_id(ISSUER, "2000000000099"))
    with pytest.raises(GoogleNotFound):
        client.patch_object(object_id(ISSUER, "2000000000099"), object_patch(PROGRAM, CARD))
    with pytest.raises(GoogleNotFound):
        client.get_class(class_id(ISSUER, 999))


def test_add_message_notify_vs_not(client: GoogleWalletClient, standin: GoogleWalletStandIn,
                                   with_object: None) -> None:
    resource = client.add_message(OID, "Welcome", "Thanks for joining", notify=False)
    assert resource["messages"][-1]["messageType"] == "TEXT"
    client.add_message(OID, "Gold!", "You reached Gold", notify=True, message_id="tier-gold")
    message = standin.api_requests()[-1].body["message"]
    assert message == {"id": "tier-gold", "header": "Gold!", "body": "You reached Gold",
                       "messageType": "TEXT_AND_NOTIFY"}
    assert standin.api_requests()[-1].path.endswith(f"/loyaltyObject/{OID}/addMessage")
    ids = [m["id"] for m in standin.objects[OID]["messages"]]
    assert len(ids) == 2 and ids[1] == "tier-gold" and len(ids[0]) == 32


def test_class_message(client: GoogleWalletClient, standin: GoogleWalletStandIn,
                       with_class: None) -> None:
    client.add_class_message(CLASS["id"], "Closed Monday", "Holiday", notify=False)
    assert standin.classes[CLASS["id"]]["messages"][0]["messageType"] == "TEXT"


def test_notifying_calls_over_the_quota_raise_the_typed_error(
        client: GoogleWalletClient, standin: GoogleWalletStandIn, with_object: None,
        sleeps: list[float]) -> None:
    for n in range(3):
        client.patch_object(OID, object_patch(PROGRAM, card(balance=n)), notify=True)
    before = len(standin.api_requests())
    with pytest.raises(NotificationQuotaExceeded) as caught:
        client.add_message(OID, "Hi", "Fourth push today", notify=True)
    assert caught.value.status_code == 403 and caught.value.reason == "quotaExceeded"
    assert len(standin.api_requests()) == before + 1                  # not retried
    assert sleeps == []
    with pytest.raises(NotificationQuotaExceeded):
        client.patch_object(OID, object_patch(PROGRAM, card(balance=9)), notify=True)
    # The fallback: the same change without notification goes through.
    client.add_message(OID, "Hi", "Fourth push today", notify=False)
    client.patch_object(OID, object_patch(PROGRAM, card(balance=9)))
    assert standin.objects[OID]["loyaltyPoints"]["balance"] == {"int": 9}
    assert isinstance(caught.value, GoogleRateLimited)


def test_scripted_quota_on_notifying_call_is_typed_but_rate_limit_is_retried(
        client: GoogleWalletClient, standin: GoogleWalletStandIn, with_object: None,
        sleeps: list[float]) -> None:
    standin.fail(QUOTA_EXCEEDED)
    with pytest.raises(NotificationQuotaExceeded):
        client.add_message(OID, "h", "b", notify=True)
    standin.fail(RATE_LIMITED)
    client.add_message(OID, "h", "b", notify=True)
    assert [r.status for r in standin.api_requests()] == [403, 429, 200]
    assert sleeps == [0.5]


def test_429_and_quota_403_and_503_are_retried_with_backoff(
        client: GoogleWalletClient, standin: GoogleWalletStandIn, with_object: None,
        sleeps: list[float]) -> None:
    standin.fail(RATE_LIMITED, QUOTA_EXCEEDED, BACKEND_ERROR)
    answer = client.patch_object(OID, object_patch(PROGRAM, card(balance=7)))
    assert answer["loyaltyPoints"]["balance"] == {"int": 7}
    assert [r.status for r in standin.api_requests()] == [429, 403, 503, 200]
    assert sleeps == [0.5, 1.0, 2.0]                   # exponential (rng fixed at 1.0)


def test_backoff_has_jitter_and_honours_retry_after(make_client: MakeClient,
                                                    standin: GoogleWalletStandIn,
                                                    with_class: None, sleeps: list[float]) -> None:
    client = make_client(rng=lambda: 0.25, backoff_base=2.0)
    standin.fail(RATE_LIMITED, Failure(429, "rateLimitExceeded", retry_after=3))
    client.get_class(CLASS["id"])
    assert sleeps == [0.5, 3.0]


def test_retries_are_bounded(make_client: MakeClient, standin: GoogleWalletStandIn,
                             with_class: None, sleeps: list[float]) -> None:
    client = make_client(max_attempts=3)
    standin.fail(*[RATE_LIMITED] * 3)
    with pytest.raises(GoogleRateLimited) as caught:
        client.get_class(CLASS["id"])
    assert caught.value.attempts == 3 and not isinstance(caught.value, NotificationQuotaExceeded)
    standin.fail(*[BACKEND_ERROR] * 3)
    with pytest.raises(GoogleUnavailable):
        client.get_class(CLASS["id"])
    assert len(sleeps) == 4


class Budget:
    """A shared request budget that records how each request asked for it."""

    def __init__(self) -> None:
        self.asked: list[bool] = []

    def acquire(self, *, urgent: bool = False) -> None:
        self.asked.append(urgent)


def test_a_waiting_customer_goes_first_and_is_not_kept_waiting(
        make_client: MakeClient, standin: GoogleWalletStandIn, with_class: None,
        sleeps: list[float]) -> None:
    budget = Budget()
    client = make_client(budget=budget)
    client.get_class(CLASS["id"])
    with client.urgent():
        client.get_class(CLASS["id"])
        standin.fail(Failure(503, "backendError", retry_after=20), BACKEND_ERROR, BACKEND_ERROR)
        with pytest.raises(GoogleUnavailable) as caught:
            client.get_class(CLASS["id"])
    assert caught.value.attempts == 2                  # two tries, not five
    assert sleeps == [1.0]                             # and a short pause, whatever Retry-After
    client.get_class(CLASS["id"])                      # background again: the third failure
    assert budget.asked == [False, True, True, True, False, False]
    assert sleeps == [1.0, 0.5]


def test_client_errors_are_not_retried(client: GoogleWalletClient, standin: GoogleWalletStandIn,
                                       with_class: None, sleeps: list[float]) -> None:
    standin.fail(Failure(403, "permissionDenied", "Permission denied."))
    with pytest.raises(GoogleAuthError, match="permissionDenied"):
        client.get_class(CLASS["id"])
    standin.fail(Failure(400, "invalidResource", "Invalid resource ID"))
    with pytest.raises(GoogleInvalidRequest):
        client.get_class(CLASS["id"])
    assert sleeps == []


def test_unreachable_server_is_unavailable(account: ServiceAccount, standin: GoogleWalletStandIn,
                                           sleeps: list[float]) -> None:
    assert account.path is not None
    with GoogleWalletClient.from_service_account_file(
            account.path, base_url="http://127.0.0.1:9", sleep=sleeps, max_attempts=2, rate=1000,
            timeout=(0.5, 0.5)) as client, pytest.raises(GoogleUnavailable, match="no answer"):
        client.get_class(CLASS["id"])
    assert len(sleeps) == 1


def test_payloads_are_validated_before_sending(client: GoogleWalletClient,
                                               standin: GoogleWalletStandIn) -> None:
    with pytest.raises(SchemaViolation, match=r"\$\.programNam"):
        client.insert_class({**CLASS, "programNam": "typo"})
    assert standin.api_requests() == []


def test_standin_rejects_unknown_fields_like_google(make_client: MakeClient,
                                                    standin: GoogleWalletStandIn,
                                                    with_class: None) -> None:
    client = make_client(validate_payloads=False)
    with pytest.raises(GoogleInvalidRequest, match="unknown field 'color'"):
        client.patch_class(CLASS["id"], {"color": "#000000"})
    with pytest.raises(GoogleInvalidRequest, match="UNDER_REVIEW"):
        client.patch_class(CLASS["id"], {"reviewStatus": "APPROVED"})
    with pytest.raises(GoogleInvalidRequest, match="Invalid resource ID"):
        client.insert_object({**OBJECT, "id": "ISSUER.x"})


def test_objects_need_their_class(client: GoogleWalletClient) -> None:
    with pytest.raises(GoogleNotFound, match="Class not found"):
        client.insert_object(OBJECT)


def test_save_url_from_the_client(client: GoogleWalletClient, account: ServiceAccount) -> None:
    url = client.save_url([OID], ["https://cards.example.com"])
    assert url.startswith("https://pay.google.com/gp/v/save/") and len(url) < 1800
