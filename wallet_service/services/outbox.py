"""The transactional outbox and its delivery queue: one module for both ends.

**Writing.** Every visible change of a card gets a new version, a distinct
``Last-Modified`` and a ``card_changes`` row, all in the caller's transaction
(:func:`publish_change`, :func:`publish_cards`, :func:`publish_program_change`). The same
transaction marks its session (:data:`CHANGED`), and once it commits a hook wakes the
workers (``services.wake``, ``wallet_service.wakeup``). Requests write nothing else for
delivery. Workers then:

1. **sequence** pending changes: give each changed card the next update tags from the
   single counter row and queue one push per registered device. The counter's row lock is
   held until commit, so tags become visible in the order they were handed out: a device
   that polls with tag *t* can never miss a card that commits later with a tag below *t*
   (apple-wallet spec §3.7, "beware commit order"). A push job is created in the same
   transaction as the tags, so a device is never pushed before it can see the change.
   Coalescing has a leading and a trailing edge, per device and window (``debounce``):

   * a *quiet* device (no push within the window, none waiting or in flight) is due at
     once: the first change of a card reaches the phone without waiting;
   * a device pushed within the window keeps a ``sent`` row until the window ends; a change
     meanwhile turns that row into the one *trailing* push, due at the window's end, and
     later changes merge into it. A device whose push is in flight gets its trailing push a
     window from now. A change is never lost: it either merges into a push that is not yet
     claimed (its row is locked here, so no worker claims it before this commit) or gets
     a push of its own.

   So a burst of changes to one card gives at most two pushes per window, and every change
   is followed by a push the device has not yet answered.
2. **claim** due jobs with ``FOR UPDATE SKIP LOCKED`` and a lease, so several workers share
   the queue without sending a job twice at the same time, and a crashed worker's jobs come
   back when the lease runs out.
3. **record** what APNs answered (spec §4.4): a delivered job becomes the device's ``sent``
   row until its window ends (deleted at once when there is no window); invalid tokens
   remove the device's registrations; throttling and server errors retry with jittered
   exponential backoff; everything is logged in ``push_attempts``.

Every step is a few set-based statements per batch (``INSERT … SELECT``, ``UPDATE … FROM``,
one parameter for a whole set of ids), so a design change to tens of thousands of cards
costs the database a handful of statements per few thousand pushes, not one per device.

APNs and Google jobs share one retry policy (:class:`RetryPolicy`), with its parameters per
channel. Google jobs keep a plain trailing debounce: the Google API is rate-limited and
each object update is a full write.

Webhook deliveries ride the same queue (channel ``webhook``, one job per delivery), written
by the request with the event (``services.webhooks``) and sent by
``services.webhook_delivery`` with its own retry parameters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from sqlalchemy import BigInteger
from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import Text
from sqlalchemy import and_
from sqlalchemy import any_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..db import dialect_insert
from ..db import run
from ..models import CardChange
from ..models import CardUpdateTag
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
from ..tracing import current_request_id
from . import bulk
from . import wallet_events
from .wake import CHANGED as CHANGED  # the wake-up's names, read here by ``wakeup``
from .wake import CHANNEL as CHANNEL
from .wake import wake_workers
from .webhooks import CHANNEL as WEBHOOK

CHANGES = CardChange.__table__
JOBS = DeliveryJob.__table__
CARDS = LoyaltyCard.__table__
DEVICES = Device.__table__
REGS = Registration.__table__
COUNTER = UpdateCounter.__table__
TAGS = CardUpdateTag.__table__
OBJECTS = GoogleObject.__table__

APNS = "apns"
GOOGLE = "google"

# Job states (``delivery_jobs.status``).
PENDING = "pending"
SENDING = "sending"
SENT = "sent"  # the device's last push, kept until its coalescing window ends
FAILED = "failed"



def id_set(session: Session, ids: Iterable[int]) -> Select[Any]:
    """``ids`` as a one-column subquery for ``IN``, sent as ONE bind parameter (an array on
    PostgreSQL, a JSON list on SQLite): an expanded ``IN`` sends one parameter per id, and
    both databases cap the parameters of a statement (65,535 and 32,766)."""
    return value_set(session, ids, BigInteger)


def value_set(session: Session, values: Iterable[Any], type_: Any) -> Select[Any]:
    """:func:`id_set` for values of any column type (``type_``: ``BigInteger``, ``String``).
    On PostgreSQL the set is planned as a set, so the planner can look each value up in
    an index; an expanded ``IN`` of thousands of parameters is filtered row by row."""
    listed = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return select(func.unnest(_postgres_array(listed, type_)))
    return select(func.json_each(bindparam(None, json.dumps(listed))).table_valued("value").c.value)


def _postgres_array(values: list[Any], type_: Any) -> Any:
    """``values`` as one PostgreSQL array parameter. Integers go as one comma-separated
    text that the server splits (``string_to_array``): the driver writes an array element
    by element in Python, 0.8 ms for 2,000 ids against 0.02 ms for the joined text, and a
    fan-out's claims and records send several such sets per batch."""
    if type_ is BigInteger or isinstance(type_, BigInteger):
        joined = ",".join(str(int(v)) for v in values)
        return cast(func.string_to_array(bindparam(None, joined, type_=Text), ","),
                    ARRAY(BigInteger))
    return bindparam(None, values, type_=ARRAY(type_))


