"""The background worker: sequences card changes and delivers pushes (see services.outbox),
and runs each merchant's daily automations when its local day begins (services.automations)
and the console's CSV imports (services.import_jobs).

Run as ``wallet-service worker`` (any number of them, on PostgreSQL), or inside
``wallet-service serve`` for the embedded default. A commit that publishes a change wakes it
(``wakeup``: PostgreSQL ``NOTIFY``, or ``serve``'s doorbell on SQLite); otherwise it sleeps
until the next waiting job falls due, and at most ``WALLET_WORKER_POLL_SECONDS``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from . import metrics
from . import tracing
from .config import Settings
from .db import utcnow
from .errors import WalletError
from .google import GoogleRateLimited
from .google import GoogleUnavailable
from .google import GoogleWalletError
from .push import Outcome
from .push import PushClient
from .push import PushResult
from .services import analytics
from .services import apple as apple_cards
from .services import automations
from .services import campaign_planning
from .services import google as google_cards
from .services import import_jobs
from .services import outbox
from .services import webhook_delivery
from .signing import SigningProcesses
from .state import WalletState
from .wakeup import PostgresListener
from .wakeup import WakeSource

log = logging.getLogger(__name__)



class Worker:
    #: Pushes claimed, sent and recorded together: large enough that the database does a
    #: few statements per thousands of devices, small enough that the batches in flight
    #: (``IN_FLIGHT``) keep memory flat.
    BATCH = 2000
    #: Batches on their way at once (each pushed, then recorded, on a thread of its own):
    #: the next one's pushes queue behind the ones on the wire while this thread sequences
    #: and claims.
    IN_FLIGHT = 3
    #: A pass's first batch of at most this many pushes has its passes signed before the
    #: push goes out (:meth:`deliver`); the others' are signed beside or after the pushes.
    SIGN_BEFORE_PUSH = 100
    #: Changes sequenced in one transaction.
    SEQUENCE_BATCH = 2000
    #: Changes a pass sequences before its first claim: fewer than a batch, so that a large
    #: fan-out's first pushes leave while the rest is sequenced beside them.
    FIRST_SEQUENCE_BATCH = 500
    #: While a backlog is sequenced, how often the queue's statistics are refreshed
    #: (:func:`.services.outbox.refresh_statistics`), in seconds.
    STATISTICS_EVERY = 10.0
    #: A pass that found nothing waits at least this long, even when a job is due (one that
    #: another worker holds, say), so an idle worker never spins.
    MIN_WAIT = 0.05
    #: How often a wake-up source's thread looks whether the worker is stopping.
    RELAY_SLICE = 0.5
    #: How often each merchant's analytics rollups are brought up to date (the dashboard's
    #: numbers are at most this old), and how often :meth:`run`'s analytics thread looks
    #: which are due; its first look waits ``ANALYTICS_START_DELAY`` seconds, so a starting
    #: worker delivers what waits first.
    ANALYTICS_EVERY = dt.timedelta(minutes=5)
    ANALYTICS_LOOK = 10.0
    ANALYTICS_START_DELAY = 10.0
    #: How often :meth:`run`'s import thread looks for console imports when nothing woke it,
    #: and the least time between two looks.
    IMPORTS_LOOK = 5.0
    IMPORTS_MIN_GAP = 1.0
    #: The least time between the starts of two of :meth:`run`'s passes (seconds).
    MIN_PASS_GAP = 0.025

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        push: PushClient,
        settings: Settings,
        google: google_cards.GoogleWallet | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
        wakeups: Sequence[WakeSource] = (),
        pass_factory: apple_cards.PassFactory | None = None,
        signing: SigningProcesses | None = None,
    ) -> None:
        self.sessions = sessions
        #: Signs the passes a push is about to make devices download (:meth:`sign_ahead`).
        self.pass_factory = pass_factory
        #: Processes that sign a large batch's passes beside its pushes (``signing``); without
        #: them this process signs them once the pushes are out.
        self.signing = signing if pass_factory is not None else None
        self.push = push
        self.google = google if google is not None and google.enabled else None
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.wakeups = list(wakeups)
        self.window = dt.timedelta(seconds=settings.push_debounce_seconds)
        # One retry policy for every channel; the parameters are the channel's.
        self.push_retry = outbox.RetryPolicy(max_attempts=settings.push_max_attempts)
        self.google_retry = outbox.RetryPolicy(max_attempts=settings.push_max_attempts)
        self.webhook_retry = webhook_delivery.RETRY  # about a day (its module docstring)
        self._last_housekeeping: dt.date | None = None
        self._daily_looked: dt.datetime | None = None
        self._woken = threading.Event()
        self._imports_woken = threading.Event()
        self._stopping = threading.Event()  # run()'s stop: a long fan-out ends early
        #: Passes :meth:`run` has finished, for a look from outside (is it alive, idle?).
        self.passes = 0

    @classmethod
    def from_state(cls, state: WalletState, **kwargs: Any) -> Worker:
        """A worker on the process's shared state (``build_state``); on PostgreSQL it
        listens for the commits that publish changes."""
        wakeups = list(kwargs.pop("wakeups", ()))
        if not state.settings.is_sqlite:
            wakeups.append(PostgresListener(state.settings.database_url))
        kwargs.setdefault("pass_factory", state.passes)
        if (state.settings.signing_processes and not state.settings.is_sqlite
                and kwargs["pass_factory"] is not None):
            kwargs.setdefault("signing", SigningProcesses(state.settings,
                                                          state.settings.signing_processes))
        return cls(sessions=state.sessions, push=state.push, settings=state.settings,
                   google=state.google, wakeups=wakeups, **kwargs)

    def run_once(self) -> int:
        """One pass over every stage, pushes first; returns how much work it found."""
        found = self.deliver() + self.deliver_google() + self.deliver_webhooks()
        found += self.scheduled_campaigns()
        now = self.clock()
        if self._daily_looked is None or not 0 <= (now - self._daily_looked).total_seconds() < 1:
            # Merchants' days begin at midnight: a look a second is plenty, and a busy
            # worker's passes need not each ask.
            self._daily_looked = now
            found += self.daily()
        self.housekeeping()
        return found

    def analytics(self) -> int:
        """Bring the analytics rollups of every merchant not refreshed for
        ``ANALYTICS_EVERY`` up to date (services.analytics), each merchant in its own
        transaction, claimed first so that several workers refresh it once. A refresh that
        fails is logged and tried again on a later pass. Returns how many were refreshed."""
        now = self.clock()
        with self.sessions() as session:
            due = analytics.due_merchants(session, now, self.ANALYTICS_EVERY)
        done = 0
        for merchant_id in due:
            with self.sessions() as session:
                try:
                    if not analytics.claim_refresh(session, merchant_id, now,
                                                   self.ANALYTICS_EVERY):
                        continue
                    analytics.refresh(session, merchant_id, now)
                    session.commit()
                    done += 1
                except Exception:
                    session.rollback()
                    log.exception("analytics refresh of merchant %s failed; retrying later",
                                  merchant_id)
        return done

    def imports(self, *, chunk: int = import_jobs.CHUNK) -> int:
        """Run the console's queued imports one after another (``services.import_jobs``);
        returns how many ran. Each import is one transaction with its report; the rows done
        are recorded after each ``chunk`` rows in short transactions of their own (not on
        SQLite, where the import's transaction holds the only write lock)."""
        ran = 0
        while not self._stopping.is_set():
            lease = dt.timedelta(seconds=self.settings.worker_lease_seconds)
            with self.sessions() as session:
                job = import_jobs.claim(session, now=self.clock(), lease=lease)
                session.commit()
            if job is None:
                return ran
            self._run_import(job, lease, chunk)
            ran += 1
        return ran

    def _run_import(self, job: import_jobs.Claimed, lease: dt.timedelta, chunk: int) -> None:
        def progress(done: int, total: int) -> None:
            with self.sessions() as session:
                held = import_jobs.record_progress(session, job, done, total,
                                                   now=self.clock(), lease=lease)
                session.commit()
            if not held:
                raise import_jobs.TakenOver(job.id)

        run = tracing.bind(f"import-{job.id}")
        try:
            with self.sessions() as session:
                try:
                    report = import_jobs.run(
                        session, job, default_region=self.settings.default_region,
                        progress=None if self.settings.is_sqlite else progress, chunk=chunk)
                    if not import_jobs.finish(session, job, report, now=self.clock()):
                        raise import_jobs.TakenOver(job.id)
                    session.commit()
                except import_jobs.TakenOver:
                    session.rollback()
                    log.warning("import job %d was taken over by another worker (its lease "
                                "ran out); its run here is rolled back", job.id)
                    return
                except WalletError as exc:
                    session.rollback()
                    error = exc.message
                    log.info("import job %d failed: %s", job.id, error)
                except Exception:
                    session.rollback()
                    error = import_jobs.CRASHED
                    log.exception("import job %d failed", job.id)
                else:
                    log.info("import job %d done: %d rows, %d imported, %d existing, "
                             "%d rejected", job.id, report.rows, report.imported,
                             report.existing, len(report.rejected))
                    return
            with self.sessions() as session:
                import_jobs.fail(session, job, error, now=self.clock())
                session.commit()
        finally:
            tracing.unbind(run)

    def scheduled_campaigns(self) -> int:
        """Send the campaigns scheduled from the console whose local time has come
        (``services.campaign_planning``); returns how many went out."""
        with self.sessions() as session:
            try:
                sent = campaign_planning.send_due(session, self.clock())
                session.commit()
            except Exception:
                log.exception("scheduled campaigns failed; retrying on the next pass")
                return 0
        if sent:
            log.info("scheduled campaigns sent: %s", sent)
        return len(sent)

    def daily(self) -> int:
        """The day's automations (expiry, birthdays, win-back, tier review) of every merchant
        whose local day began since its last run: each merchant's day starts at midnight in
        its own time zone. A day is claimed in the transaction that runs it, so several
        workers, or a restart, run it once; a run that fails stays unclaimed, is tried again
        on the next pass, and does not hold up the other merchants. Returns how many
        merchants' days ran."""
        now = self.clock()
        with self.sessions() as session:
            due = automations.due_days(session, now)
        ran = 0
        for merchant_id, day in due:
            # The day's changes carry this id in place of a request's (README: Logs).
            run = tracing.bind(f"daily-{merchant_id}-{day.isoformat()}")
            try:
                ran += self._run_day(merchant_id, day, now)
            finally:
                tracing.unbind(run)
        return ran

    def _run_day(self, merchant_id: int, day: dt.date, now: dt.datetime) -> int:
        with self.sessions() as session:
            try:
                if not automations.claim_day(session, merchant_id, day):
                    return 0  # another worker ran it
                report = automations.run_daily(session, day, merchant_id=merchant_id, now=now)
                session.commit()
            except Exception:
                log.exception("daily automations of merchant %s for %s failed; retrying",
                              merchant_id, day)
                return 0
        log.info("daily automations of merchant %s for %s: %s", merchant_id, day, report)
        return 1

    def housekeeping(self) -> bool:
        """Once per day per worker process, delete what is kept only for a while: device logs
        older than ``DEVICE_LOG_DAYS``. Deleting twice deletes nothing more, so several
        workers may all do it."""
        now = self.clock()
        if self._last_housekeeping == now.date():
            return False
        with self.sessions() as session:
            pruned = apple_cards.prune_device_logs(session, now)
            session.commit()
        self._last_housekeeping = now.date()
        log.info("housekeeping: %d device logs older than %d days deleted", pruned,
                 apple_cards.DEVICE_LOG_DAYS)
        return True

    def sequence(self) -> int:
        """Sequence every waiting change, a batch per transaction."""
        total = 0
        while (n := self._sequence_batch()) == self.SEQUENCE_BATCH:
            total += n
        return total + n

    def _sequence_batch(self, limit: int | None = None) -> int:
        with self.sessions() as session:
            n = outbox.sequence_changes(session, now=self.clock(), debounce=self.window,
                                        limit=limit or self.SEQUENCE_BATCH)
            session.commit()
        return n

    def deliver(self) -> int:
        """Push every due job; returns how many pushes were sent.

        The connection to APNs never waits for the database: while batches are on their
        way, changes that arrived meanwhile are sequenced and the next batch is claimed and
        handed to the push client behind them; each batch's outcome is recorded by the
        thread that sent it, once APNs answered, in a transaction of its own. At most
        ``IN_FLIGHT`` batches are on their way, so memory stays flat however large the
        fan-out.

        The new passes are signed once for every process (:meth:`sign_ahead`). A small
        batch (a change to a few cards) is signed before its push goes out, so every
        download finds a ready file. A large one's pushes leave at the APNs client's pace,
        not the signer's: its passes are signed beside them by the signing processes, or,
        without them, here once every push is out (on a thread of this process, signing
        would hold the GIL the push loop needs). A device that asks before its pass is
        stored gets it signed by the web."""
        sent = 0
        in_flight: collections.deque[Future[None]] = collections.deque()
        after: list[int] = []  # devices whose passes are signed once the pushes are out
        progress: queue.SimpleQueue[int] = queue.SimpleQueue()  # batches sequenced meanwhile
        with ThreadPoolExecutor(max_workers=self.IN_FLIGHT + 1,
                                thread_name_prefix="push-send") as senders:
            # The first changes are sequenced here, so a change to a few cards is claimed at
            # once; a larger backlog is sequenced on a thread of its own while this one
            # claims what is due (as another worker would: the queue is shared).
            sequencing: Future[None] | None = None
            if self._sequence_batch(self.FIRST_SEQUENCE_BATCH) == self.FIRST_SEQUENCE_BATCH:
                sequencing = senders.submit(self._sequence_rest, progress)
            first = True
            while True:
                # Looked at before the claim: a sequencer done by now has nothing unclaimed.
                busy = sequencing is not None and not sequencing.done()
                claimed = self._claim(end_windows=first)
                first = False
                if claimed:
                    devices = [c.device_id for c in claimed]
                    # The tail of a fan-out is no small change: it waits for no signing.
                    small = not sent and len(claimed) <= self.SIGN_BEFORE_PUSH
                    if small:
                        self.sign_ahead(devices)
                    in_flight.append(senders.submit(self._push_and_record, claimed))
                    if not small and self.signing is not None:
                        self.signing.submit(devices)
                    elif not small and self.pass_factory is not None:
                        after.extend(devices)
                    sent += len(claimed)
                # A full batch means more may be waiting; anything that arrives after a
                # partial one wakes the worker for another pass.
                more = (busy or len(claimed) == self.BATCH) and not self._stopping.is_set()
                while len(in_flight) >= self.IN_FLIGHT or (in_flight and not more):
                    in_flight.popleft().result()
                if not more:
                    break
                if len(claimed) < self.BATCH:
                    # The sequencer is behind: wait for its next batch, not claim a few.
                    try:
                        progress.get(timeout=self.RELAY_SLICE)
                    except queue.Empty:
                        pass
            if sequencing is not None:
                sequencing.result()
        for start in range(0, len(after), self.BATCH):
            if self._stopping.is_set():
                break  # the web signs what is left
            self.sign_ahead(after[start:start + self.BATCH])
        return sent

    def _sequence_rest(self, progress: queue.SimpleQueue[int]) -> None:
        """Sequence batch after batch until one is not full, saying how many each had. The
        queue's statistics are refreshed first, and every ``STATISTICS_EVERY`` seconds: a
        backlog this large arrived faster than autovacuum refreshes them."""
        refreshed = -self.STATISTICS_EVERY
        total = since = self.FIRST_SEQUENCE_BATCH  # the caller's first batch
        while not self._stopping.is_set():
            # Refreshed too when the backlog sequenced since the last time has doubled what
            # was there: the queue grows by thousands of jobs a second, and with statistics
            # of a tenth of its size the planner looks up waiting jobs by scanning them all.
            if (time.monotonic() - refreshed >= self.STATISTICS_EVERY
                    or since >= total - since):
                with self.sessions() as session:
                    outbox.refresh_statistics(session)
                    session.commit()
                refreshed, since = time.monotonic(), 0
            sequenced = self._sequence_batch()
            total += sequenced
            since += sequenced
            progress.put(sequenced)
            if sequenced < self.SEQUENCE_BATCH:
                return

    def sign_ahead(self, device_ids: Sequence[int]) -> int:
        """Sign and store, once for every process, the new versions of the passes on these
        devices, about to be pushed, so that what the push wakes downloads ready files
        (:func:`.services.apple.sign_ahead`). A failure here holds up no push: the web
        processes sign what is missing."""
        if self.pass_factory is None or not device_ids:
            return 0
        try:
            with self.sessions() as session:
                signed = apple_cards.sign_ahead(session, self.pass_factory, list(device_ids))
                session.commit()
        except Exception:
            log.exception("signing passes ahead of a push failed; downloads sign them")
            return 0
        return signed

    def _claim(self, *, end_windows: bool = False) -> list[outbox.Claimed]:
        with self.sessions() as session:
            if end_windows:
                outbox.end_windows(session, now=self.clock())
            claimed = outbox.claim_push_jobs(
                session, now=self.clock(), limit=self.BATCH,
                lease=dt.timedelta(seconds=self.settings.worker_lease_seconds),
            )
            session.commit()
        return claimed

    def _push_and_record(self, claimed: list[outbox.Claimed]) -> None:
        self._record(claimed, self.push.send([c.push_token for c in claimed]))

    def _record(self, claimed: list[outbox.Claimed], results: list[PushResult]) -> None:
        with self.sessions() as session:
            outbox.record_outcomes(
                session, list(zip(claimed, results, strict=True)), now=self.clock(),
                policy=self.push_retry, rng=self.rng, window=self.window,
            )
            session.commit()
        for c, r in zip(claimed, results, strict=True):
            status = str(r.status) if r.status else "none"
            metrics.APNS_RESPONSES.labels(status, r.outcome.value).inc()
            # One line per push naming the changes it carries (change_id:request_id), so a
            # request's id finds the pushes it caused (README: Logs).
            log.info("push job=%d device=%d status=%s outcome=%s%s changes=%s", c.job_id,
                     c.device_id, status, r.outcome.value,
                     f" reason={r.reason}" if r.reason else "", c.changes or "-")
        delivered = sum(1 for r in results if r.outcome is Outcome.DELIVERED)
        log.info("pushed %d devices: %d accepted", len(results), delivered)

    def deliver_google(self, limit: int = 50) -> int:
        """Bring changed cards' Google objects up to date (the client keeps the request
        rate); retryable failures go back to the queue with back-off."""
        if self.google is None:
            return 0
        with self.sessions() as session:
            jobs = outbox.claim_jobs(
                session, outbox.GOOGLE, now=self.clock(), limit=limit,
                lease=dt.timedelta(seconds=self.settings.worker_lease_seconds))
            session.commit()
        for job in jobs:
            with self.sessions() as session:
                try:
                    google_cards.sync_card(session, self.google, job.target_id, self.clock())
                    outbox.finish_job(session, job.id)
                    log.info("google sync job=%d card=%d changes=%s", job.id, job.target_id,
                             job.changes or "-")
                except GoogleWalletError as exc:
                    session.rollback()
                    transient = isinstance(exc, GoogleRateLimited | GoogleUnavailable)
                    outbox.retry_job(
                        session, job.id, job.attempts + 1, now=self.clock(),
                        policy=self.google_retry, rng=self.rng, transient=transient,
                        error=f"{type(exc).__name__}: {exc}")
                    log.warning("Google update of card %s failed: %s changes=%s", job.target_id,
                                exc, job.changes or "-")
                session.commit()
        return len(jobs)

    #: Webhook deliveries claimed together, and how many are sent at once: a slow endpoint
    #: holds up at most one of them for ``WALLET_WEBHOOK_TIMEOUT_SECONDS``.
    WEBHOOK_BATCH = 50
    WEBHOOK_SENDERS = 8

    def deliver_webhooks(self) -> int:
        """Send every due webhook delivery, a batch at a time (``services.webhook_delivery``);
        returns how many were tried."""
        tried = 0
        while True:
            with self.sessions() as session:
                claimed = webhook_delivery.claim(
                    session, now=self.clock(), limit=self.WEBHOOK_BATCH,
                    lease=dt.timedelta(seconds=self.settings.worker_lease_seconds))
                session.commit()
            if not claimed:
                return tried
            settings = self.settings
            with ThreadPoolExecutor(max_workers=min(self.WEBHOOK_SENDERS, len(claimed)),
                                    thread_name_prefix="webhook-send") as senders:
                answers = list(senders.map(self._send_webhook, claimed))
            with self.sessions() as session:
                disabled = webhook_delivery.record_outcomes(
                    session, list(zip(claimed, answers, strict=True)), now=self.clock(),
                    policy=self.webhook_retry, rng=self.rng,
                    disable_after=dt.timedelta(hours=settings.webhook_disable_after_hours))
                session.commit()
            for outgoing, answer in zip(claimed, answers, strict=True):
                outcome = ("delivered" if answer.ok else "failed"
                           if answer.refused or outgoing.attempt >= self.webhook_retry.max_attempts
                           else "retry")
                metrics.WEBHOOK_DELIVERIES.labels(str(answer.status or "none"), outcome).inc()
                metrics.WEBHOOK_SECONDS.observe(answer.latency_ms / 1000)
                log.info("webhook delivery=%d endpoint=%d message=%s type=%s attempt=%d "
                         "status=%s outcome=%s%s", outgoing.delivery_id, outgoing.endpoint_id,
                         outgoing.message_id, outgoing.event_type, outgoing.attempt,
                         answer.status or "none", outcome,
                         f" error={answer.error}" if answer.error else "")
            for endpoint_id in disabled:
                log.warning("webhook endpoint %d disabled after a long run of failures",
                            endpoint_id)
            tried += len(claimed)
            if len(claimed) < self.WEBHOOK_BATCH or self._stopping.is_set():
                return tried

    def _send_webhook(self, outgoing: webhook_delivery.Outgoing) -> Any:
        return webhook_delivery.send(outgoing, now=self.clock(),
                                     timeout=self.settings.webhook_timeout_seconds,
                                     allow_private=self.settings.webhooks_allow_private)

    def wake(self) -> None:
        """Start the next pass now (a waiting :meth:`run` returns from its wait)."""
        self._woken.set()
        self._imports_woken.set()

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set. After each pass it waits for a wake-up (a commit that
        published a change, :meth:`wake`), the next waiting job's due time, or
        ``worker_poll_seconds``, whichever comes first. Changes that arrive during a pass
        are sequenced together by the next one, so under load the batches grow instead of
        the passes multiplying."""
        log.info("worker started")
        self._stopping = stop
        relays = [threading.Thread(target=self._relay, args=(source, stop),
                                   name="worker-wakeup", daemon=True)
                  for source in self.wakeups]
        relays.append(threading.Thread(target=self._wake_on, args=(stop,),
                                       name="worker-stop", daemon=True))
        for relay in relays:
            relay.start()
        # Refreshing a big merchant's analytics takes seconds: a thread of its own, so that
        # pushes never wait for it.
        rollups = threading.Thread(target=self._analytics_loop, args=(stop,),
                                   name="worker-analytics", daemon=True)
        rollups.start()
        # An import holds its transaction for a minute or more: a thread of its own too.
        importer = threading.Thread(target=self._imports_loop, args=(stop,),
                                    name="worker-imports", daemon=True)
        importer.start()
        try:
            started = -self.MIN_PASS_GAP
            while not stop.is_set():
                # Under a stream of changes a wake-up comes for every commit: passes begin at
                # most every MIN_PASS_GAP, so that each sequences what came meanwhile instead
                # of a pass per commit (every pass costs a dozen statements). A change after
                # a quiet moment still starts a pass at once.
                gap = self.MIN_PASS_GAP - (time.monotonic() - started)
                if gap > 0:
                    stop.wait(gap)
                started = time.monotonic()
                self._woken.clear()  # a wake-up from now on means another pass
                try:
                    found = self.run_once()
                    wait = self._idle_wait(found)
                except Exception:
                    log.exception("worker pass failed; retrying")
                    wait = self.settings.worker_poll_seconds
                self.passes += 1
                self._woken.wait(wait)
        finally:
            stop.set()
            if self.signing is not None:
                self.signing.close()
            for relay in relays:
                relay.join()
            # A refresh cut short rolls back; the next worker does it again.
            rollups.join(timeout=self.RELAY_SLICE)
            # So does an import cut short: its job is taken again when its lease runs out.
            importer.join(timeout=self.RELAY_SLICE)
        log.info("worker stopped")

    def _analytics_loop(self, stop: threading.Event) -> None:
        if stop.wait(self.ANALYTICS_START_DELAY):
            return
        while not stop.is_set():
            try:
                self.analytics()
            except Exception:
                log.exception("analytics pass failed; retrying")
            stop.wait(self.ANALYTICS_LOOK)

    def _imports_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._imports_woken.clear()  # a wake-up from now on means another look
            try:
                self.imports()
            except Exception:
                log.exception("import pass failed; retrying")
            # Every commit that publishes a change wakes the worker: an earn stream would
            # otherwise have this thread look for imports hundreds of times a second.
            stop.wait(self.IMPORTS_MIN_GAP)
            self._imports_woken.wait(self.IMPORTS_LOOK)

    def _idle_wait(self, found: int) -> float:
        """Seconds until the next waiting job falls due, within ``[0 or MIN_WAIT, poll]``."""
        poll = self.settings.worker_poll_seconds
        with self.sessions() as session:
            now = self.clock()
            due = outbox.next_due(session, now)
        floor = 0.0 if found else min(self.MIN_WAIT, poll)
        if due is None:
            return poll
        return min(max((due - now).total_seconds(), floor), poll)

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._woken.set()
        self._imports_woken.set()

    def _relay(self, source: WakeSource, stop: threading.Event) -> None:
        """Turn a wake-up source's news into :meth:`wake` until ``stop``."""
        try:
            while not stop.is_set():
                try:
                    if source.wait(self.RELAY_SLICE):
                        self.wake()
                except Exception as exc:  # the database restarting, say: poll meanwhile
                    log.warning("wake-up source failed (%s); polling until it is back", exc)
                    stop.wait(min(self.settings.worker_poll_seconds, 5.0) or 1.0)
        finally:
            source.close()
