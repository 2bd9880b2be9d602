"""Pushes go out as soon as a card changes, bursts still coalesce, and a large fan-out keeps
the APNs connections busy: leading and trailing edge per device, a commit that wakes the
worker (PostgreSQL NOTIFY, or the doorbell `serve` gives its worker on SQLite), and
set-based delivery for thousands of devices."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from apns_standin import ApnsStandIn
from apple_device import balance_of
from push_support import PASS_TYPE
from push_support import Clock
from push_support import WorkerFactory
from push_support import count
from push_support import register
from push_support import tokens_of
from push_support import worker_env
from serve_support import free_port
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from wallet_service.models import CardChange
from wallet_service.models import CardUpdateTag
from wallet_service.models import DeliveryJob
from wallet_service.models import Device as DeviceRow
from wallet_service.models import LoyaltyCard
from wallet_service.models import Member
from wallet_service.models import Registration
from wallet_service.models import SignedPass
from wallet_service.services.apple import PassFactory
from wallet_service.services.wake import wake_workers
from wallet_service.wakeup import Doorbell
from wallet_service.wakeup import Notifier
from wallet_service.wakeup import PostgresListener
from wallet_service.wakeup import ring_after_commit


@pytest.fixture
def apns(apns_certs):
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE) as standin:
        yield standin


@pytest.fixture
def make_worker(app, apns):
    factory = WorkerFactory(app, apns)
    yield factory
    factory.close()


def wait_for(condition, seconds=10.0, step=0.005):
    """Poll ``condition`` until it is true or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(step)
    return value


def earn(api, member, points=1):
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": points})


def test_a_quiet_card_is_pushed_at_once_and_changes_after_it_wait_for_the_window(
        app, api, client, apns, make_worker):
    member = api.member(api.program()["id"])
    (phone,), tokens = register(app, client, [member])
    clock = Clock()
    worker = make_worker(clock=clock, push_debounce_seconds=1.0)
    earn(api, member)
    worker.run_once()  # the worker's clock has not moved: no window had to pass
    assert [r.token for r in apns.requests] == [phone.push_token]
    earn(api, member)
    earn(api, member)
    worker.run_once()
    assert len(apns.requests) == 1  # pushed within the window: these wait for its end
    clock.now += dt.timedelta(seconds=1)
    worker.run_once()
    assert len(apns.requests) == 2  # one trailing push for both
    assert phone.sync(tokens) == [member["serial_number"]]
    assert balance_of(phone.passes[member["serial_number"]]) == 3
    clock.now += dt.timedelta(seconds=5)
    worker.run_once()
    assert len(apns.requests) == 2
    assert count(app, DeliveryJob) == 0  # nothing is kept once the window is over
    earn(api, member)  # quiet again: at once
    worker.run_once()
    assert len(apns.requests) == 3


def test_a_burst_on_one_card_gives_at_most_two_pushes_per_device(
        app, api, client, apns, make_worker):
    member = api.member(api.program()["id"])
    phones, tokens = register(app, client, [member], n_devices=3)
    # The worker's clock is injected and moved by the test: how fast this machine posts the
    # changes cannot stretch the burst over two windows.
    clock = Clock()
    worker = make_worker(clock=clock, push_debounce_seconds=1.0, worker_poll_seconds=0.02)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    try:
        for _ in range(10):  # ten earns within 0.8 s of the worker's clock
            earn(api, member)
            clock.now += dt.timedelta(seconds=0.08)
        # The leading push reaches every device while the window is still open.
        assert wait_for(lambda: {r.token for r in apns.requests} >= {p.push_token for p in phones})
        assert wait_for(lambda: count(app, CardChange) == 0)
        clock.now += dt.timedelta(seconds=1.5)  # the window closes: the trailing push is due
        assert wait_for(lambda: count(app, DeliveryJob, DeliveryJob.status != "sent") == 0)
    finally:
        stop.set()
        runner.join()
    clock.now += dt.timedelta(minutes=5)
    worker.run_once()  # would another round of pushes follow?
    per_device = Counter(r.token for r in apns.requests)
    assert set(per_device) == {p.push_token for p in phones}
    assert all(1 <= n <= 2 for n in per_device.values()), per_device
    for phone in phones:  # and none of them misses the last change
        phone.sync(tokens)
        assert balance_of(phone.passes[member["serial_number"]]) == 10