def in_ids(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column IN ids``, the ids sent as one bind parameter (see :func:`id_set`)."""
    return in_values(session, column, ids, BigInteger)


def in_values(session: Session, column: Any, values: Iterable[Any], type_: Any
              ) -> ColumnElement[bool]:
    """``column IN values`` for values of ``type_``, sent as one bind parameter. On
    PostgreSQL it is ``column = ANY(array)``: a plan for the column's own index whatever the
    planner's statistics say, also once the statement is prepared and planned for any array
    (a generic plan). A semi-join with an ``unnest`` is estimated at a few rows there, and
    beside another condition of the statement (the merchant) it can be planned as a scan of
    all of that merchant's rows."""
    listed = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(_postgres_array(listed, type_))
    return column.in_(value_set(session, listed, type_))


# --- writing: in the request's transaction ------------------------------------------------

_PUBLISH = insert(CHANGES)
#: :data:`_PUBLISH` of many changes on PostgreSQL, each column an array, in their order: one
#: statement of four parameters however many changes there are.
_PUBLISH_MANY = text(
    "INSERT INTO card_changes (card_id, version, created_at, request_id) "
    "SELECT c.card_id, c.version, c.created_at, CAST(:request_id AS VARCHAR) "
    "FROM unnest(CAST(:card_ids AS BIGINT[]), CAST(:versions AS INTEGER[]), "
    "CAST(:created_at AS TIMESTAMP WITH TIME ZONE[])) WITH ORDINALITY "
    "AS c(card_id, version, created_at, ordinality) ORDER BY c.ordinality")


def next_last_modified(previous: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """``max(now truncated to the second, previous + 1 s)``: every version gets its own
    HTTP-date, so a device never keeps an older version on a 304 (spec §3.7, bug 6)."""
    candidate = now.replace(microsecond=0)
    if previous is not None and candidate <= previous:
        candidate = previous.replace(microsecond=0) + dt.timedelta(seconds=1)
    return candidate


def publish_change(session: Session, card_id: int, version: int, now: dt.datetime) -> None:
    """Queue the change for the devices and wallets that show this card, with the id of
    the request that made it (``tracing``)."""
    run(session, _PUBLISH, {"card_id": card_id, "version": version, "created_at": now,
                            "request_id": current_request_id()})
    _wake_workers(session)


def publish_changes(session: Session, changes: Sequence[tuple[int, int, dt.datetime]]
                    ) -> None:
    """:func:`publish_change` for many ``(card_id, version, now)`` at once: one multi-row
    ``INSERT`` and one wake-up."""
    request_id = current_request_id()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PUBLISH_MANY, {
            "card_ids": [card_id for card_id, _, _ in changes],
            "versions": [version for _, version, _ in changes],
            "created_at": [now for _, _, now in changes], "request_id": request_id})
        _wake_workers(session)
        return
    session.execute(_PUBLISH, [
        {"card_id": card_id, "version": version, "created_at": now, "request_id": request_id}
        for card_id, version, now in changes])
    _wake_workers(session)


def publish_cards(session: Session, card_ids: list[int], now: dt.datetime) -> int:
    """A change these cards show without a change of their own columns (a coupon, the
    program's design): bump each one's version and ``Last-Modified`` and queue it."""
    if not card_ids:
        return 0
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.version, CARDS.c.last_modified)
        .where(in_ids(session, CARDS.c.id, sorted(set(card_ids))))
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
    return bump_locked(session, rows, now)


