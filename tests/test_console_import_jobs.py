"""Console imports run by the worker: the upload queues a job, the job's page follows its
progress and then shows the report; a failure writes nothing; a job left running by a worker
that died is taken again; one merchant never sees another's jobs."""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.db import utcnow
from wallet_service.errors import InvalidInput
from wallet_service.models import AuditEntry
from wallet_service.models import ImportJob
from wallet_service.models import Member
from wallet_service.services import import_jobs
from wallet_service.services import imports
from wallet_service.worker import Worker

#: The suite runs on PostgreSQL (conftest.py's WALLET_TEST_DATABASE_URL).
POSTGRES = bool(os.environ.get("WALLET_TEST_DATABASE_URL"))

PAGE = "/console/settings/import-export"
FILE = "Телефон;ФИО;Баллы\n+79120000001;Анна;150\nnot a phone;Борис;5\n".encode("cp1251")


def upload(console: Any, program_id: int, data: bytes, **fields: str) -> Any:
    form = {"program_id": str(program_id), "file": (io.BytesIO(data), "base.csv"), **fields}
    return console.post(PAGE + "/import", form, content_type="multipart/form-data")


def queue(console: Any, program_id: int, data: bytes = FILE) -> int:
    """Upload ``data``; returns the id of the job the answer leads to."""
    r = upload(console, program_id, data)
    assert r.status_code == 303, r.get_data(as_text=True)
    prefix = PAGE + "/jobs/"
    assert r.headers["Location"].startswith(prefix)
    return int(r.headers["Location"][len(prefix):])


def worker(app: Any, now: dt.datetime | None = None) -> Worker:
    return Worker.from_state(app.extensions["wallet"], wakeups=(),
                             clock=lambda: now or utcnow())


def phones(rows: int) -> bytes:
    return ("phone,name\n" + "".join(f"+7912{n:07d},Member {n}\n" for n in range(rows))
            ).encode()


def members(app: Any) -> int:
    with app.extensions["wallet"].sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Member)) or 0)


def job_row(app: Any, job_id: int) -> ImportJob:
    with app.extensions["wallet"].sessions() as s:
        job = s.get(ImportJob, job_id)
        assert job is not None
        return job


def test_an_upload_is_queued_run_by_the_worker_and_reported(api, console, app):
    program = api.program(name="Coffee")
    job_id = queue(console, program["id"])
    assert members(app) == 0
    queued = job_row(app, job_id)
    assert (queued.status, queued.rows_total, queued.created_by) == ("queued", 2,
                                                                     console.user_id)

    html = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "Waiting to start" in html and 'hx-trigger="every 1s"' in html
    assert f'hx-get="{PAGE}/jobs/{job_id}/progress"' in html
    assert "0 of 2 rows (0%)" in html and 'id="rejected"' not in html
    assert "seems not to run" not in html
    listing = console.get(PAGE).get_data(as_text=True)
    assert 'id="import-jobs"' in listing and "Waiting to start" in listing
    # A job nobody takes for a minute: the page says why it may wait.
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            created_at=utcnow() - dt.timedelta(minutes=2)))
        s.commit()
    assert "seems not to run" in console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)

    assert worker(app).imports() == 1
    assert worker(app).imports() == 0

    part = console.get(f"{PAGE}/jobs/{job_id}/progress")
    assert part.status_code == 200
    html = part.get_data(as_text=True)
    assert "<html" not in html and "hx-trigger" not in html  # polling stops
    assert "Import done" in html and 'id="import-progress"' not in html
    assert 'id="rejected"' in html and "not a valid phone" in html
    page = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "Import done" in page and "hx-trigger" not in page and "base.csv" in page
    rejected = console.get(f"{PAGE}/jobs/{job_id}/rejected.csv")
    assert rejected.status_code == 200 and rejected.mimetype == "text/csv"
    assert rejected.get_data(as_text=True).splitlines()[0] == "row,field,reason"
    assert rejected.get_data(as_text=True).splitlines()[1].startswith("3,phone,")

    done = job_row(app, job_id)
    assert done.status == "done" and done.data is None  # the file is not kept
    assert done.report is not None and done.report["imported"] == 1
    with app.extensions["wallet"].sessions() as s:
        assert [m.name for m in s.scalars(select(Member))] == ["Анна"]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "members.import")).one()
    assert (entry.actor_kind, entry.actor_id, entry.actor_label) == ("user", console.user_id,
                                                                     console.email)
    assert entry.changes["imported"] == 1 and entry.changes["job"] == job_id
    assert "Import done" in console.get(PAGE).get_data(as_text=True)


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer at a time: the "
                    "import's transaction holds it, so no progress is written meanwhile")
