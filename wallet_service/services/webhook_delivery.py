"""The worker's side of webhooks: claim due deliveries from the outbox's queue, sign them,
and record what each endpoint answered.

**Signing** follows the Standard Webhooks specification ("Signature scheme"): headers
``webhook-id`` (the event's id, the same on every try), ``webhook-timestamp`` (seconds since
the epoch, of this try) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
``id.timestamp.body`` under the endpoint's secret), made by the maintained
``standardwebhooks`` package, so a receiver verifies with ``Webhook(secret).verify``.

**Retries.** A delivery is tried until a 2xx answer. Failures go back to the queue with the
outbox's :class:`~.outbox.RetryPolicy` and the parameters of :data:`RETRY`: jittered
exponential back-off from a minute up to six hours between tries, 16 tries in all, which
spreads them over about a day (the full-jitter delays add up to 22 hours on average, 44 at
most). A refused address is not tried again.

**Disabling.** ``failing_since`` marks when an endpoint's current run of failures began; a
success clears it. A failure once the run has lasted the operator's
``WALLET_WEBHOOK_DISABLE_AFTER_HOURS`` turns the endpoint off, with the reason recorded for
the merchant (the API shows ``disabled_reason``); its waiting deliveries then fail as they
come due. Enabling it again (``PATCH … {"enabled": true}``) starts afresh.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from ..safe_http import Answer
from ..safe_http import post
from . import outbox
from .webhooks import CHANNEL
from .webhooks import DELIVERED
from .webhooks import DELIVERIES
from .webhooks import ENDPOINTS
from .webhooks import EVENTS
from .webhooks import FAILED
from .webhooks import JOBS
from .webhooks import PENDING

#: The webhooks' retry parameters (module docstring).
RETRY = outbox.RetryPolicy(max_attempts=16, base=60.0, cap=6 * 3600.0)

USER_AGENT = "wallet-service-webhooks/1"


class _Random(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery, ready to sign and send; ``attempt`` counts this try."""

    job_id: int
    attempt: int
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    message_id: str
    event_type: str
    body: str


def claim(session: Session, *, now: dt.datetime, lease: dt.timedelta,
          limit: int) -> list[Outgoing]:
    """Lease up to ``limit`` due deliveries to this worker (the caller commits at once).
    Deliveries whose endpoint was deleted meanwhile are dropped; those of a disabled
    endpoint fail."""
    rows = outbox.claim_jobs(session, CHANNEL, now=now, lease=lease, limit=limit)
    if not rows:
        return []
    found = {r.delivery_id: r for r in session.execute(
        select(DELIVERIES.c.id.label("delivery_id"), ENDPOINTS.c.id.label("endpoint_id"),
               ENDPOINTS.c.url, ENDPOINTS.c.secret, ENDPOINTS.c.enabled,
               EVENTS.c.message_id, EVENTS.c.type, EVENTS.c.payload)
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
        .where(outbox.in_ids(session, DELIVERIES.c.id, [r.target_id for r in rows]))
    )}
    claimed, dropped = [], []
    for job in rows:
        row = found.get(job.target_id)
        if row is None or not row.enabled:
            dropped.append(job.id)
            if row is not None:
                session.execute(update(DELIVERIES).where(DELIVERIES.c.id == row.delivery_id)
                                .values(status=FAILED, last_error="endpoint disabled"))
            continue
        claimed.append(Outgoing(
            job.id, job.attempts + 1, row.delivery_id, row.endpoint_id, row.url, row.secret,
            row.message_id, row.type, body_of(row.payload)))
    if dropped:
        session.execute(delete(JOBS).where(outbox.in_ids(session, JOBS.c.id, dropped)))
    return claimed


def body_of(payload: dict[str, Any]) -> str:
    """The exact text sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def signed_headers(outgoing: Outgoing, now: dt.datetime) -> dict[str, str]:
    """The request's headers, signed for ``now`` (module docstring)."""
    signature = Webhook(outgoing.secret).sign(outgoing.message_id, now, outgoing.body)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": outgoing.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def send(outgoing: Outgoing, *, now: dt.datetime, timeout: float,
         allow_private: bool) -> Answer:
    """Sign and POST one delivery (``safe_http``: one checked address, no redirects)."""
    return post(outgoing.url, outgoing.body.encode(), signed_headers(outgoing, now),
                timeout=timeout, allow_private=allow_private)


def record_outcomes(session: Session, results: Sequence[tuple[Outgoing, Answer]], *,
                    now: dt.datetime, policy: outbox.RetryPolicy, rng: _Random,
                    disable_after: dt.timedelta) -> list[int]:
    """Log each try on its delivery, settle its job (done, retried or failed) and keep the
    endpoints' runs of failures; returns the ids of endpoints this disabled."""
    failures = []
    disabled: list[int] = []
    for outgoing, answer in results:
        values: dict[str, Any] = {
            "attempts": outgoing.attempt, "response_status": answer.status,
            "latency_ms": answer.latency_ms, "last_error": (answer.error or None) and
            answer.error[:200], "last_attempt_at": now}
        if answer.ok:
            values.update(status=DELIVERED, delivered_at=now)
            outbox.finish_job(session, outgoing.job_id)
            session.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == outgoing.endpoint_id)
                            .values(failing_since=None))
        else:
            transient = not answer.refused
            again = transient and outgoing.attempt < policy.max_attempts
            values["status"] = PENDING if again else FAILED
            failures.append(outbox.Failure(outgoing.job_id, outgoing.attempt,
                                           answer.error or "failed", transient=transient))
            if _failed(session, outgoing.endpoint_id, answer, now, disable_after):
                disabled.append(outgoing.endpoint_id)
        session.execute(update(DELIVERIES).where(DELIVERIES.c.id == outgoing.delivery_id)
                        .values(**values))
    outbox.retry_jobs(session, failures, now=now, policy=policy, rng=rng)
    # A delivery given up on keeps its record in the delivery log; its job goes.
    given_up = [f.job_id for f in failures
                if not (f.transient and f.attempts < policy.max_attempts)]
    if given_up:
        session.execute(delete(JOBS).where(outbox.in_ids(session, JOBS.c.id, given_up)))
    return disabled


def _failed(session: Session, endpoint_id: int, answer: Answer, now: dt.datetime,
            disable_after: dt.timedelta) -> bool:
    """Count a failure in the endpoint's run; disable it once the run is long enough."""
    endpoint = session.execute(
        select(ENDPOINTS.c.enabled, ENDPOINTS.c.failing_since)
        .where(ENDPOINTS.c.id == endpoint_id).with_for_update()).one_or_none()
    if endpoint is None or not endpoint.enabled:
        return False
    since = endpoint.failing_since or now
    values: dict[str, Any] = {"failing_since": since}
    turned_off = now - since >= disable_after
    if turned_off:
        values.update(
            enabled=False, disabled_at=now, updated_at=now,
            disabled_reason=(f"Deliveries failed without a success since "
                             f"{since:%Y-%m-%d %H:%M} UTC; the last: {answer.error}")[:500])
    session.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(**values))
    return turned_off