def bump_locked(session: Session, rows: Sequence[Any], now: dt.datetime,
                **values: Any) -> int:
    """Give each of these locked cards (rows with ``id``, ``version``, ``last_modified``)
    its next version and ``Last-Modified``, set ``values`` (the same for all) and queue the
    changes: set-based, one ``UPDATE`` per distinct new ``Last-Modified`` (usually one: only
    cards changed within this second need a later one) and one ``INSERT … SELECT``, however
    many cards there are. Returns how many cards changed."""
    if not rows:
        return 0
    by_date: dict[dt.datetime, list[int]] = defaultdict(list)
    for r in rows:
        by_date[next_last_modified(r.last_modified, now)].append(r.id)
    bump = update(CARDS).values(
        version=CARDS.c.version + 1, last_modified=bindparam("lm"), updated_at=bindparam("now"),
        **{name: bindparam(f"set_{name}") for name in values})
    extra = {f"set_{name}": value for name, value in values.items()}
    for last_modified, ids in by_date.items():
        session.execute(bump.where(in_ids(session, CARDS.c.id, ids)),
                        {"lm": last_modified, "now": now, **extra})
    session.execute(insert(CHANGES).from_select(
        ["card_id", "version", "created_at", "request_id"],
        select(CARDS.c.id, CARDS.c.version, literal(now, CHANGES.c.created_at.type),
               literal(current_request_id(), CHANGES.c.request_id.type))
        .where(in_ids(session, CARDS.c.id, [r.id for r in rows]))))
    _wake_workers(session)
    return len(rows)


def _wake_workers(session: Session) -> None:
    """Wake the workers when this transaction commits (see the module docstring)."""
    wake_workers(session)


# --- delivering: in the worker ------------------------------------------------------------


