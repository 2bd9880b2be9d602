"""Pass updates reach phones: outbox → worker → APNs (a local HTTP/2 stand-in that demands
the pass certificate as client certificate), and every outcome is recorded.

The service reaches the stand-in only through its settings (APNs URL and CA bundle).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apns_standin import ApnsStandIn
from apns_standin import Reply
from apple_device import balance_of
from push_support import PASS_TYPE
from push_support import Clock
from push_support import WorkerFactory
from push_support import count
from push_support import register
from push_support import tokens_of
from push_support import worker_env
from sqlalchemy import select

from wallet_service.models import DeliveryJob
from wallet_service.models import Device as DeviceRow
from wallet_service.models import PushAttempt
from wallet_service.models import Registration


@pytest.fixture
def apns(apns_certs):
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE) as standin:
        yield standin


@pytest.fixture
def make_worker(app, apns):
    factory = WorkerFactory(app, apns)
    yield factory
    factory.close()


def test_points_change_pushes_the_device_and_it_fetches_the_new_pass(app, api, client, apns,
                                                                    make_worker):
    member = api.member(api.program()["id"])
    (phone,), tokens = register(app, client, [member])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 42})
    worker = make_worker()
    assert worker.run_once() > 0
    [push] = apns.requests
    assert push.token == phone.push_token
    assert push.method == "POST" and push.path == f"/3/device/{phone.push_token}"
    assert push.headers["apns-topic"] == PASS_TYPE
    assert push.body == b"{}"
    assert "CN=Pass Type ID: " + PASS_TYPE in push.client_subject
    assert phone.sync(tokens) == [member["serial_number"]]
    assert balance_of(phone.passes[member["serial_number"]]) == 42
    assert count(app, DeliveryJob) == 0
    assert count(app, PushAttempt, PushAttempt.outcome == "delivered") == 1
    assert worker.run_once() == 0  # nothing left


# APNs's 410 ``timestamp`` (when it judged the token dead) is given as an offset from the
# device's registration, so the case means the same whenever the test runs.
@pytest.mark.parametrize(("status", "reason", "judged_after_ms", "forgotten"), [
    (410, "Unregistered", 60_000, True),
    (400, "BadDeviceToken", None, True),
    (410, "Unregistered", -60_000, False),  # the device registered after that
])
def test_dead_tokens_remove_the_registration(app, api, client, apns, make_worker, status, reason,
                                             judged_after_ms, forgotten):
    member = api.member(api.program()["id"])
    (phone,), _ = register(app, client, [member])
    timestamp = None
    if judged_after_ms is not None:
        with app.extensions["wallet"].sessions() as s:
            registered = s.scalars(select(DeviceRow.updated_at)).one()
        timestamp = int(registered.timestamp() * 1000) + judged_after_ms
    reply = Reply(status, reason, timestamp=timestamp)
    apns.script(phone.push_token, reply)
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    make_worker().run_once()
    assert count(app, Registration) == (0 if forgotten else 1)
    assert count(app, DeviceRow) == (0 if forgotten else 1)
    assert count(app, DeliveryJob) == 0
    with app.extensions["wallet"].sessions() as s:
        attempt = s.scalars(select(PushAttempt)).one()
    assert (attempt.status, attempt.reason, attempt.outcome) == (reply.status, reply.reason,
                                                                 "invalid_token")


@pytest.mark.parametrize("reply", [Reply(429, "TooManyRequests"), Reply(503, "ServiceUnavailable")])
def test_throttling_and_server_errors_retry_with_backoff(app, api, client, apns, make_worker, reply):
    member = api.member(api.program()["id"])
    (phone,), _ = register(app, client, [member])
    apns.script(phone.push_token, reply, reply)
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    clock = Clock()
    worker = make_worker(clock=clock)
    worker.run_once()
    with app.extensions["wallet"].sessions() as s:
        job = s.scalars(select(DeliveryJob)).one()
    assert job.status == "pending" and job.attempts == 1 and job.last_error.startswith(str(reply.status))
    assert job.available_at > clock.now - dt.timedelta(seconds=1)
    assert worker.run_once() == 0  # not due yet
    clock.now += dt.timedelta(minutes=20)
    worker.run_once()  # second scripted failure
    clock.now += dt.timedelta(minutes=20)
    worker.run_once()  # then the default 200
    assert [r.status for r in apns.requests] == [reply.status, reply.status, 200]
    assert count(app, DeliveryJob) == 0
    assert count(app, Registration) == 1


def test_credential_errors_are_not_retried_and_stay_visible(app, api, client, apns, make_worker):
    member = api.member(api.program()["id"])
    (phone,), _ = register(app, client, [member])
    apns.script(phone.push_token, Reply(403, "BadCertificate"))
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    clock = Clock()
    worker = make_worker(clock=clock)
    worker.run_once()
    clock.now += dt.timedelta(hours=2)
    worker.run_once()
    assert len(apns.requests) == 1
    with app.extensions["wallet"].sessions() as s:
        job = s.scalars(select(DeliveryJob)).one()
    assert job.status == "failed" and "BadCertificate" in job.last_error


def test_gives_up_after_max_attempts(app, api, client, apns, make_worker):
    member = api.member(api.program()["id"])
    (phone,), _ = register(app, client, [member])
    apns.script(phone.push_token, *[Reply(503, "ServiceUnavailable")] * 5)
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    clock = Clock()
    worker = make_worker(clock=clock, push_max_attempts=3)
    for _ in range(5):
        worker.run_once()
        clock.now += dt.timedelta(hours=1)
    assert len(apns.requests) == 3
    with app.extensions["wallet"].sessions() as s:
        assert s.scalars(select(DeliveryJob.status)).one() == "failed"


def test_workers_share_the_queue_without_double_sends(app, api, client, apns, make_worker):
    member = api.member(api.program()["id"])
    register(app, client, [member], n_devices=60)
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    workers = [make_worker() for _ in range(3)]
    workers[0].sequence()
    done = threading.Barrier(3)

    def go(w):
        done.wait()
        while w.deliver():
            pass

    threads = [threading.Thread(target=go, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens = [r.token for r in apns.requests]
    assert len(tokens) == 60 and len(set(tokens)) == 60


def test_killed_worker_loses_no_push(app, api, client, apns_certs):
    """Kill the worker process in the middle of a large fan-out, start a new one: every
    registered device still gets its push."""
    devices = 1500
    member = api.member(api.program()["id"])
    tokens = tokens_of(app)
    serial = member["serial_number"]
    # Register the devices straight through the protocol endpoint, quickly.
    for d in range(devices):
        r = client.post(f"/apple/v1/devices/lib-{d}/registrations/{PASS_TYPE}/{serial}",
                        json={"pushToken": f"{d:064x}"},
                        headers={"Authorization": f"ApplePass {tokens[serial]}"})
        assert r.status_code == 201
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 5})

    slow = Reply(200, delay=0.02)
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE, default_reply=slow,
                     max_concurrent_streams=50) as standin:
        env = worker_env(app, standin, lease=2.0)
        exe = [sys.executable, "-m", "wallet_service.cli", "worker"]
        log_path = Path(os.environ.get("WALLET_TEST_WORKER_LOG", os.devnull))
        with log_path.open("ab") as log:
            first = subprocess.Popen(exe, env=env, stderr=log)
        deadline = time.monotonic() + 60
        while len(standin.requests) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(standin.requests) >= 200, "the worker never started pushing"
        first.send_signal(signal.SIGKILL)
        first.wait()
        partial = {r.token for r in standin.requests}
        assert len(partial) < devices, "the fan-out finished before the kill"

        second = subprocess.Popen(exe, env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if len({r.token for r in standin.requests if r.status == 200}) == devices:
                    break
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=30)
        assert second.returncode == 0, err.decode()
        delivered = {r.token for r in standin.requests if r.status == 200}
        assert delivered == {f"{d:064x}" for d in range(devices)}
    assert count(app, DeliveryJob) == 0


def test_worker_runs_the_daily_automations_once_a_day(app, api, make_worker):
    program = api.program(bonuses={"birthday": 50})
    member = api.member(program["id"], birthday="1990-02-28")
    clock = Clock()
    clock.now = dt.datetime(2027, 2, 28, 9, 0, tzinfo=dt.UTC)
    worker = make_worker(clock=clock)
    worker.run_once()
    worker.run_once()
    assert api.get(f"/members/{member['id']}").json["balance"] == 50
    worker2 = make_worker(clock=clock)  # another worker, or a restart, the same day
    worker2.run_once()
    assert api.get(f"/members/{member['id']}").json["balance"] == 50
    clock.now += dt.timedelta(days=365)
    worker.run_once()
    assert api.get(f"/members/{member['id']}").json["balance"] == 100
