"""Import and export (owners and managers): import a customer base from CSV into a program,
and download a program's members or transactions as CSV. Every import and export is written
to the audit log (``services.imports``, ``services.exports``).

An import is left to the worker (``services.import_jobs``): the upload answers with the
job's page, whose progress bar htmx refreshes every second until the report replaces it.
A check only ("write nothing") answers with its report at once."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from http import HTTPStatus

from flask import Response
from flask import redirect
from flask import request
from flask import url_for

from ...db import utcnow
from ...errors import WalletError
from ...permissions import Permission
from ...services import exports
from ...services import import_jobs
from ...services import imports
from ...services import programs
from .. import get_session
from .. import wallet
from . import frame
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render

frame.settings_link("import_export", "console.import_export", "import_export_title",
                    Permission.EXPORT)


def _page(*, report: imports.ImportReport | None = None, error: str | None = None,
          program_id: int | None = None, status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    frame.section("settings")
    found = programs.list_programs(get_session(), user.merchant_id)
    return render("console/import_export.html", title="import_export_title",
                  programs=found, report=report, error=error, chosen=program_id,
                  fields=imports.FIELDS, can_import=user.can(Permission.MEMBERS_IMPORT),
                  jobs=import_jobs.recent_jobs(get_session(), user.merchant_id),
                  program_names={p.id: p.name for p in found}, status=status)


@bp.get("/settings/import-export", endpoint="import_export")
@console_page(Permission.EXPORT)
def import_export_page() -> Response:
    """The import form and the export downloads."""
    return _page()


@bp.post("/settings/import-export/import")
@console_page(Permission.MEMBERS_IMPORT)
def import_members() -> Response:
    """Queue the uploaded file's import into the chosen program and answer with the job's
    page (a check only: the page shows the report at once)."""
    user = current_user()
    program_id = request.form.get("program_id", type=int)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else b""
    if program_id is None:
        return _page(error="import_program_required", status=HTTPStatus.UNPROCESSABLE_ENTITY)
    if not data.strip():
        return _page(error="import_file_required", program_id=program_id,
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    dry_run = request.form.get("dry_run") == "1"
    session = get_session()
    try:
        mapping = imports.parse_mapping(
            [line for line in request.form.get("mapping", "").splitlines() if line.strip()])
        if dry_run:
            report = imports.import_members(
                session, user.merchant_id, program_id, data, mapping=mapping,
                default_region=wallet().settings.default_region, dry_run=True)
        else:
            job = import_jobs.enqueue(
                session, user.merchant_id, program_id, data, created_by=user.id,
                filename=(upload.filename if upload is not None else None) or "import.csv",
                mapping=mapping, ip=user.actor.ip)
    except WalletError as exc:
        if exc.status == HTTPStatus.NOT_FOUND:
            raise
        session.rollback()
        return _page(error=exc.message, program_id=program_id,
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    if dry_run:
        session.rollback()
        return _page(report=report, program_id=program_id)
    session.commit()
    return redirect(url_for("console.import_job", job_id=job.id), HTTPStatus.SEE_OTHER)


def _job_context(job_id: int) -> dict[str, object]:
    user = current_user()
    session = get_session()
    job = import_jobs.get_job(session, user.merchant_id, job_id)
    program = programs.get_program(session, user.merchant_id, job.program_id)
    done, total = job.rows_done, job.rows_total
    return {"job": job, "program": program, "report": import_jobs.report_of(job),
            "percent": 100 if job.status == import_jobs.DONE
            else (done * 100 // total if total else 0),
            "stuck": import_jobs.waits_too_long(job, utcnow())}


@bp.get("/settings/import-export/jobs/<int:job_id>")
@console_page(Permission.EXPORT)
def import_job(job_id: int) -> Response:
    """An import's progress, refreshed every second while it waits or runs, then its
    report."""
    frame.section("settings")
    return render("console/import_job.html", title="import_job_title",
                  **_job_context(job_id))


@bp.get("/settings/import-export/jobs/<int:job_id>/progress")
@console_page(Permission.EXPORT)
def import_job_progress(job_id: int) -> Response:
    """The job page's progress part, as its htmx polling asks for it; once the job has
    ended the part comes without the polling, which stops it."""
    return render("console/_import_job.html", title="import_job_title",
                  **_job_context(job_id))


@bp.get("/settings/import-export/jobs/<int:job_id>/rejected.csv")
@console_page(Permission.EXPORT)
def import_job_rejected(job_id: int) -> Response:
    """A finished import's rejected rows (row, field, reason) as CSV."""
    context = _job_context(job_id)
    report = context["report"]
    if not isinstance(report, imports.ImportReport):
        return frame.error_page(HTTPStatus.NOT_FOUND)
    out = io.StringIO()
    csv.writer(out).writerows(imports.iter_rejected_csv(report))
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="import-{job_id}-rejected.csv"',
        "Cache-Control": "no-store"})


@bp.get("/settings/import-export/<int:program_id>/<any(members, transactions):what>.csv")
@console_page(Permission.EXPORT)
def export_csv(program_id: int, what: str) -> Response:
    """A program's members or transactions as a streamed CSV download (``?spreadsheet=1``:
    a byte-order mark and ``;`` for Excel)."""
    user = current_user()
    session = get_session()
    run = exports.export_members if what == "members" else exports.export_transactions
    export = run(session, user.merchant_id, program_id, actor=user.actor,
                 spreadsheet=request.args.get("spreadsheet") == "1")
    session.commit()

    def chunks() -> Iterator[bytes]:
        # The request's teardown closed the session before the body is sent; reading the
        # rows opens a transaction on it again, closed here once the last chunk is out.
        try:
            yield from export.chunks
        finally:
            session.close()

    return Response(chunks(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{export.filename}"',
                             "Cache-Control": "no-store"})
