"""The transactional outbox and its delivery queue: one module for both ends.

**Writing.** Every visible change of a card gets a new version, a distinct
``Last-Modified`` and a ``card_changes`` row, all in the caller's transaction
(:func:`publish_change`, :func:`publish_cards`, :func:`publish_program_change`). Requests
write nothing else for delivery. Workers then:

1. **sequence** pending changes: give each changed card the next update tags from the
   single counter row and create one pending push job per registered device. The counter's
   row lock is held until commit, so tags become visible in the order they were handed out:
   a device that polls with tag *t* can never miss a card that commits later with a tag
   below *t* (apple-wallet spec §3.7, "beware commit order"). A device that already has a
   pending job gets no second one, so a burst of changes becomes one push.
2. **claim** due jobs with ``FOR UPDATE SKIP LOCKED`` and a lease, so several workers share
   the queue without sending a job twice at the same time, and a crashed worker's jobs come
   back when the lease runs out.
3. **record** what APNs answered (spec §4.4): delivered jobs are deleted; invalid tokens
   remove the device's registrations; throttling and server errors retry with jittered
   exponential backoff; everything is logged in ``push_attempts``.

APNs and Google jobs share one retry policy (:class:`RetryPolicy`), with its parameters per
channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import CardChange
from ..models import DeliveryJob
from ..models import Device
from ..models import GoogleObject
from ..models import LoyaltyCard
from ..models import PushAttempt
from ..models import Registration
from ..models import UpdateCounter
from ..push import Outcome
from ..push import PushResult
from ..push import backoff_delay
from . import wallet_events

CHANGES = CardChange.__table__
JOBS = DeliveryJob.__table__
CARDS = LoyaltyCard.__table__
DEVICES = Device.__table__
REGS = Registration.__table__
COUNTER = UpdateCounter.__table__

APNS = "apns"
GOOGLE = "google"

_SET_SEQ = update(CARDS).where(CARDS.c.id == bindparam("cid")).values(update_seq=bindparam("seq"))

# --- writing: in the request's transaction ------------------------------------------------

_PUBLISH = insert(CHANGES)
_BUMP = (
    update(CARDS)
    .where(CARDS.c.id == bindparam("cid"))
    .values(version=bindparam("v"), last_modified=bindparam("lm"), updated_at=bindparam("now"))
)


def next_last_modified(previous: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """``max(now truncated to the second, previous + 1 s)``: every version gets its own
    HTTP-date, so a device never keeps an older version on a 304 (spec §3.7, bug 6)."""
    candidate = now.replace(microsecond=0)
    if previous is not None and candidate <= previous:
        candidate = previous.replace(microsecond=0) + dt.timedelta(seconds=1)
    return candidate


def publish_change(session: Session, card_id: int, version: int, now: dt.datetime) -> None:
    """Queue the change for the devices and wallets that show this card."""
    session.execute(_PUBLISH, {"card_id": card_id, "version": version, "created_at": now})


def publish_cards(session: Session, card_ids: list[int], now: dt.datetime) -> int:
    """A change these cards show without a change of their own columns (a coupon, the
    program's design): bump each one's version and ``Last-Modified`` and queue it."""
    if not card_ids:
        return 0
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified)
        .where(CARDS.c.id.in_(card_ids))
        .order_by(CARDS.c.id)
        .with_for_update()
    ).all()
    return _bump(session, rows, now)


def publish_program_change(session: Session, program_id: int, now: dt.datetime) -> int:
    """A change every card of the program shows (design, name, images): bump each card's
    version and ``Last-Modified`` and queue it; returns how many cards changed."""
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified)
        .where(CARDS.c.program_id == program_id)
        .order_by(CARDS.c.id)
        .with_for_update()
    ).all()
    return _bump(session, rows, now)


def _bump(session: Session, rows: list[Any], now: dt.datetime) -> int:
    if not rows:
        return 0
    session.execute(_BUMP, [
        {"cid": r.id, "v": r.version + 1, "lm": next_last_modified(r.last_modified, now),
         "now": now}
        for r in rows
    ])
    session.execute(_PUBLISH, [
        {"card_id": r.id, "version": r.version + 1, "created_at": now} for r in rows
    ])
    return len(rows)


# --- delivering: in the worker ------------------------------------------------------------


def sequence_changes(
    session: Session, *, now: dt.datetime, debounce: dt.timedelta, limit: int = 1000
) -> int:
    """Turn up to ``limit`` pending changes into update tags and push jobs; returns how many
    changes were consumed."""
    changes = session.execute(
        select(CHANGES.c.id, CHANGES.c.card_id)
        .order_by(CHANGES.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not changes:
        return 0
    card_ids = sorted({c.card_id for c in changes})
    top = session.execute(
        update(COUNTER)
        .where(COUNTER.c.id == 1)
        .values(value=COUNTER.c.value + len(card_ids))
        .returning(COUNTER.c.value)
    ).scalar_one()
    first = top - len(card_ids) + 1
    session.execute(_SET_SEQ, [{"cid": cid, "seq": first + i} for i, cid in enumerate(card_ids)])

    device_ids = set(session.scalars(
        select(REGS.c.device_id).where(REGS.c.card_id.in_(card_ids)).distinct()
    ))
    # Merging into a waiting job is safe only if no worker claims it before this commit
    # (it would push before these tags are visible): _queue locks the jobs it merges into.
    _queue(session, APNS, device_ids, now, debounce)
    _queue(session, GOOGLE, set(session.scalars(
        select(GoogleObject.card_id)
        .where(GoogleObject.card_id.in_(card_ids), GoogleObject.inserted.is_(True))
    )), now, debounce)
    session.execute(delete(CHANGES).where(CHANGES.c.id.in_([c.id for c in changes])))
    return len(changes)


def _queue(session: Session, channel: str, targets: set[int], now: dt.datetime,
           debounce: dt.timedelta) -> None:
    """One pending job per target: merge into a waiting one (locked, so no worker claims it
    before this commit), else add one."""
    if not targets:
        return
    waiting = set(session.scalars(
        select(JOBS.c.target_id)
        .where(JOBS.c.channel == channel, JOBS.c.status == "pending",
               JOBS.c.target_id.in_(targets))
        .with_for_update()
    ))
    fresh = sorted(targets - waiting)
    if fresh:
        session.execute(insert(JOBS), [
            {"channel": channel, "target_id": t, "status": "pending",
             "available_at": now + debounce, "attempts": 0, "created_at": now}
            for t in fresh
        ])


@dataclass(frozen=True)
class Claimed:
    job_id: int
    device_id: int
    push_token: str
    attempts: int


def claim_jobs(
    session: Session, channel: str, *, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[Any]:
    """Lease up to ``limit`` due jobs of ``channel`` to this worker (rows with ``id``,
    ``target_id``, ``attempts`` before this try); the caller commits at once."""
    due = or_(
        and_(JOBS.c.status == "pending", JOBS.c.available_at <= now),
        and_(JOBS.c.status == "sending", JOBS.c.lease_until < now),
    )
    rows = session.execute(
        select(JOBS.c.id, JOBS.c.target_id, JOBS.c.attempts)
        .where(JOBS.c.channel == channel, due)
        .order_by(JOBS.c.available_at, JOBS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(
            update(JOBS).where(JOBS.c.id.in_([r.id for r in rows]))
            .values(status="sending", lease_until=now + lease, attempts=JOBS.c.attempts + 1)
        )
    return list(rows)


def finish_job(session: Session, job_id: int) -> None:
    session.execute(delete(JOBS).where(JOBS.c.id == job_id))


class _Random(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again: jittered exponential backoff from ``base``
    seconds up to ``cap``, at most ``max_attempts`` tries in all. One policy for every
    channel; the worker gives each channel its parameters."""

    max_attempts: int
    base: float = 5.0
    cap: float = 900.0

    def delay(self, attempts: int, rng: _Random) -> float:
        """Seconds to wait after the ``attempts``-th try failed."""
        return backoff_delay(attempts - 1, base=self.base, cap=self.cap, rng=rng)


def retry_job(session: Session, job_id: int, attempts: int, *, now: dt.datetime,
              policy: RetryPolicy, rng: _Random, error: str, transient: bool = True) -> None:
    """Back to the queue after the policy's delay, or ``failed`` once the policy's attempts
    are used up or the failure is not ``transient``."""
    values: dict[str, Any] = {"lease_until": None, "last_error": error[:200]}
    if transient and attempts < policy.max_attempts:
        values.update(status="pending",
                      available_at=now + dt.timedelta(seconds=policy.delay(attempts, rng)))
    else:
        values.update(status="failed")
    session.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))