def _assert_woken_within(app, api, client, apns, worker, seconds, ready=lambda: True):
    """With ``worker`` running and idle (``ready``), an earn on a quiet card is at APNs
    within ``seconds``, though the worker polls far less often and holds changes after the
    first for a longer window (callers set both well above ``seconds``, so only a woken
    worker's leading-edge push passes, even on a busy machine)."""
    member = api.member(api.program()["id"], phone="+79120000777")
    (phone,), _ = register(app, client, [member], prefix="wake")
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    try:
        assert wait_for(lambda: worker.passes >= 1 and ready(), step=0.02)
        start = time.monotonic()
        earn(api, member)
        assert wait_for(lambda: apns.requests, seconds=5), "the worker was not woken"
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert [r.token for r in apns.requests] == [phone.push_token]
    assert elapsed < seconds, f"pushed {elapsed:.3f} s after the earn"


def _listening(app):
    with app.extensions["wallet"].engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = 'LISTEN wallet_changes' AND pid <> pg_backend_pid()"))


def test_on_postgresql_a_commit_wakes_a_waiting_worker(app, api, client, apns, make_worker):
    if app.extensions["wallet"].engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite's worker has the doorbell")
    listener = PostgresListener(app.extensions["wallet"].settings.database_url)
    worker = make_worker(push_debounce_seconds=5.0, worker_poll_seconds=60,
                         wakeups=[listener])
    _assert_woken_within(app, api, client, apns, worker, 2.0, ready=lambda: _listening(app))
    assert wait_for(lambda: not _listening(app), seconds=5)  # its connection is closed


def test_on_postgresql_the_wake_up_follows_the_commit_and_never_a_rollback(app, api,
                                                                         monkeypatch):
    """The writing transaction sends no NOTIFY (PostgreSQL would serialize the commits of
    all notifying transactions, WAL flush included): the process notifies once it has
    committed, on a connection of its own, and not at all after a rollback."""
    state = app.extensions["wallet"]
    if state.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite's worker has the doorbell")
    member = api.member(api.program()["id"])
    listener = PostgresListener(state.settings.database_url)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.upper())

    try:
        assert listener.wait(0)  # connects and listens
        with state.sessions() as session:
            session.execute(insert(CardChange).values(
                card_id=session.scalar(select(LoyaltyCard.id)), version=1,
                created_at=dt.datetime.now(dt.UTC)))
            wake_workers(session)
            session.rollback()
        assert not listener.wait(0.5)
        def committed(conn):
            statements.append("COMMIT")

        connection = Notifier._connection

        def notifying(self):
            statements.append("NOTIFY")  # on a connection of the notifier's own
            return connection(self)

        event.listen(state.engine, "before_cursor_execute", seen)
        event.listen(state.engine, "commit", committed)
        monkeypatch.setattr(Notifier, "_connection", notifying)
        earn(api, member)
        monkeypatch.undo()
        event.remove(state.engine, "before_cursor_execute", seen)
        event.remove(state.engine, "commit", committed)
        notifying = [i for i, st in enumerate(statements) if "NOTIFY" in st]
        assert notifying == [len(statements) - 1], statements
        assert statements[:-1].count("COMMIT") == 1 and statements[-2] == "COMMIT"
        assert listener.wait(2.0)
    finally:
        listener.close()


