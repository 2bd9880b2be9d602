"""``ApnsPushClient`` against the APNs stand-in: real TLS, real HTTP/2 (spec §4)."""

from __future__ import annotations

import collections
import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest
from apns_standin import ApnsStandIn
from apns_standin import Reply
from apns_standin import StandInCertificates
from apns_standin import make_p8_key
from push_helpers import TOPIC
from push_helpers import tokens

from wallet_service.errors import ConfigurationError
from wallet_service.push import ApnsPushClient
from wallet_service.push import CertificateAuth
from wallet_service.push import Outcome
from wallet_service.push import TokenAuth
from wallet_service.push._apns import _failure_outcome

StandInFactory = Callable[..., ApnsStandIn]
ClientFactory = Callable[..., ApnsPushClient]


def test_200_is_delivered(client: ApnsPushClient, standin: ApnsStandIn) -> None:
    [token] = tokens(1)
    [result] = client.send([token])
    assert result.token == token
    assert (result.status, result.reason, result.timestamp) == (200, None, None)
    assert result.outcome is Outcome.DELIVERED
    assert result.apns_id == standin.requests[0].headers.get("apns-id", result.apns_id)
    assert result.apns_id and len(result.apns_id) == 36


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply(400, "BadDeviceToken"), Outcome.INVALID_TOKEN),
        (Reply(400, "DeviceTokenNotForTopic"), Outcome.INVALID_TOKEN),
        (Reply(410, "Unregistered", timestamp=1_700_000_123_456), Outcome.INVALID_TOKEN),
        (Reply(410, "ExpiredToken", timestamp=1_700_000_000_000), Outcome.INVALID_TOKEN),
        (Reply(429, "TooManyRequests"), Outcome.RETRY),
        (Reply(500, "InternalServerError"), Outcome.RETRY),
        (Reply(503, "ServiceUnavailable"), Outcome.RETRY),
        (Reply(403, "BadCertificate"), Outcome.FAILED),
        (Reply(400, "TopicDisallowed"), Outcome.FAILED),
    ],
)
def test_apns_errors_are_classified(
    client: ApnsPushClient, standin: ApnsStandIn, reply: Reply, outcome: Outcome
) -> None:
    [token] = tokens(1)
    standin.script(token, reply)
    [result] = client.send([token])
    assert (result.status, result.reason, result.timestamp) == (
        reply.status, reply.reason, reply.timestamp
    )
    assert result.outcome is outcome
    assert result.apns_id


def test_results_follow_token_order_in_a_mixed_batch(
    client: ApnsPushClient, standin: ApnsStandIn
) -> None:
    batch = tokens(60)
    script = {
        batch[3]: Reply(410, "Unregistered", timestamp=5),
        batch[17]: Reply(429, "TooManyRequests"),
        batch[40]: Reply(400, "BadDeviceToken"),
        batch[59]: Reply(503, "ServiceUnavailable"),
    }
    for token, reply in script.items():
        standin.script(token, reply)
    results = client.send(batch)
    assert [r.token for r in results] == batch
    for token, result in zip(batch, results, strict=True):
        expected = script.get(token, Reply(200))
        assert (result.status, result.reason) == (expected.status, expected.reason)


def test_request_is_exactly_as_spec_4_3(
    client_factory: ClientFactory, standin: ApnsStandIn, certs: StandInCertificates
) -> None:
    client = client_factory(standin, clock=lambda: 1_700_000_000.9, expiration=3 * 86400)
    [token] = tokens(1)
    client.send([token])
    [request] = standin.requests
    assert request.method == "POST"
    assert request.path == f"/3/device/{token}"
    assert request.token == token
    assert request.body == b"{}"
    assert request.headers["apns-topic"] == TOPIC
    assert request.headers["apns-expiration"] == str(1_700_000_000 + 3 * 86400)
    assert set(request.header_names) == {
        ":method", ":scheme", ":authority", ":path",
        "apns-topic", "apns-expiration", "content-length",
    }
    assert request.headers["content-length"] == "2"
    assert "apns-push-type" not in request.headers
    assert "apns-priority" not in request.headers
    assert "authorization" not in request.headers
    assert request.client_subject == certs.client_subject