def sequence_changes(
    session: Session, *, now: dt.datetime, debounce: dt.timedelta, limit: int = 5000
) -> int:
    """Turn up to ``limit`` pending changes into update tags and push jobs, coalescing per
    device within ``debounce`` (leading and trailing edge); returns how many changes were
    consumed."""
    changes = session.execute(
        select(CHANGES.c.id, CHANGES.c.card_id, CHANGES.c.request_id)
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
    cards = id_set(session, card_ids)
    # The tags live apart from the cards (``card_update_tags``): this takes no card's row
    # lock, so it never waits for a request changing a card, nor a request for it. Only
    # sequencers write tags, one at a time (the counter's row lock).
    ranked = select(
        CARDS.c.id,
        (func.row_number().over(order_by=CARDS.c.id) + literal(top - len(card_ids), BigInteger)),
    ).where(CARDS.c.id.in_(cards))
    upsert = dialect_insert(session, TAGS).from_select(["card_id", "update_seq"], ranked)
    session.execute(upsert.on_conflict_do_update(
        index_elements=[TAGS.c.card_id], set_={"update_seq": upsert.excluded.update_seq}))

    devices = select(REGS.c.device_id).where(REGS.c.card_id.in_(cards)).distinct()
    _queue_pushes(session, devices.subquery(), now, debounce)
    objects = select(OBJECTS.c.card_id).where(OBJECTS.c.card_id.in_(cards),
                                              OBJECTS.c.inserted.is_(True))
    _queue_debounced(session, GOOGLE, objects.subquery(), now, debounce)
    _carry_changes(session, changes, cards, objects)
    consumed = id_set(session, [c.id for c in changes])
    session.execute(delete(CHANGES).where(CHANGES.c.id.in_(consumed)))
    return len(changes)


def refresh_statistics(session: Session) -> None:
    """On PostgreSQL, ``ANALYZE`` the outbox and the delivery queue. A fan-out grows them from
    nothing to hundreds of thousands of rows within seconds, long before autovacuum looks;
    planned with the statistics of an empty queue (a nested loop over "one" row), the
    sequencing statements grow quadratic with the backlog. Sampling costs milliseconds; when
    autovacuum or another worker holds the tables for it, their statistics will do. The
    caller commits."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SET LOCAL lock_timeout = '200ms'"))
    try:
        with session.begin_nested():
            session.execute(text("ANALYZE card_changes, delivery_jobs"))
    except OperationalError:
        pass


#: How many changes a job names in its ``changes`` (the newest; a long burst names its end).
CARRIED = 20


def _carry_changes(session: Session, changes: Sequence[Any], cards: Any,
                   objects: Select[Any]) -> None:
    """Note on each waiting job the changes it now carries (``change_id:request_id``), so
    that its delivery logs them: one statement to read the jobs, one batched update."""
    by_card: dict[int, list[str]] = defaultdict(list)
    for c in changes:
        by_card[c.card_id].append(f"{c.id}:{c.request_id or '-'}")
    carried: dict[tuple[str, int], list[str]] = defaultdict(list)
    for device_id, card_id in session.execute(
            select(REGS.c.device_id, REGS.c.card_id).where(REGS.c.card_id.in_(cards))):
        carried[(APNS, device_id)].extend(by_card[card_id])
    for (card_id,) in session.execute(objects):
        carried[(GOOGLE, card_id)].extend(by_card[card_id])
    if not carried:
        return
    devices = {target for channel, target in carried if channel == APNS}
    jobs = session.execute(
        select(JOBS.c.id, JOBS.c.channel, JOBS.c.target_id, JOBS.c.changes)
        .where(JOBS.c.status == PENDING,
               or_(and_(JOBS.c.channel == APNS, in_ids(session, JOBS.c.target_id, devices)),
                   and_(JOBS.c.channel == GOOGLE, JOBS.c.target_id.in_(cards))))
    ).all()
    params = []
    for job in jobs:
        items = carried.get((job.channel, job.target_id))
        if items:
            merged = [*(job.changes or "").split(), *items][-CARRIED:]
            while len(" ".join(merged)) > 1000:
                merged.pop(0)
            params.append({"job": job.id, "carries": " ".join(merged)})
    if not params:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the whole set: an ``executemany`` is still one ``UPDATE`` per
        # job on the server, and a fan-out's batch carries thousands.
        carries = select(
            func.unnest(bindparam(None, [p["job"] for p in params], type_=ARRAY(BigInteger)))
            .label("job"),
            func.unnest(bindparam(None, [p["carries"] for p in params], type_=ARRAY(Text)))
            .label("carries"),
        ).subquery()
        session.execute(update(JOBS).where(JOBS.c.id == carries.c.job)
                        .values(changes=carries.c.carries))
        return
    session.execute(update(JOBS).where(JOBS.c.id == bindparam("job"))
                    .values(changes=bindparam("carries")), params)


def _waiting(channel: str, target: Any) -> Any:
    """Whether ``target`` has a waiting job on ``channel``: a correlated ``EXISTS``, which
    the database runs as a (anti-)join. ``target NOT IN (SELECT …)`` cannot be one (NULLs),
    and once the waiting jobs outgrow the sort memory it scans them again for every target:
    quadratic in a campaign of hundreds of thousands of cards."""
    other = JOBS.alias("waiting")
    return exists().where(other.c.channel == channel, other.c.status == PENDING,
                          other.c.target_id == target)


def _lock_waiting(session: Session, channel: str, targets: Any) -> None:
    """Merging into a waiting job is safe only if no worker claims it before this commit (it
    would push before these tags are visible): lock the jobs that changes merge into; a
    claimer skips them (``SKIP LOCKED``) until then."""
    session.execute(
        select(JOBS.c.id)
        .where(JOBS.c.channel == channel, JOBS.c.status == PENDING,
               _among(session, JOBS.c.target_id, select(targets.c[0])))
        .with_for_update()
    )


def _among(session: Session, column: Any, subquery: Select[Any]) -> ColumnElement[bool]:
    """``column IN (subquery)``; on PostgreSQL ``column = ANY(ARRAY(subquery))``, which is
    planned as a look-up per value (or a hashed filter) whatever the statistics say. With
    those of a queue that was empty when last analyzed, ``IN`` was planned as a nested loop
    over every waiting job for each device: 0.34 s for a batch of 500 cards against 2,500
    waiting jobs."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(func.array(subquery.scalar_subquery()))
    return column.in_(subquery)


def _queue_pushes(session: Session, devices: Any, now: dt.datetime,
                  window: dt.timedelta) -> None:
    """One waiting push per device, leading and trailing edge (module docstring, step 1)."""
    device = devices.c.device_id
    _lock_waiting(session, APNS, devices)
    if window:
        # Pushed within the window: its ``sent`` row becomes the trailing push, due at the
        # window's end (the newest row, should a device have two).
        # Joined (``UPDATE … FROM``), not ``id IN (…)``: with statistics from before a fan-out
        # the planner ran that subquery again for every ``sent`` row.
        newest = (
            select(func.max(JOBS.c.id).label("id"))
            .where(JOBS.c.channel == APNS, JOBS.c.status == SENT, JOBS.c.available_at > now,
                   _among(session, JOBS.c.target_id, select(device)),
                   ~_waiting(APNS, JOBS.c.target_id))
            .group_by(JOBS.c.target_id)
            .subquery()
        )
        session.execute(
            update(JOBS).where(JOBS.c.id == newest.c.id, JOBS.c.status == SENT)
            .values(status=PENDING, attempts=0, lease_until=None, last_error=None)
        )
    # The rest get a push of their own: a window from now when one is in flight (or was
    # just recorded, after the update above looked), at once when the device is quiet.
    pushed = JOBS.alias("pushed")
    busy = exists().where(
        pushed.c.channel == APNS, pushed.c.target_id == device,
        or_(pushed.c.status == SENDING,
            and_(pushed.c.status == SENT, pushed.c.available_at > now)),
    )
    when = JOBS.c.available_at.type
    due = case((busy, literal(now + window, when)), else_=literal(now, when))
    _insert_jobs(session, APNS, device, due, now)


def _queue_debounced(session: Session, channel: str, targets: Any, now: dt.datetime,
                     debounce: dt.timedelta) -> None:
    """One waiting job per target, due ``debounce`` after the first change: merge into a
    waiting one (locked), else add one."""
    _lock_waiting(session, channel, targets)
    _insert_jobs(session, channel, targets.c[0],
                 literal(now + debounce, JOBS.c.available_at.type), now)


def _insert_jobs(session: Session, channel: str, target: Any, due: Any,
                 now: dt.datetime) -> None:
    """A pending job, due at ``due``, for every ``target`` (a column of a subquery) that has
    no waiting job on ``channel``: one ``INSERT … SELECT``."""
    session.execute(insert(JOBS).from_select(
        ["channel", "target_id", "status", "available_at", "attempts", "created_at"],
        select(literal(channel), target, literal(PENDING), due, literal(0),
               literal(now, JOBS.c.created_at.type))
        .where(~_waiting(channel, target)),
    ))


@dataclass(frozen=True)
class Claimed:
    job_id: int
    device_id: int
    push_token: str
    attempts: int
    #: The changes the push carries (``change_id:request_id ...``), for its log line.
    changes: str | None = None


def claim_jobs(
    session: Session, channel: str, *, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[Any]:
    """Lease up to ``limit`` due jobs of ``channel`` to this worker (rows with ``id``,
    ``target_id``, ``attempts`` before this try); the caller commits at once. Jobs whose
    worker died come first (their lease ran out), then waiting jobs by due time."""
    rows = _lock_due(session, channel, limit,
                     and_(JOBS.c.status == SENDING, JOBS.c.lease_until < now))
    if len(rows) < limit:
        rows += _lock_due(session, channel, limit - len(rows),
                          and_(JOBS.c.status == PENDING, JOBS.c.available_at <= now))
    if rows:
        session.execute(
            update(JOBS).where(in_ids(session, JOBS.c.id, [r.id for r in rows]))
            .values(status=SENDING, lease_until=now + lease, attempts=JOBS.c.attempts + 1)
        )
    return rows


def _lock_due(session: Session, channel: str, limit: int, due: Any) -> list[Any]:
    # Ordered by due time only: the claim index gives that order, so the scan stops after
    # ``limit`` rows instead of sorting a whole fan-out's backlog on every claim.
    return list(session.execute(
        select(JOBS.c.id, JOBS.c.target_id, JOBS.c.attempts, JOBS.c.changes)
        .where(JOBS.c.channel == channel, due)
        .order_by(JOBS.c.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all())


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


@dataclass(frozen=True)
class Failure:
    """A try that did not deliver: the job, how many tries it has had, why, and whether
    trying again may help."""

    job_id: int
    attempts: int
    error: str
    transient: bool = True


_RETRY = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job"))
    .values(status=bindparam("new_status"),
            available_at=func.coalesce(bindparam("due", type_=JOBS.c.available_at.type),
                                       JOBS.c.available_at),
            lease_until=None, last_error=bindparam("error"))
)


def retry_jobs(session: Session, failures: Sequence[Failure], *, now: dt.datetime,
               policy: RetryPolicy, rng: _Random) -> None:
    """Back to the queue after the policy's delay, or ``failed`` once the policy's attempts
    are used up or the failure is not ``transient`` (one batched statement)."""
    if not failures:
        return
    params = []
    for f in failures:
        again = f.transient and f.attempts < policy.max_attempts
        params.append({
            "job": f.job_id, "error": f.error[:200],
            "new_status": PENDING if again else FAILED,
            "due": now + dt.timedelta(seconds=policy.delay(f.attempts, rng)) if again else None,
        })
    session.execute(_RETRY, params)


def retry_job(session: Session, job_id: int, attempts: int, *, now: dt.datetime,
              policy: RetryPolicy, rng: _Random, error: str, transient: bool = True) -> None:
    """:func:`retry_jobs` for one job."""
    retry_jobs(session, [Failure(job_id, attempts, error, transient)], now=now, policy=policy,
               rng=rng)


def claim_push_jobs(
    session: Session, *, now: dt.datetime, lease: dt.timedelta, limit: int = 2000
) -> list[Claimed]:
    """Lease up to ``limit`` due push jobs to this worker (the caller commits at once)."""
    rows = claim_jobs(session, APNS, now=now, lease=lease, limit=limit)
    if not rows:
        return []
    tokens = dict(session.execute(
        select(DEVICES.c.id, DEVICES.c.push_token)
        .where(in_ids(session, DEVICES.c.id, {r.target_id for r in rows}))
    ).all())
    gone = [r.id for r in rows if r.target_id not in tokens]
    if gone:  # the device unregistered meanwhile
        session.execute(delete(JOBS).where(in_ids(session, JOBS.c.id, gone)))
    return [Claimed(r.id, r.target_id, tokens[r.target_id], r.attempts + 1, r.changes)
            for r in rows if r.target_id in tokens]


def end_windows(session: Session, *, now: dt.datetime, limit: int = 10000) -> int:
    """Forget up to ``limit`` devices' last pushes whose window has ended (their ``sent``
    rows); returns how many. Rows another worker is forgetting are skipped."""
    ended = (select(JOBS.c.id)
             .where(JOBS.c.channel == APNS, JOBS.c.status == SENT, JOBS.c.available_at <= now)
             .limit(limit).with_for_update(skip_locked=True))
    result = session.execute(delete(JOBS).where(JOBS.c.id.in_(ended)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def record_outcomes(
    session: Session,
    results: Sequence[tuple[Claimed, PushResult]],
    *,
    now: dt.datetime,
    policy: RetryPolicy,
    rng: _Random,
    window: dt.timedelta = dt.timedelta(0),
) -> None:
    """Store what happened to each claimed push and settle its job: a delivered one stays
    as the device's ``sent`` row until ``window`` has passed (see :func:`sequence_changes`)."""
    if not results:
        return
    bulk.insert(session, PushAttempt.__table__, [
        {"device_id": c.device_id, "token_prefix": c.push_token[:8], "status": r.status,
         "reason": (r.reason or "")[:100] or None, "outcome": r.outcome.value,
         "apns_id": r.apns_id, "created_at": now}
        for c, r in results
    ])
    done = [c.job_id for c, r in results if r.outcome is Outcome.DELIVERED]
    if done:
        delivered = in_ids(session, JOBS.c.id, done)
        if window:
            session.execute(update(JOBS).where(delivered).values(
                status=SENT, available_at=now + window, lease_until=None, attempts=0,
                last_error=None, changes=None))
        else:
            session.execute(delete(JOBS).where(delivered))
    dead = [c.device_id for c, r in results if r.outcome is Outcome.INVALID_TOKEN]
    if dead:
        # Their cards first, all at once and in id order, as every other locker of cards
        # takes them, then the devices (the order registrations take too).
        wallet_events.lock_cards(session, session.scalars(
            select(REGS.c.card_id).where(in_ids(session, REGS.c.device_id, dead))).all())
    for claimed, outcome in results:
        if outcome.outcome is Outcome.INVALID_TOKEN:
            _forget_device(session, claimed, outcome, now)
    retry_jobs(session, [
        Failure(c.job_id, c.attempts, _describe(r), transient=r.outcome is Outcome.RETRY)
        for c, r in results if r.outcome in (Outcome.RETRY, Outcome.FAILED)
    ], now=now, policy=policy, rng=rng)


def next_due(session: Session, now: dt.datetime) -> dt.datetime | None:
    """When a worker next has something to do: ``now`` while changes wait to be sequenced,
    else the earliest time a waiting job falls due or a lease runs out; ``None`` when there
    is nothing at all (one statement)."""
    firsts = [
        select(func.min(column)).where(JOBS.c.channel == channel, JOBS.c.status == status)
        .scalar_subquery()
        for channel in (APNS, GOOGLE, WEBHOOK)
        for status, column in ((PENDING, JOBS.c.available_at), (SENDING, JOBS.c.lease_until))
    ]
    waiting, *times = session.execute(select(exists(select(CHANGES.c.id)), *firsts)).one()
    if waiting:
        return now
    known = [t for t in times if t is not None]
    return min(known) if known else None


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
    token_now = session.scalar(
        select(DEVICES.c.push_token).where(DEVICES.c.id == claimed.device_id))
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


@dataclass(frozen=True)
class QueueStats:
    """How much waits, and how long: for the metrics (read at scrape time)."""

    changes: int  # card changes not yet sequenced
    oldest_change_age: float  # seconds since the oldest of them was published (0: none)
    jobs: dict[tuple[str, str], int]  # (channel, status) → jobs
    overdue: dict[str, float]  # channel → seconds the longest-waiting due job is late


def queue_stats(session: Session, now: dt.datetime) -> QueueStats:
    """The outbox and the delivery queue at ``now`` (three aggregate statements)."""
    changes, oldest = session.execute(
        select(func.count(CHANGES.c.id), func.min(CHANGES.c.created_at))).one()
    jobs = {(channel, status): n for channel, status, n in session.execute(
        select(JOBS.c.channel, JOBS.c.status, func.count(JOBS.c.id))
        .group_by(JOBS.c.channel, JOBS.c.status))}
    due = dict(session.execute(
        select(JOBS.c.channel, func.min(JOBS.c.available_at))
        .where(JOBS.c.status == PENDING, JOBS.c.available_at <= now)
        .group_by(JOBS.c.channel)).all())
    return QueueStats(
        changes=int(changes),
        oldest_change_age=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        jobs=jobs,
        overdue={channel: max((now - at).total_seconds(), 0.0) for channel, at in due.items()},
    )