def claim_push_jobs(
    session: Session, *, now: dt.datetime, lease: dt.timedelta, limit: int = 500
) -> list[Claimed]:
    """Lease up to ``limit`` due push jobs to this worker (the caller commits at once)."""
    rows = claim_jobs(session, APNS, now=now, lease=lease, limit=limit)
    if not rows:
        return []
    tokens = dict(session.execute(
        select(DEVICES.c.id, DEVICES.c.push_token)
        .where(DEVICES.c.id.in_([r.target_id for r in rows]))
    ).all())
    gone = [r.id for r in rows if r.target_id not in tokens]
    if gone:  # the device unregistered meanwhile
        session.execute(delete(JOBS).where(JOBS.c.id.in_(gone)))
    return [Claimed(r.id, r.target_id, tokens[r.target_id], r.attempts + 1)
            for r in rows if r.target_id in tokens]


def record_outcomes(
    session: Session,
    results: Sequence[tuple[Claimed, PushResult]],
    *,
    now: dt.datetime,
    policy: RetryPolicy,
    rng: _Random,
) -> None:
    """Store what happened to each claimed push and settle its job."""
    session.execute(insert(PushAttempt.__table__), [
        {"device_id": c.device_id, "token_prefix": c.push_token[:8], "status": r.status,
         "reason": (r.reason or "")[:100] or None, "outcome": r.outcome.value,
         "apns_id": r.apns_id, "created_at": now}
        for c, r in results
    ])
    done = [c.job_id for c, r in results if r.outcome is Outcome.DELIVERED]
    if done:
        session.execute(delete(JOBS).where(JOBS.c.id.in_(done)))
    dead = [c.device_id for c, r in results if r.outcome is Outcome.INVALID_TOKEN]
    if dead:
        # Their cards first, all at once and in id order, as every other locker of cards
        # takes them, then the devices (the order registrations take too).
        wallet_events.lock_cards(session, session.scalars(
            select(REGS.c.card_id).where(REGS.c.device_id.in_(dead))).all())
    for claimed, outcome in results:
        if outcome.outcome is Outcome.INVALID_TOKEN:
            _forget_device(session, claimed, outcome, now)
        elif outcome.outcome in (Outcome.RETRY, Outcome.FAILED):
            retry_job(session, claimed.job_id, claimed.attempts, now=now, policy=policy,
                      rng=rng, error=_describe(outcome),
                      transient=outcome.outcome is Outcome.RETRY)