def test_default_expiration_is_seven_days(client: ApnsPushClient, standin: ApnsStandIn) -> None:
    before = int(time.time())
    client.send(tokens(1))
    expiration = int(standin.requests[0].headers["apns-expiration"])
    assert before + 7 * 86400 <= expiration <= int(time.time()) + 7 * 86400


def test_one_connection_carries_many_concurrent_streams(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    # Each answer takes 0.2 s: 500 pushes one after another would take 100 s.
    standin = standin_factory(default_reply=Reply(200, delay=0.2))
    client = client_factory(standin)
    batch = tokens(500)
    started = time.monotonic()
    results = client.send(batch)
    elapsed = time.monotonic() - started
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert standin.connections_accepted == 1
    assert sorted(r.token for r in standin.requests) == sorted(batch)
    assert standin.peak_streams >= 100
    assert elapsed < 10
    assert {r.connection for r in standin.requests} == {1}
    # the connection is long-lived: later batches reuse it
    client.send(tokens(50, prefix="b"))
    assert standin.connections_accepted == 1


def test_server_max_concurrent_streams_is_respected(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    standin = standin_factory(max_concurrent_streams=7, default_reply=Reply(200, delay=0.02))
    client = client_factory(standin)
    results = client.send(tokens(200))
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert standin.protocol_errors == []
    assert standin.peak_streams == 7


def test_client_max_streams_caps_concurrency(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    standin = standin_factory(default_reply=Reply(200, delay=0.02))
    client = client_factory(standin, max_streams=3)
    assert all(r.status == 200 for r in client.send(tokens(60)))
    assert standin.peak_streams == 3


@pytest.mark.parametrize("goaway_after", [10, 37, 100])
def test_goaway_mid_batch_delivers_every_push_exactly_once(
    client_factory: ClientFactory, standin_factory: StandInFactory, goaway_after: int
) -> None:
    standin = standin_factory(goaway_after=goaway_after)
    client = client_factory(standin)
    batch = tokens(500)
    results = client.send(batch)
    assert [r.token for r in results] == batch
    assert all(r.outcome is Outcome.DELIVERED for r in results), collections.Counter(
        (r.status, r.reason) for r in results
    )
    seen = collections.Counter(r.token for r in standin.requests)
    assert seen == collections.Counter(batch)  # processed exactly once each
    assert standin.connections_accepted >= 500 // goaway_after
    assert standin.protocol_errors == []
    # and the client keeps working on a fresh connection afterwards
    assert client.send(tokens(3, prefix="c"))[0].outcome is Outcome.DELIVERED


def test_goaway_with_slow_answers_finishes_streams_below_last_stream_id(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    # The GOAWAY arrives while the streams up to last-stream-id are still unanswered.
    standin = standin_factory(goaway_after=50, default_reply=Reply(200, delay=0.05))
    client = client_factory(standin)
    batch = tokens(300)
    results = client.send(batch)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert collections.Counter(r.token for r in standin.requests) == collections.Counter(batch)


def test_reconnects_after_the_connection_drops(
    client: ApnsPushClient, standin: ApnsStandIn
) -> None:
    assert client.send(tokens(5))[0].status == 200
    standin.drop_connections()
    time.sleep(0.05)
    results = client.send(tokens(5, prefix="b"))
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert standin.connections_accepted == 2


def test_in_flight_pushes_on_a_dropped_connection_are_retry(
    client: ApnsPushClient, standin: ApnsStandIn
) -> None:
    [slow] = tokens(1)
    standin.script(slow, Reply(200, delay=5))
    threading.Timer(0.3, standin.drop_connections).start()
    started = time.monotonic()
    [result] = client.send([slow])
    assert time.monotonic() - started < 3
    assert result.status is None and result.outcome is Outcome.RETRY
    assert result.reason and result.reason.startswith("connection lost")


def test_batch_timeout_reports_unanswered_pushes_as_retry(
    client_factory: ClientFactory, standin: ApnsStandIn
) -> None:
    client = client_factory(standin, timeout=0.5)
    batch = tokens(10)
    standin.script(batch[4], Reply(200, delay=3))
    started = time.monotonic()
    results = client.send(batch)
    assert time.monotonic() - started < 2
    assert (results[4].status, results[4].reason, results[4].outcome) == (
        None, "timeout", Outcome.RETRY
    )
    assert all(r.status == 200 for i, r in enumerate(results) if i != 4)
    # the connection survives a timed-out stream
    assert client.send(tokens(2, prefix="b"))[0].status == 200
    assert standin.connections_accepted == 1


def test_missing_client_certificate_is_refused(
    client_factory: ClientFactory, standin: ApnsStandIn
) -> None:
    pem, _ = make_p8_key()
    client = client_factory(standin, auth=TokenAuth(key_id="K", team_id="T", private_key=pem))
    started = time.monotonic()
    results = client.send(tokens(3))
    assert time.monotonic() - started < 5
    assert all(r.status is None for r in results)
    # A TLS 1.3 server rejects the certificate after the client's handshake has finished;
    # whether the alert or just the close reaches the client decides FAILED or RETRY.
    assert all(r.outcome in (Outcome.FAILED, Outcome.RETRY) for r in results)
    assert all("CERTIFICATE" in (r.reason or "").upper() for r in results), results
    assert standin.requests == []


def test_client_certificate_from_another_ca_is_refused(
    client_factory: ClientFactory, standin: ApnsStandIn, other_certs: StandInCertificates
) -> None:
    auth = CertificateAuth(certificate=other_certs.client_cert_pem,
                           private_key=other_certs.client_key_pem)
    client = client_factory(standin, auth=auth)
    results = client.send(tokens(3))
    assert all(r.status is None for r in results)
    assert all(r.outcome in (Outcome.FAILED, Outcome.RETRY) for r in results)
    assert standin.requests == []
    # the same client keeps failing cleanly instead of hanging
    started = time.monotonic()
    assert client.send(tokens(1))[0].status is None
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), Outcome.FAILED),
        (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert"), Outcome.FAILED),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"),
         Outcome.FAILED),
        (ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] bad certificate"), Outcome.FAILED),
        (ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF"), Outcome.RETRY),
        (ConnectionRefusedError(111, "refused"), Outcome.RETRY),
        (TimeoutError(), Outcome.RETRY),
        (None, Outcome.RETRY),
    ],
)
def test_tls_certificate_rejections_are_configuration_failures(
    error: BaseException | None, outcome: Outcome
) -> None:
    assert _failure_outcome(error) is outcome


