"""The background worker: sequences card changes and delivers pushes (see services.outbox).

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

from sqlalchemy.orm import sessionmaker

from .config import Settings
from .db import utcnow
from .push import PushClient
from .push import backoff_delay
from .services import automations
from .services import outbox

log = logging.getLogger(__name__)


class Worker:
    #: A pass that found this much work goes on at once instead of waiting.
    BACKLOG = 500

    def __init__(
        self,
        *,
        sessions: sessionmaker[Any],
        push: PushClient,
        settings: Settings,
        google: Any = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.push = push
        self.google = google  # a GoogleWallet, or None when Google Wallet is off
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self._last_daily: dt.date | None = None

    def run_once(self) -> int:
        """One pass over every stage; returns how much work it found."""
        self.daily()
        return self.sequence() + self.deliver() + self.deliver_google()

    def daily(self) -> bool:
        """The day's automations (expiry, birthdays, win-back, tier review), once per day per
        worker process. They are idempotent, so several workers, or a restart, running the
        same day again give nothing twice."""
        today = self.clock().date()
        if self._last_daily == today:
            return False
        with self.sessions() as session:
            report = automations.run_daily(session, today)
            session.commit()
        self._last_daily = today
        log.info("daily automations for %s: %s", today, report)
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
                max_attempts=self.settings.push_max_attempts,
                retry_delay=lambda attempt: backoff_delay(attempt - 1, base=5.0, cap=900.0,
                                                          rng=self.rng),
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
        from .google import GoogleRateLimited
        from .google import GoogleUnavailable
        from .google import GoogleWalletError

        with self.sessions() as session:
            jobs = outbox.claim_jobs(
                session, outbox.GOOGLE, now=self.clock(), limit=limit,
                lease=dt.timedelta(seconds=self.settings.worker_lease_seconds))
            session.commit()
        for job in jobs:
            with self.sessions() as session:
                try:
                    self.google.sync_card(session, job.target_id, self.clock())
                    outbox.finish_job(session, job.id)
                except GoogleWalletError as exc:
                    session.rollback()
                    transient = isinstance(exc, GoogleRateLimited | GoogleUnavailable)
                    outbox.retry_job(
                        session, job.id, job.attempts + 1, now=self.clock(),
                        max_attempts=self.settings.push_max_attempts if transient else 0,
                        delay=backoff_delay(job.attempts, base=5.0, cap=900.0, rng=self.rng),
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


def make_push_client(settings: Settings) -> PushClient:
    """The push client the settings ask for (``WALLET_PUSH_BACKEND``): APNs authenticated
    with the pass certificate and key (Apple's documented way, spec §4.2), or with a .p8
    key; ``null`` when there is nothing APNs would accept (development certificates)."""
    from .push import ApnsPushClient
    from .push import CertificateAuth
    from .push import NullPushClient
    from .push import TokenAuth

    backend = settings.push_backend
    if backend == "auto":
        backend = "null" if settings.apple_dev_certs and not settings.apns_p8 else "apns"
    if backend == "null":
        return NullPushClient()
    auth: CertificateAuth | TokenAuth
    if settings.apns_p8 and settings.apns_key_id:
        auth = TokenAuth(key_id=settings.apns_key_id, team_id=settings.apple_team_id,
                         private_key=settings.apns_p8)
    else:
        from .apple_passes import load_signer

        signer = load_signer(settings)
        auth = CertificateAuth(certificate=signer.certificate, private_key=signer.private_key)
    return ApnsPushClient(topic=settings.apple_pass_type_id, auth=auth,
                          base_url=settings.apns_url, ca_file=settings.apns_ca_file)