def test_progress_is_committed_while_the_import_still_runs(api, console, app, monkeypatch):
    program = api.program()
    job_id = queue(console, program["id"], phones(7))
    seen: list[tuple[int, int, str]] = []
    real = imports.import_members

    def watched(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def look(done: int, total: int) -> None:
            progress(done, total)
            # Another connection (the page's) sees the rows done, not the rows yet.
            part = console.get(f"{PAGE}/jobs/{job_id}/progress").get_data(as_text=True)
            assert 'hx-trigger="every 1s"' in part and "Importing" in part
            seen.append((job_row(app, job_id).rows_done, members(app),
                         part.split('id="import-progress-text">')[1].split("<")[0]))

        return real(*args, progress=look, **kwargs)

    monkeypatch.setattr(imports, "import_members", watched)
    assert worker(app).imports(chunk=3) == 1
    assert seen == [(3, 0, "3 of 7 rows (42%)"), (6, 0, "6 of 7 rows (85%)"),
                    (7, 0, "7 of 7 rows (100%)")]
    assert members(app) == 7 and job_row(app, job_id).status == "done"


def test_a_failing_import_writes_nothing_and_shows_why(api, console, app, monkeypatch):
    program = api.program()
    job_id = queue(console, program["id"], phones(5))
    real = imports.import_members

    def breaks(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def after_chunk(done: int, total: int) -> None:
            if done > 2:  # two chunks are written in the transaction by now
                raise InvalidInput("file: row 5: the disk went away")

        return real(*args, progress=after_chunk, **{**kwargs, "chunk": 2})

    monkeypatch.setattr(imports, "import_members", breaks)
    assert worker(app).imports() == 1
    assert members(app) == 0
    failed = job_row(app, job_id)
    assert (failed.status, failed.error, failed.data) == (
        "failed", "file: row 5: the disk went away", None)
    html = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "Import failed: file: row 5: the disk went away" in html
    assert "Nothing of the file was written" in html and "hx-trigger" not in html
    with app.extensions["wallet"].sessions() as s:
        assert s.scalars(select(AuditEntry).where(
            AuditEntry.action == "members.import")).all() == []


def test_an_unexpected_error_is_logged_not_shown(api, console, app, monkeypatch):
    program = api.program()
    job_id = queue(console, program["id"])

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("connection reset by peer at 10.0.0.7")

    monkeypatch.setattr(import_jobs.audit, "record", broken)
    assert worker(app).imports() == 1
    assert members(app) == 0 and job_row(app, job_id).status == "failed"
    html = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "an internal error of the service" in html and "10.0.0.7" not in html


def test_another_merchant_never_sees_a_job(api, other_api, console, console_as, app):
    program = api.program()
    job_id = queue(console, program["id"])
    theirs = console_as("owner", other_api)
    for path in ("", "/progress", "/rejected.csv"):
        assert theirs.get(f"{PAGE}/jobs/{job_id}{path}").status_code == 404
    assert 'id="import-jobs"' not in theirs.get(PAGE).get_data(as_text=True)
    staff = console_as("staff")
    assert staff.get(f"{PAGE}/jobs/{job_id}").status_code == 403
    manager = console_as("manager")
    assert manager.get(f"{PAGE}/jobs/{job_id}").status_code == 200
    # The report's download exists once the job is done.
    assert console.get(f"{PAGE}/jobs/{job_id}/rejected.csv").status_code == 404


def test_a_job_left_running_by_a_dead_worker_is_taken_again(api, console, app):
    program = api.program()
    job_id = queue(console, program["id"])
    start = utcnow()
    lease = dt.timedelta(seconds=app.extensions["wallet"].settings.worker_lease_seconds)
    with app.extensions["wallet"].sessions() as s:
        dead = import_jobs.claim(s, now=start, lease=lease)
        s.commit()
        # Two claims never take one job.
        assert import_jobs.claim(s, now=start, lease=lease) is None
        s.commit()
    assert dead is not None and dead.id == job_id and dead.attempt == 1
    html = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "Importing" in html and "Rows in the file: 2" in html

    # Within its lease the job is the first worker's; after it, the next one takes it.
    assert worker(app, start + lease / 2).imports() == 0
    assert worker(app, start + lease * 2).imports() == 1
    done = job_row(app, job_id)
    assert (done.status, done.attempts) == ("done", 2) and members(app) == 1
    # The first worker, back from the dead, cannot end the job again.
    with app.extensions["wallet"].sessions() as s:
        assert not import_jobs.record_progress(s, dead, 1, 2, now=utcnow(), lease=lease)
        assert not import_jobs.fail(s, dead, "late", now=utcnow())
        s.commit()
    assert job_row(app, job_id).status == "done"


def test_a_job_whose_worker_keeps_dying_is_given_up(api, console, app):
    program = api.program()
    job_id = queue(console, program["id"])
    lease = dt.timedelta(seconds=60)
    now = utcnow()
    with app.extensions["wallet"].sessions() as s:
        for _ in range(import_jobs.MAX_ATTEMPTS):
            assert import_jobs.claim(s, now=now, lease=lease) is not None
            s.commit()
            now += lease * 2
        assert import_jobs.claim(s, now=now, lease=lease) is None
        s.commit()
    given_up = job_row(app, job_id)
    assert (given_up.status, given_up.data) == ("failed", None) and members(app) == 0
    html = console.get(f"{PAGE}/jobs/{job_id}").get_data(as_text=True)
    assert "the background worker stopped several times" in html


def test_the_running_worker_imports_in_a_thread_beside_its_deliveries(api, console, app,
                                                                     monkeypatch):
    """``Worker.run`` takes a job as soon as it is woken, in a thread of its own: while an
    import runs, the passes that deliver pushes go on."""
    program = api.program()
    started, release = threading.Event(), threading.Event()
    real = imports.import_members

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "import_members", slow)
    running = worker(app)
    running.IMPORTS_LOOK = 600.0  # only the wake-up can start it
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    try:
        job_id = queue(console, program["id"])
        running.wake()  # what the doorbell or NOTIFY does at the upload's commit
        assert started.wait(10), "the woken worker did not take the job"
        passes = running.passes
        deadline = time.monotonic() + 10
        while running.passes <= passes:
            assert time.monotonic() < deadline, "deliveries waited for the import"
            running.wake()
            time.sleep(0.05)
        release.set()
        deadline = time.monotonic() + 30
        while job_row(app, job_id).status != "done":
            assert time.monotonic() < deadline, "the import never finished"
            time.sleep(0.1)
    finally:
        release.set()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and members(app) == 1


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one worker: its writers queue")
def test_workers_claiming_at_once_take_different_jobs(api, console, app):
    program = api.program()
    first, second = queue(console, program["id"]), queue(console, program["id"])
    lease = dt.timedelta(seconds=60)
    sessions = app.extensions["wallet"].sessions
    with sessions() as one, sessions() as two:
        # The first claim's transaction is still open: the second skips its locked row.
        taken = import_jobs.claim(one, now=utcnow(), lease=lease)
        other = import_jobs.claim(two, now=utcnow(), lease=lease)
        assert import_jobs.claim(two, now=utcnow(), lease=lease) is None
        one.commit()
        two.commit()
    assert taken is not None and other is not None
    assert (taken.id, other.id) == (first, second)
