"""Prometheus metrics: the counters and histograms every process updates, and the page
``/metrics`` serves (``web/observe.py``; README: Metrics).

Anything may import this module and count: ``metrics.WEBHOOK_DELIVERIES.labels(...).inc()``.
It imports nothing of the service, so no import circle can form through it.

**Several processes.** gunicorn runs several web processes and the worker runs beside them.
With ``PROMETHEUS_MULTIPROC_DIR`` set (before this module is first imported) every process
writes its values to files in that folder and ``/metrics`` adds them up
(``prometheus_client``'s multi-process mode); ``wallet-service serve`` makes a private
folder when it is unset. Without it (tests, a single process) the values live in memory.

**Gauges at scrape time.** Queue depths and ages and the certificates' days left are read
when ``/metrics`` is asked (:func:`scrape_families`), from the database and the loaded
certificates, so they are the same whichever process answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

#: The media type of the page.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# --- the web requests ---------------------------------------------------------------------
#: By the URL rule (``/api/v1/members/<int:member_id>``), never the raw path: tokens and
#: card numbers in paths never become label values.
HTTP_REQUESTS = Counter("wallet_http_requests_total", "HTTP requests answered, by route.",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("wallet_http_request_duration_seconds",
                         "Time to answer an HTTP request, by route.", ["method", "route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# --- the ledger ---------------------------------------------------------------------------
LEDGER_OPERATIONS = Counter("wallet_ledger_operations_total",
                            "Ledger entries committed, by type (earn, redeem, refund, ...).",
                            ["type"])

# --- deliveries -----------------------------------------------------------------------------
APNS_RESPONSES = Counter("wallet_apns_responses_total",
                         "APNs answers to pushes, by HTTP status (none: no answer) and what "
                         "the worker made of them.", ["status", "outcome"])
GOOGLE_REQUESTS = Counter("wallet_google_requests_total",
                          "Requests to the Google Wallet API, by HTTP status (none: no answer).",
                          ["method", "status"])
WEBHOOK_DELIVERIES = Counter("wallet_webhook_deliveries_total",
                             "Webhook delivery attempts, by HTTP status (none: no answer) and "
                             "outcome (delivered, retry, failed).", ["status", "outcome"])
WEBHOOK_SECONDS = Histogram("wallet_webhook_delivery_duration_seconds",
                            "Time a webhook endpoint took to answer.",
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

_PENDING = "wallet_service.metrics.pending"


def count_after_commit(session: Session, counter: Counter, **labels: str) -> None:
    """Count one on ``counter`` when ``session``'s transaction commits (nothing if it rolls
    back): for what services write, which must not count a change that never happened."""
    session.info.setdefault(_PENDING, []).append((counter, labels))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, labels in session.info.pop(_PENDING, ()):
        counter.labels(**labels).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- the page -----------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "prometheus_multiproc_dir") or None


class _Fixed:
    """A collector that yields metric families made beforehand."""

    def __init__(self, families: Iterable[Any]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Any]:
        yield from self._families


class _ThisProcess:
    """The in-memory registry's metrics (no multi-process folder)."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def render(families: Iterable[Any] = ()) -> bytes:
    """The page: every process's counters (one folder, or this process) and ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_as_collector(_ThisProcess()))
    registry.register(_as_collector(_Fixed(families)))
    return generate_latest(registry)


def _as_collector(collector: Any) -> Collector:
    return collector  # type: ignore[no-any-return]


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a web process's live gauges go with it."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def scrape_families(stats: Any, *, certificates: Mapping[str, float],
                    google_rate: float | None) -> list[Any]:
    """Gauges read at scrape time: ``stats`` (``services.outbox.QueueStats``), days left
    per certificate, and the Google Wallet API's request budget (``None``: Google off)."""
    changes = GaugeMetricFamily("wallet_outbox_changes", "Card changes not yet sequenced.")
    changes.add_metric([], stats.changes)
    age = GaugeMetricFamily("wallet_outbox_oldest_change_age_seconds",
                            "Seconds since the oldest card change not yet sequenced was made.")
    age.add_metric([], stats.oldest_change_age)
    jobs = GaugeMetricFamily("wallet_delivery_jobs",
                             "Delivery jobs by channel (apns: a push to a device, google: an "
                             "object update) and status (pending, sending, sent, failed).",
                             labels=["channel", "status"])
    for channel in ("apns", "google"):
        for status in ("pending", "sending", "sent", "failed"):
            jobs.add_metric([channel, status], stats.jobs.get((channel, status), 0))
    for (channel, status), n in sorted(stats.jobs.items()):
        if channel not in ("apns", "google"):
            jobs.add_metric([channel, status], n)
    overdue = GaugeMetricFamily("wallet_delivery_overdue_seconds",
                                "How late the longest-waiting due job of a channel is (0: none).",
                                labels=["channel"])
    for channel in sorted({"apns", "google", *stats.overdue}):
        overdue.add_metric([channel], stats.overdue.get(channel, 0.0))
    days = GaugeMetricFamily("wallet_certificate_days_left",
                             "Days before a certificate expires (pass: the Pass Type ID "
                             "certificate, wwdr: Apple's intermediate).", labels=["certificate"])
    for name, left in sorted(certificates.items()):
        days.add_metric([name], left)
    families = [changes, age, jobs, overdue, days]
    if google_rate is not None:
        rate = GaugeMetricFamily("wallet_google_rate_limit_per_second",
                                 "Requests a second the service allows itself to the Google "
                                 "Wallet API (WALLET_GOOGLE_RATE_PER_SECOND).")
        rate.add_metric([], google_rate)
        families.append(rate)
    return families