def test_concurrent_wake_ups_share_notifications_and_none_is_missed(app):
    """Threads that commit while a notification is on its way share the next one; each
    call returns only after a notification sent after it began."""
    state = app.extensions["wallet"]
    if state.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    notifier = Notifier(state.engine)
    listener = PostgresListener(state.settings.database_url)
    try:
        assert listener.wait(0)
        threads = [threading.Thread(target=lambda: [notifier.notify() for _ in range(25)])
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert listener.wait(2.0)  # at least one arrived, after every call began
        assert notifier._covered == 200  # every call is covered by a notification
        notifier.notify()
        assert listener.wait(2.0)  # a later call is never skipped
    finally:
        notifier.close()
        listener.close()


def test_a_commit_rings_the_doorbell_of_a_waiting_worker(app, api, client, apns, make_worker):
    doorbell = Doorbell()
    unhook = ring_after_commit(app.extensions["wallet"].sessions, doorbell.address)
    worker = make_worker(push_debounce_seconds=5.0, worker_poll_seconds=60,
                         wakeups=[doorbell])
    try:
        _assert_woken_within(app, api, client, apns, worker, 2.0)
    finally:
        unhook()


def test_serve_wakes_its_own_worker(app, api, apns, tmp_path):
    """`serve` with two web processes and a worker that would poll once a minute: every
    earn on a quiet card is at APNs at once, long before the coalescing window or the poll
    would send it (SQLite: the doorbell; PostgreSQL: NOTIFY). bench/e2e.py measures how
    soon."""
    cards = [api.member(api.program()["id"], phone=f"+7912000080{i}") for i in range(3)]
    tokens = tokens_of(app)
    port = free_port()
    env = worker_env(app, apns, lease=5.0)
    # A polling worker would push after up to 60 s, a push held for the coalescing window
    # after 5 s: well apart from a woken worker's leading-edge push, even on a busy machine.
    env.update({"WALLET_WORKER_POLL_SECONDS": "60", "WALLET_PUSH_DEBOUNCE_SECONDS": "5",
                "WALLET_PUBLIC_URL": f"http://127.0.0.1:{port}", "WALLET_LOG_LEVEL": "WARNING"})
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "wallet_service.cli", "serve", "--port", str(port),
             "--workers", "2", "--threads", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = app.test_client()  # registrations go straight to the database through the app
    try:
        import http.client

        def post(path, body, headers):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
            status = conn.getresponse().status
            conn.close()
            return status

        def up():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
                return ok
            except OSError:
                return False

        assert wait_for(up, seconds=30, step=0.1), log_path.read_text()
        if app.extensions["wallet"].engine.dialect.name == "postgresql":
            # The worker starts beside the web processes; its first pass would catch an
            # earn made before it listens, and prove nothing.
            assert wait_for(lambda: _listening(app), seconds=30, step=0.05)
        for i, member in enumerate(cards):
            push_token = f"{0xfeed0 + i:064x}"
            serial = member["serial_number"]
            r = served.post(f"/apple/v1/devices/serve-{i}/registrations/{PASS_TYPE}/{serial}",
                            json={"pushToken": push_token},
                            headers={"Authorization": f"ApplePass {tokens[serial]}"})
            assert r.status_code == 201
            start = time.monotonic()
            assert post(f"/api/v1/members/{member['id']}/transactions",
                        '{"type": "earn", "points": 2}',
                        {"Authorization": f"Bearer {api.key}"}) == 201
            assert wait_for(lambda t=push_token: any(r.token == t for r in apns.requests),
                            seconds=10), log_path.read_text()
            elapsed = time.monotonic() - start
            assert elapsed < 2.5, f"earn {i} pushed after {elapsed:.3f} s"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _bulk_cards(app, merchant_id, program_id, n):
    """``n`` members with a card each, every card on a device of its own (bulk SQL)."""
    with app.extensions["wallet"].sessions() as s:
        s.execute(insert(Member), [
            {"merchant_id": merchant_id, "program_id": program_id, "name": f"M{i}"}
            for i in range(n)])
        member_ids = s.scalars(select(Member.id).where(Member.program_id == program_id)
                               .order_by(Member.id)).all()
        s.execute(insert(LoyaltyCard), [
            {"merchant_id": merchant_id, "program_id": program_id, "member_id": m,
             "serial_number": f"bulk-{m}", "authentication_token": f"auth-token-{m:020d}",
             "download_token": f"download-{m}"}
            for m in member_ids])
        s.execute(insert(DeviceRow), [
            {"device_library_identifier": f"bulk-{i}", "push_token": f"b{i:063x}"}
            for i in range(n)])
        card_ids = s.scalars(select(LoyaltyCard.id).where(LoyaltyCard.program_id == program_id)
                             .order_by(LoyaltyCard.id)).all()
        device_ids = s.scalars(select(DeviceRow.id).order_by(DeviceRow.id)).all()
        s.execute(insert(Registration), [
            {"device_id": d, "card_id": c} for d, c in zip(device_ids, card_ids, strict=True)])
        s.commit()
    return {f"b{i:063x}" for i in range(n)}


def test_a_design_change_reaches_2000_devices_exactly_once_over_several_connections(
        app, api, apns_certs, make_worker):
    program = api.program()
    expected = _bulk_cards(app, api.merchant_id, program["id"], 2000)
    # A server that allows 200 streams per connection: one connection could not carry
    # the fan-out at full speed, so the client opens more.
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE, max_concurrent_streams=200) as standin:
        worker = make_worker(apns=standin, push_debounce_seconds=1.0, apns_connections=4)
        api.patch(f"/programs/{program['id']}", {"design": {"background_color": "#102030"}})
        assert count(app, CardChange) == 2000
        statements = []
        engine = app.extensions["wallet"].engine

        def counted(*_args):
            statements.append(1)

        event.listen(engine, "before_cursor_execute", counted)
        try:
            worker.run_once()
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        pushed = Counter(r.token for r in standin.requests)
        connections = {r.connection for r in standin.requests}
    assert set(pushed) == expected and set(pushed.values()) == {1}
    assert len(connections) > 1
    # Sequencing, queueing, claiming and recording are statements per batch, not per device.
    assert len(statements) < 100, len(statements)
    with app.extensions["wallet"].sessions() as s:
        tags = s.scalars(select(CardUpdateTag.update_seq)
                         .join(LoyaltyCard, LoyaltyCard.id == CardUpdateTag.card_id)
                         .where(LoyaltyCard.program_id == program["id"])).all()
        statuses = set(s.scalars(select(DeliveryJob.status)))
    assert len(set(tags)) == 2000 and min(tags) > 0
    assert statuses == {"sent"}  # each device's window is open: nothing else waits