def test_untrusted_server_certificate_fails(
    client_factory: ClientFactory, standin: ApnsStandIn, other_certs: StandInCertificates
) -> None:
    client = client_factory(standin, ca_file=other_certs.ca_file)
    [result] = client.send(tokens(1))
    assert result.status is None and result.outcome is Outcome.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in (result.reason or "")
    assert standin.requests == []


def test_connection_refused_is_retry(client_factory: ClientFactory,
                                     standin: ApnsStandIn) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_factory(standin, base_url=f"https://127.0.0.1:{port}")
    results = client.send(tokens(2))
    assert all(r.status is None and r.outcome is Outcome.RETRY for r in results)


def test_silent_server_hits_the_connect_timeout(client_factory: ClientFactory,
                                                standin: ApnsStandIn) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP, never speaks TLS
        port = silent.getsockname()[1]
        client = client_factory(standin, base_url=f"https://127.0.0.1:{port}",
                                connect_timeout=0.5)
        started = time.monotonic()
        [result] = client.send(tokens(1))
        assert time.monotonic() - started < 3
        client.close()
    assert (result.status, result.outcome) == (None, Outcome.RETRY)
    assert result.reason == "connect failed: connect timeout"


def test_malformed_token_is_never_sent(client: ApnsPushClient, standin: ApnsStandIn) -> None:
    good = tokens(1)[0]
    results = client.send(["../../admin", good, ""])
    assert [r.outcome for r in results] == [
        Outcome.INVALID_TOKEN, Outcome.DELIVERED, Outcome.INVALID_TOKEN
    ]
    assert [r.token for r in standin.requests] == [good]


