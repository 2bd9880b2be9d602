"""Console imports run by the worker: a customer base of 100,000 rows takes a minute or
more to import, longer than a page request should wait, so the console leaves the file in
an import job and follows its progress.

**Life of a job.** :func:`enqueue` checks what can be checked at once (the program is the
merchant's, the file is CSV text, the mapping fits its header), counts the rows and stores
the file, ``queued``, waking the workers at commit. A worker takes it with :func:`claim`
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, where several workers may look at once; SQLite
has one worker) and holds it ``running`` under a lease. The import itself
(``services.imports``) writes in the worker's transaction; after each chunk of rows the
worker records the rows done in a short transaction of its own (:func:`record_progress`),
which also extends the lease, so the page reads the progress while the import's
transaction is still open. The job ends in that same transaction: :func:`finish` stores the
report beside the imported rows and the audit entry, so either all of them are committed or
none is; a failure rolls the import back and :func:`fail` records why.

**A worker that dies** mid-import leaves its transaction uncommitted (nothing of the import
is written) and its job ``running``; once the lease has run out the next claim takes the job
again, up to :data:`MAX_ATTEMPTS` times, then marks it failed. Each claim counts an attempt,
and progress and the end of a job are recorded only for the attempt that holds it: a worker
that was only slow, and whose job was taken over meanwhile, rolls its import back.

**The file is personal data**: it is kept only while the job waits or runs (``data`` is
emptied when the job ends, done or failed); the report keeps the rejected rows' numbers,
fields and reasons.

On SQLite one transaction writes at a time and the import's holds the lock until it
commits, so no progress is written in between: the page shows the job running until it is
done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import defer

from ..db import utcnow
from ..errors import ResourceNotFound
from ..models import ConsoleUser
from ..models import ImportJob
from . import audit
from . import imports
from .programs import get_program
from .wake import wake_workers

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

#: Claims of one job before a worker's death is taken as the job's fault.
MAX_ATTEMPTS = 3
#: The error of a job given up after :data:`MAX_ATTEMPTS` (a console word).
ABANDONED = "import_job_abandoned"
#: The error of a job that failed for a reason of the service's, not the file's (a console
#: word; the worker's log has the details).
CRASHED = "import_job_crashed"

#: How long a job may wait before its page says that no worker seems to run.
NO_WORKER = dt.timedelta(minutes=1)
#: Rows imported between two progress records.
CHUNK = imports.CHUNK

JOBS = ImportJob.__table__


class TakenOver(Exception):
    """The job is no longer this attempt's: its lease ran out and another claim took it."""


@dataclass(frozen=True)
class Claimed:
    """A job a worker holds: what it needs to run it, and the ``attempt`` it holds it by."""

    id: int
    merchant_id: int
    program_id: int
    created_by: int
    created_ip: str | None
    data: bytes
    mapping: dict[str, str | None] | None
    attempt: int


def enqueue(session: Session, merchant_id: int, program_id: int, data: bytes, *,
            created_by: int, filename: str, mapping: Mapping[str, str | None] | None = None,
            ip: str | None = None, now: dt.datetime | None = None) -> ImportJob:
    """A job importing ``data`` into the program, queued for the worker (woken at commit).

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises InvalidInput: the file is not CSV text (``file``).
    :raises ValidationFailed: the mapping does not fit the file (``mapping``).
    """
    get_program(session, merchant_id, program_id)
    parsed = imports.read_csv(data)
    imports.column_mapping(parsed.header, mapping)
    job = ImportJob(merchant_id=merchant_id, program_id=program_id, created_by=created_by,
                    created_ip=ip, filename=filename[:255], data=data,
                    mapping=dict(mapping) if mapping else None, status=QUEUED,
                    attempts=0, rows_done=0, rows_total=len(parsed.rows),
                    created_at=now or utcnow())
    session.add(job)
    session.flush()
    wake_workers(session)
    return job


def get_job(session: Session, merchant_id: int, job_id: int) -> ImportJob:
    """The job without its file (a page asks every second while it runs).

    :raises ResourceNotFound: missing, or another merchant's.
    """
    job = session.scalar(select(ImportJob).where(ImportJob.id == job_id,
                                                 ImportJob.merchant_id == merchant_id)
                         .options(defer(ImportJob.data)))
    if job is None:
        raise ResourceNotFound(f"import {job_id} not found", field="job_id")
    return job


def recent_jobs(session: Session, merchant_id: int, limit: int = 10) -> list[ImportJob]:
    """The merchant's latest jobs, newest first (without their files and reports)."""
    return list(session.scalars(
        select(ImportJob).where(ImportJob.merchant_id == merchant_id)
        .order_by(ImportJob.id.desc()).limit(limit)
        .options(defer(ImportJob.data), defer(ImportJob.report))))