def test_a_fan_out_split_into_batches_pushes_each_device_once_and_signs_after_the_pushes(
        app, api, apns_certs, make_worker):
    """More devices than a batch: claimed, pushed and recorded a batch at a time while
    sequencing goes on, yet every device is pushed exactly once. Without signing processes
    the passes are signed once every push is out: signing on a thread beside them would hold
    the GIL the push loop needs."""
    program = api.program()
    expected = _bulk_cards(app, api.merchant_id, program["id"], 500)
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE, max_concurrent_streams=100) as standin:
        worker = make_worker(apns=standin, push_debounce_seconds=1.0, apns_connections=3)
        worker.BATCH, worker.FIRST_SEQUENCE_BATCH, worker.SEQUENCE_BATCH = 200, 120, 150
        worker.pass_factory = factory = PassFactory(worker.settings)
        pushed_when_signing = []
        sign = factory._sign

        def counted_sign(*args, **kwargs):
            pushed_when_signing.append(len(standin.requests))
            return sign(*args, **kwargs)

        factory._sign = counted_sign
        api.patch(f"/programs/{program['id']}", {"design": {"background_color": "#102030"}})
        assert worker.deliver() == 500
        pushed = Counter(r.token for r in standin.requests)
    assert set(pushed) == expected and set(pushed.values()) == {1}
    assert factory.signed == 500 and min(pushed_when_signing) == 500
    with app.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(SignedPass)) == 500
        assert set(s.scalars(select(DeliveryJob.status))) == {"sent"}