def test_token_auth_with_a_p8_key(
    client_factory: ClientFactory, standin_factory: StandInFactory, certs: StandInCertificates
) -> None:
    pem, public_key = make_p8_key()
    standin = standin_factory(jwt_public_key=public_key, key_id="KEY1234567",
                              team_id="TEAM123456")
    auth = TokenAuth(key_id="KEY1234567", team_id="TEAM123456", private_key=pem)
    client = client_factory(standin, auth=auth)
    batch = tokens(300)
    results = client.send(batch)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert standin.connections_accepted == 1
    assert len(standin.jwts) == 1  # one cached JWT for every request
    request = standin.requests[0]
    assert request.headers["authorization"].startswith("bearer ")
    assert request.headers["apns-topic"] == TOPIC
    assert request.client_subject is None


def test_token_auth_with_a_foreign_key_fails(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    _, public_key = make_p8_key()
    other_pem, _ = make_p8_key()
    standin = standin_factory(jwt_public_key=public_key)
    client = client_factory(standin, auth=TokenAuth(key_id="K", team_id="T",
                                                    private_key=other_pem))
    results = client.send(tokens(3))
    assert {(r.status, r.reason, r.outcome) for r in results} == {
        (403, "InvalidProviderToken", Outcome.FAILED)
    }


def test_expired_provider_token_mints_a_new_jwt(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    pem, public_key = make_p8_key()
    standin = standin_factory(jwt_public_key=public_key)
    client = client_factory(standin, auth=TokenAuth(key_id="K", team_id="T", private_key=pem))
    [token] = tokens(1)
    standin.script(token, Reply(403, "ExpiredProviderToken"))
    [first] = client.send([token])
    assert first.outcome is Outcome.RETRY
    [second] = client.send([token])
    assert second.outcome is Outcome.DELIVERED
    assert len(standin.jwts) == 2


def test_send_from_many_threads_shares_one_connection(
    client: ApnsPushClient, standin: ApnsStandIn
) -> None:
    outcomes: list[list[Outcome]] = []

    def work(prefix: str) -> None:
        outcomes.append([r.outcome for r in client.send(tokens(250, prefix=prefix))])

    threads = [threading.Thread(target=work, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4
    assert all(o is Outcome.DELIVERED for batch in outcomes for o in batch)
    assert len(standin.requests) == 1000
    assert standin.connections_accepted == 1


def test_a_large_batch_spreads_over_several_connections(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    # 20 streams per connection and slow answers: one connection would carry 20 at a time.
    standin = standin_factory(max_concurrent_streams=20, default_reply=Reply(200, delay=0.05))
    client = client_factory(standin, connections=3)
    batch = tokens(300)
    results = client.send(batch)
    assert [r.token for r in results] == batch
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert collections.Counter(r.token for r in standin.requests) == dict.fromkeys(batch, 1)
    assert standin.connections_accepted == 3  # and no more than allowed
    assert len({r.connection for r in standin.requests}) == 3
    assert standin.protocol_errors == []


def test_a_small_batch_keeps_to_one_connection(
    client_factory: ClientFactory, standin_factory: StandInFactory
) -> None:
    standin = standin_factory(max_concurrent_streams=20)
    client = client_factory(standin, connections=3)
    for _ in range(3):
        assert all(r.outcome is Outcome.DELIVERED for r in client.send(tokens(8)))
    assert standin.connections_accepted == 1


def test_connections_must_be_at_least_one(certs: StandInCertificates) -> None:
    with pytest.raises(ConfigurationError):
        ApnsPushClient(topic=TOPIC, connections=0, auth=CertificateAuth(
            certificate=certs.client_cert, private_key=certs.client_key))


def test_close_is_idempotent_and_final(client: ApnsPushClient) -> None:
    assert client.send(tokens(1))[0].status == 200
    client.close()
    client.close()
    assert not [t for t in threading.enumerate() if t.name == "apns-push"]
    with pytest.raises(RuntimeError):
        client.send(tokens(1))


def test_empty_batch_opens_nothing(client: ApnsPushClient, standin: ApnsStandIn) -> None:
    assert client.send([]) == []
    assert standin.connections_accepted == 0
