"""``classify``, ``backoff_delay``, ``PushResult`` and the fake clients (spec §4.4)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from push_helpers import tokens

from wallet_service.push import NullPushClient
from wallet_service.push import Outcome
from wallet_service.push import PushClient
from wallet_service.push import PushResult
from wallet_service.push import RecordingPushClient
from wallet_service.push import backoff_delay
from wallet_service.push import classify


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (200, None, Outcome.DELIVERED),
        # dead tokens: delete the registration
        (400, "BadDeviceToken", Outcome.INVALID_TOKEN),
        (400, "DeviceTokenNotForTopic", Outcome.INVALID_TOKEN),
        (410, "Unregistered", Outcome.INVALID_TOKEN),
        (410, "ExpiredToken", Outcome.INVALID_TOKEN),
        (410, None, Outcome.INVALID_TOKEN),
        # transient: back off and retry
        (429, "TooManyRequests", Outcome.RETRY),
        (429, "TooManyProviderTokenUpdates", Outcome.RETRY),
        (500, "InternalServerError", Outcome.RETRY),
        (503, "ServiceUnavailable", Outcome.RETRY),
        (503, "Shutdown", Outcome.RETRY),
        (403, "ExpiredProviderToken", Outcome.RETRY),
        (None, None, Outcome.RETRY),
        (None, "connection lost", Outcome.RETRY),
        # configuration and credentials: tell an operator
        (403, "BadCertificate", Outcome.FAILED),
        (403, "BadCertificateEnvironment", Outcome.FAILED),
        (403, "InvalidProviderToken", Outcome.FAILED),
        (403, "MissingProviderToken", Outcome.FAILED),
        (403, "Forbidden", Outcome.FAILED),
        (400, "TopicDisallowed", Outcome.FAILED),
        (400, "BadTopic", Outcome.FAILED),
        (400, "MissingTopic", Outcome.FAILED),
        # request bugs
        (400, "BadExpirationDate", Outcome.FAILED),
        (400, "BadPriority", Outcome.FAILED),
        (400, "PayloadEmpty", Outcome.FAILED),
        (400, None, Outcome.FAILED),
        (404, "BadPath", Outcome.FAILED),
        (405, "MethodNotAllowed", Outcome.FAILED),
        (413, "PayloadTooLarge", Outcome.FAILED),
    ],
)
def test_classify(status: int | None, reason: str | None, outcome: Outcome) -> None:
    assert classify(status, reason) is outcome


class _FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 10, 30, 1023, 1024, 10**6])
def test_backoff_delay_stays_within_full_jitter_bounds(attempt: int) -> None:
    base, cap = 0.5, 60.0
    ceiling = cap if attempt > 20 else min(cap, base * 2**attempt)
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, base=base, cap=cap, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # full jitter: spread over the whole interval, not clustered at the top
    assert min(delays) < 0.1 * ceiling
    assert max(delays) > 0.9 * ceiling


def test_backoff_delay_is_exponential_then_capped() -> None:
    top = _FixedRandom(1.0)
    assert [backoff_delay(a, base=1.0, cap=10.0, rng=top) for a in range(6)] == [
        1.0, 2.0, 4.0, 8.0, 10.0, 10.0,
    ]
    assert backoff_delay(3, base=1.0, cap=10.0, rng=_FixedRandom(0.0)) == 0.0
    assert backoff_delay(3, base=1.0, cap=10.0, rng=_FixedRandom(0.25)) == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempt": -1, "base": 1.0, "cap": 1.0},
        {"attempt": 0, "base": 0.0, "cap": 1.0},
        {"attempt": 0, "base": 1.0, "cap": -1.0},
    ],
)
def test_backoff_delay_rejects_bad_arguments(kwargs: dict[str, float]) -> None:
    attempt = int(kwargs.pop("attempt"))
    with pytest.raises(ValueError):
        backoff_delay(attempt, rng=random.Random(0), **kwargs)


def test_push_result_is_frozen() -> None:
    result = PushResult("ab", 200, None, "id", None, Outcome.DELIVERED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = 500  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(PushResult)] == [
        "token", "status", "reason", "apns_id", "timestamp", "outcome",
    ]


@pytest.mark.parametrize("make", [NullPushClient, RecordingPushClient])
def test_contract_every_client_answers_each_token_in_order(make: type) -> None:
    client = make()
    assert isinstance(client, PushClient)
    batch = tokens(5)
    results = client.send(batch)
    assert [r.token for r in results] == batch
    assert all(r.outcome is Outcome.DELIVERED and r.status == 200 for r in results)
    assert client.send([]) == []
    client.close()


def test_recording_client_records_and_follows_its_script() -> None:
    client = RecordingPushClient(timestamp=1_700_000_000_000)
    dead, busy, odd = tokens(3)
    client.script(dead, Outcome.INVALID_TOKEN)
    client.script(busy, (429, "TooManyRequests"), Outcome.DELIVERED)
    client.script(odd, PushResult(odd, 403, "BadCertificate", None, None, Outcome.FAILED))

    first = client.send([dead, busy, odd])
    second = client.send([dead, busy])

    assert [(r.status, r.reason, r.outcome) for r in first] == [
        (410, "Unregistered", Outcome.INVALID_TOKEN),
        (429, "TooManyRequests", Outcome.RETRY),
        (403, "BadCertificate", Outcome.FAILED),
    ]
    assert first[0].timestamp == 1_700_000_000_000
    assert [r.outcome for r in second] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert client.batches == [[dead, busy, odd], [dead, busy]]
    assert client.tokens == [dead, busy, odd, dead, busy]
    client.close()
    with pytest.raises(RuntimeError):
        client.send([dead])


def test_recording_client_default_reply() -> None:
    client = RecordingPushClient(default=(503, "ServiceUnavailable"))
    [result] = client.send(tokens(1))
    assert (result.status, result.outcome) == (503, Outcome.RETRY)
