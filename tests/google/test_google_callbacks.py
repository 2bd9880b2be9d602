"""ECv2SigningOnly verification of save/delete callbacks (spec §4.3)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google_helpers import ISSUER
from google_standin import CallbackKeys
from google_standin import GoogleWalletStandIn
from google_standin import callback_message

from wallet_service.google import CallbackRejected
from wallet_service.google import GoogleRootKeys
from wallet_service.google import GoogleUnavailable
from wallet_service.google import RootKey
from wallet_service.google import parse_root_keys
from wallet_service.google import signed_bytes
from wallet_service.google import verify_callback


@pytest.fixture
def now() -> float:
    """The verifier's clock for one test, read when the test starts: it is passed as ``now``,
    and the stand-in's keys (which default to times around the wall clock) agree with it."""
    return time.time()


@pytest.fixture
def now_ms(now: float) -> int:
    return int(now * 1000)


@pytest.fixture(scope="module")
def keys() -> CallbackKeys:
    return CallbackKeys()


def _message(now_ms: int, **changes: object) -> dict[str, object]:
    return {**callback_message(ISSUER, exp_time_ms=now_ms + 60_000, nonce="n-1"), **changes}


def _reason(body: Any, keys: CallbackKeys, now: float, **kwargs: Any) -> str:
    with pytest.raises(CallbackRejected) as caught:
        verify_callback(body, issuer_id=ISSUER, root_keys=keys.root_keys(), now=now, **kwargs)
    assert caught.value.status == 400
    return caught.value.reason


def test_signed_bytes_are_length_prefixed_utf8() -> None:
    assert signed_bytes("ab", "é") == b"\x02\x00\x00\x00ab\x02\x00\x00\x00\xc3\xa9"


def test_valid_callback_is_accepted(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER)
    event = verify_callback(json.dumps(body).encode(), issuer_id=ISSUER,
                            root_keys=keys.root_keys(), now=now)
    assert event.event_type == "save"
    assert event.class_id == f"{ISSUER}.program-1" and event.object_id == f"{ISSUER}.card-1"
    assert event.nonce == "n-1" and event.count == 1
    assert event.exp_time_ms == now_ms + 60_000
    assert event.exp_time == dt.datetime.fromtimestamp((now_ms + 60_000) / 1000, dt.UTC)


def test_documented_spellings_are_accepted_too(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms, eventType="DEL", expTimeMillis=str(now_ms + 1000)),
                     recipient=ISSUER)
    event = verify_callback(body, issuer_id=int(ISSUER), root_keys=keys.root_keys(),
                            now=dt.datetime.fromtimestamp(now, dt.UTC))
    assert event.event_type == "del" and event.exp_time_ms == now_ms + 1000


def test_forged_intermediate_key_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    body = keys.sign(_message(now_ms), recipient=ISSUER, root=forger)
    assert _reason(body, keys, now) == "intermediate_signature"


def test_tampered_signed_key_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER)
    signed_key = json.loads(body["intermediateSigningKey"]["signedKey"])
    signed_key["keyExpiration"] = str(now_ms + 10**10)
    body["intermediateSigningKey"]["signedKey"] = json.dumps(signed_key)
    assert _reason(body, keys, now) == "intermediate_signature"


def test_forged_message_signature_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    body = keys.sign(_message(now_ms), recipient=ISSUER, intermediate=other)
    body["intermediateSigningKey"] = keys.sign(_message(now_ms), recipient=ISSUER)[
        "intermediateSigningKey"]            # a genuine key, but it did not sign this message
    assert _reason(body, keys, now) == "message_signature"


def test_tampered_message_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER)
    body["signedMessage"] = body["signedMessage"].replace('"save"', '"del"')
    assert _reason(body, keys, now) == "message_signature"


def test_wrong_recipient_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    other_issuer = "3388000000099999999"
    body = keys.sign(callback_message(other_issuer, exp_time_ms=now_ms + 60_000),
                     recipient=other_issuer)
    with pytest.raises(CallbackRejected, match=f"not addressed to issuer {ISSUER}") as caught:
        verify_callback(body, issuer_id=ISSUER, root_keys=keys.root_keys(), now=now)
    assert caught.value.reason == "recipient"
    # Signed for us, but naming another issuer's class: refused after verification.
    body = keys.sign(callback_message(other_issuer, exp_time_ms=now_ms + 60_000),
                     recipient=ISSUER)
    assert _reason(body, keys, now) == "recipient"


def test_expired_message_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms, expTimeMillis=now_ms - 1), recipient=ISSUER)
    assert _reason(body, keys, now) == "message_expired"


def test_expired_intermediate_key_is_refused(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER, key_expiration_ms=now_ms - 1)
    assert _reason(body, keys, now) == "key_expired"