def _forget_device(session: Session, claimed: Claimed, outcome: PushResult,
                   now: dt.datetime) -> None:
    """APNs says the token is dead: drop the device and its registrations, unless the device
    registered again after APNs judged the token (spec §4.4, 410 nuance). A card left on no
    device is recorded as removed from Apple Wallet."""
    session.execute(delete(JOBS).where(JOBS.c.id == claimed.job_id))
    updated = session.scalar(select(DEVICES.c.updated_at).where(DEVICES.c.id == claimed.device_id))
    if updated is None:
        return
    if outcome.timestamp is not None:
        judged = dt.datetime.fromtimestamp(outcome.timestamp / 1000, dt.UTC)
        if updated > judged:
            return
    token_now = session.scalar(select(DEVICES.c.push_token).where(DEVICES.c.id == claimed.device_id))
    if token_now != claimed.push_token:
        return  # a new token arrived meanwhile; it deserves its own chance
    cards = session.execute(
        select(CARDS.c.id, CARDS.c.merchant_id).join(REGS, REGS.c.card_id == CARDS.c.id)
        .where(REGS.c.device_id == claimed.device_id)).all()
    session.execute(delete(REGS).where(REGS.c.device_id == claimed.device_id))
    session.execute(delete(DEVICES).where(DEVICES.c.id == claimed.device_id))
    for card_id, merchant_id in cards:
        if not wallet_events.apple_registrations(session, card_id):
            wallet_events.record(session, merchant_id=merchant_id, card_id=card_id,
                                 wallet=wallet_events.APPLE, event=wallet_events.REMOVED,
                                 cause="token_invalid", at=now)


def _describe(outcome: PushResult) -> str:
    return f"{outcome.status or 'no answer'} {outcome.reason or ''}".strip()[:200]