def waits_too_long(job: ImportJob, now: dt.datetime) -> bool:
    """Whether a queued job has waited longer than :data:`NO_WORKER` (no worker runs)."""
    return job.status == QUEUED and now - job.created_at > NO_WORKER


def claim(session: Session, *, now: dt.datetime, lease: dt.timedelta) -> Claimed | None:
    """Lease the oldest waiting job to this worker, or one whose worker's lease ran out;
    the caller commits at once. A job whose lease ran out :data:`MAX_ATTEMPTS` times is
    marked failed instead."""
    stale = and_(JOBS.c.status == RUNNING, JOBS.c.lease_until < now)
    session.execute(update(JOBS).where(stale, JOBS.c.attempts >= MAX_ATTEMPTS)
                    .values(status=FAILED, error=ABANDONED, data=None, finished_at=now,
                            lease_until=None))
    row = session.execute(
        select(JOBS.c.id, JOBS.c.merchant_id, JOBS.c.program_id, JOBS.c.created_by,
               JOBS.c.created_ip, JOBS.c.data, JOBS.c.mapping, JOBS.c.attempts)
        .where(or_(JOBS.c.status == QUEUED, stale))
        .order_by(JOBS.c.id).limit(1)
        .with_for_update(skip_locked=True)).first()
    if row is None:
        return None
    attempt = row.attempts + 1
    # Compare-and-set on the attempt as well as the row lock: where the lock is not taken
    # (SQLite), two claims still cannot both win.
    taken = session.execute(
        update(JOBS).where(JOBS.c.id == row.id, JOBS.c.attempts == row.attempts)
        .values(status=RUNNING, attempts=attempt, started_at=now, lease_until=now + lease,
                rows_done=0))
    if taken.rowcount != 1:
        return None
    return Claimed(row.id, row.merchant_id, row.program_id, row.created_by, row.created_ip,
                   bytes(row.data or b""), row.mapping, attempt)


def _held(job: Claimed) -> Any:
    return and_(JOBS.c.id == job.id, JOBS.c.status == RUNNING, JOBS.c.attempts == job.attempt)


def record_progress(session: Session, job: Claimed, done: int, total: int, *,
                    now: dt.datetime, lease: dt.timedelta) -> bool:
    """Record ``done`` of ``total`` rows and extend the lease; False when the job is no
    longer this attempt's (taken over after its lease ran out)."""
    result = session.execute(update(JOBS).where(_held(job)).values(
        rows_done=done, rows_total=total, lease_until=now + lease))
    return bool(result.rowcount == 1)


def run(session: Session, job: Claimed, *, default_region: str,
        progress: Callable[[int, int], None] | None = None,
        chunk: int = CHUNK) -> imports.ImportReport:
    """Import the job's file in the session's transaction, with the audit entry of the
    user who uploaded it (the caller then calls :func:`finish` and commits).

    :raises WalletError: what :func:`.imports.import_members` raises.
    """
    report = imports.import_members(session, job.merchant_id, job.program_id, job.data,
                                    mapping=job.mapping, default_region=default_region,
                                    progress=progress, chunk=chunk)
    user = session.get(ConsoleUser, job.created_by)
    actor = audit.Actor("user", job.created_by, user.email if user else str(job.created_by),
                        job.created_ip)
    audit.record(session, merchant_id=job.merchant_id, actor=actor, action="members.import",
                 target=f"program:{job.program_id}",
                 changes={"rows": report.rows, "imported": report.imported,
                          "existing": report.existing, "rejected": len(report.rejected),
                          "job": job.id})
    return report


def finish(session: Session, job: Claimed, report: imports.ImportReport, *,
           now: dt.datetime) -> bool:
    """Mark the job done with its report and drop the file; False (the caller rolls back)
    when the job is no longer this attempt's."""
    result = session.execute(update(JOBS).where(_held(job)).values(
        status=DONE, report=dataclasses.asdict(report), rows_done=report.rows,
        rows_total=report.rows, data=None, finished_at=now, lease_until=None))
    return bool(result.rowcount == 1)


def fail(session: Session, job: Claimed, error: str, *, now: dt.datetime) -> bool:
    """Mark the job failed with ``error`` and drop the file; False when the job is no
    longer this attempt's."""
    result = session.execute(update(JOBS).where(_held(job)).values(
        status=FAILED, error=error, data=None, finished_at=now, lease_until=None))
    return bool(result.rowcount == 1)


def report_of(job: ImportJob) -> imports.ImportReport | None:
    """The report of a job that is done, as the import returned it."""
    if job.report is None:
        return None
    values = dict(job.report)
    values["rejected"] = [imports.Rejected(**r) for r in values.get("rejected") or ()]
    return imports.ImportReport(**values)