def test_other_protocols_and_sender_ids_are_refused(keys: CallbackKeys,
                                                    now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER, protocol="ECv2")
    assert _reason(body, keys, now) == "protocol"
    body = keys.sign(_message(now_ms), recipient=ISSUER, sender="GoogleWalletPasses")
    assert _reason(body, keys, now) == "intermediate_signature"
    event = verify_callback(body, issuer_id=ISSUER, root_keys=keys.root_keys(), now=now,
                            sender_ids=("GooglePayPasses", "GoogleWalletPasses"))
    assert event.nonce == "n-1"


def test_expired_root_keys_are_not_used(keys: CallbackKeys, now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms), recipient=ISSUER)
    expired = [RootKey(k.key_value, key_expiration=now_ms - 1) for k in keys.root_keys()]
    with pytest.raises(CallbackRejected) as caught:
        verify_callback(body, issuer_id=ISSUER, root_keys=expired, now=now)
    assert caught.value.reason == "no_root_keys"


@pytest.mark.parametrize("body", [b"not json", b"[]", {"protocolVersion": "ECv2SigningOnly"},
                                  {"protocolVersion": "ECv2SigningOnly", "signature": "x",
                                   "signedMessage": "{}", "intermediateSigningKey": {}}])
def test_malformed_bodies_are_refused(keys: CallbackKeys, body: object, now: float) -> None:
    assert _reason(body, keys, now) == "malformed"


def test_message_fields_are_checked_after_verification(keys: CallbackKeys,
                                                       now: float, now_ms: int) -> None:
    body = keys.sign(_message(now_ms, eventType="update"), recipient=ISSUER)
    assert _reason(body, keys, now) == "malformed"
    body = keys.sign({"classId": f"{ISSUER}.x"}, recipient=ISSUER)
    assert _reason(body, keys, now) == "malformed"


# -- root keys from the network ---------------------------------------------------------------

@pytest.fixture
def key_server(keys: CallbackKeys) -> Iterator[GoogleWalletStandIn]:
    with GoogleWalletStandIn(root_keys_document=keys.root_keys_document()) as server:
        yield server


def test_root_keys_are_fetched_and_cached(keys: CallbackKeys,
                                          key_server: GoogleWalletStandIn,
                                          now: float, now_ms: int) -> None:
    clock = [now]
    root_keys = GoogleRootKeys(url=key_server.root_keys_url, ttl=600, clock=lambda: clock[0])
    try:
        body = keys.sign(_message(now_ms), recipient=ISSUER)
        for _ in range(3):
            verify_callback(body, issuer_id=ISSUER, root_keys=root_keys, now=now)
        assert len(key_server.requests) == 1
        clock[0] += 601                                     # ttl over: fetched again
        root_keys.keys()
        assert len(key_server.requests) == 2
    finally:
        root_keys.close()


def test_root_key_cache_ends_at_key_expiration(key_server: GoogleWalletStandIn,
                                               now: float, now_ms: int) -> None:
    soon = CallbackKeys(root_expiration_ms=now_ms + 30_000)
    key_server.root_keys_document = soon.root_keys_document()
    root_keys = GoogleRootKeys(url=key_server.root_keys_url, ttl=3600, clock=lambda: now)
    try:
        assert len(root_keys.keys(now)) == 1
        assert len(root_keys.keys(now + 20)) == 1 and len(key_server.requests) == 1
        assert root_keys.keys(now + 31) == []             # expired: fetched again, dropped
        assert len(key_server.requests) == 2
        body = soon.sign(_message(now_ms, expTimeMillis=now_ms + 10**6), recipient=ISSUER)
        with pytest.raises(CallbackRejected) as caught:
            verify_callback(body, issuer_id=ISSUER, root_keys=root_keys, now=now + 31)
        assert caught.value.reason == "no_root_keys"
    finally:
        root_keys.close()


def test_rotated_root_key_is_fetched_once(keys: CallbackKeys,
                                          key_server: GoogleWalletStandIn,
                                          now: float, now_ms: int) -> None:
    root_keys = GoogleRootKeys(url=key_server.root_keys_url, clock=lambda: now,
                               min_refresh_interval=0)
    try:
        root_keys.keys()
        rotated = CallbackKeys()
        key_server.root_keys_document = rotated.root_keys_document()
        body = rotated.sign(_message(now_ms), recipient=ISSUER)
        assert verify_callback(body, issuer_id=ISSUER, root_keys=root_keys, now=now).nonce == "n-1"
        assert len(key_server.requests) == 2
    finally:
        root_keys.close()


def test_unreachable_key_url(key_server: GoogleWalletStandIn, now: float) -> None:
    root_keys = GoogleRootKeys(url=key_server.url + "/missing", clock=lambda: now)
    try:
        with pytest.raises(GoogleUnavailable):
            root_keys.keys()
    finally:
        root_keys.close()


def test_parse_root_keys_skips_bad_entries(keys: CallbackKeys) -> None:
    document = keys.root_keys_document()
    document["keys"].append({"protocolVersion": "ECv2SigningOnly"})
    parsed = parse_root_keys(json.dumps(document))
    assert len(parsed) == 1 and parsed[0].key_expiration == keys.root_expiration_ms
