"""The background worker: sequences card changes and delivers pushes (see services.outbox),
and runs each merchant's daily automations when its local day begins (services.automations).

Run as ``wallet-service worker`` (any number of them, on PostgreSQL), or inside
``wallet-service serve`` for the embedded default.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from .config import Settings
from .db import utcnow
from .google import GoogleRateLimited
from .google import GoogleUnavailable
from .google import GoogleWalletError
from .push import PushClient
from .services import apple as apple_cards
from .services import automations
from .services import google as google_cards
from .services import outbox
from .state import WalletState

log = logging.getLogger(__name__)


class Worker:
    #: A pass that found this much work goes on at once instead of waiting.
    BACKLOG = 500

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        push: PushClient,
        settings: Settings,
        google: google_cards.GoogleWallet | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.push = push
        self.google = google if google is not None and google.enabled else None
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        # One retry policy for every channel; the parameters are the channel's.
        self.push_retry = outbox.RetryPolicy(max_attempts=settings.push_max_attempts)
        self.google_retry = outbox.RetryPolicy(max_attempts=settings.push_max_attempts)
        self._last_housekeeping: dt.date | None = None

    @classmethod
    def from_state(cls, state: WalletState, **kwargs: Any) -> Worker:
        """A worker on the process's shared state (``build_state``)."""
        return cls(sessions=state.sessions, push=state.push, settings=state.settings,
                   google=state.google, **kwargs)

    def run_once(self) -> int:
        """One pass over every stage; returns how much work it found."""
        self.daily()
        self.housekeeping()
        return self.sequence() + self.deliver() + self.deliver_google()

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
            with self.sessions() as session:
                try:
                    if not automations.claim_day(session, merchant_id, day):
                        continue  # another worker ran it
                    report = automations.run_daily(session, day, merchant_id=merchant_id,
                                                   now=now)
                    session.commit()
                except Exception:
                    log.exception("daily automations of merchant %s for %s failed; retrying",
                                  merchant_id, day)
                    continue
            ran += 1
            log.info("daily automations of merchant %s for %s: %s", merchant_id, day, report)
        return ran

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
        total = 0
        while True:
            with self.sessions() as session:
                n = outbox.sequence_changes(
                    session, now=self.clock(),
                    debounce=dt.timedelta(seconds=self.settings.push_debounce_seconds),
                )
                session.commit()
            total += n
            if n == 0:
                return total

    def deliver(self) -> int:
        with self.sessions() as session:
            claimed = outbox.claim_push_jobs(
                session, now=self.clock(),
                lease=dt.timedelta(seconds=self.settings.worker_lease_seconds),
            )
            session.commit()
        if not claimed:
            return 0
        results = self.push.send([c.push_token for c in claimed])
        with self.sessions() as session:
            outbox.record_outcomes(
                session, list(zip(claimed, results, strict=True)), now=self.clock(),
                policy=self.push_retry, rng=self.rng,
            )
            session.commit()
        delivered = sum(1 for r in results if r.outcome.value == "delivered")
        log.info("pushed %d devices: %d accepted", len(results), delivered)
        return len(claimed)

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
                except GoogleWalletError as exc:
                    session.rollback()
                    transient = isinstance(exc, GoogleRateLimited | GoogleUnavailable)
                    outbox.retry_job(
                        session, job.id, job.attempts + 1, now=self.clock(),
                        policy=self.google_retry, rng=self.rng, transient=transient,
                        error=f"{type(exc).__name__}: {exc}")
                    log.warning("Google update of card %s failed: %s", job.target_id, exc)
                session.commit()
        return len(jobs)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set. Between passes it waits ``worker_poll_seconds`` unless
        a backlog is left: changes that arrive meanwhile are then sequenced in one batch
        rather than one by one, which keeps the worker from competing with the web
        processes for the database and the CPU under load."""
        log.info("worker started")
        while not stop.is_set():
            try:
                found = self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying")
                found = 0
            if found < self.BACKLOG:
                stop.wait(self.settings.worker_poll_seconds)
        log.info("worker stopped")
