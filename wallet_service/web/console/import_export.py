"""Import and export (owners and managers): import a customer base from CSV into a program
(the report with the rejected rows follows at once), and download a program's members or
transactions as CSV. Every import and export is written to the audit log
(``services.imports``, ``services.exports``)."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

from flask import Response
from flask import request

from ...errors import WalletError
from ...permissions import Permission
from ...services import audit
from ...services import exports
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
                  status=status)


@bp.get("/settings/import-export", endpoint="import_export")
@console_page(Permission.EXPORT)
def import_export_page() -> Response:
    """The import form and the export downloads."""
    return _page()


@bp.post("/settings/import-export/import")
@console_page(Permission.MEMBERS_IMPORT)
def import_members() -> Response:
    """Import the uploaded file into the chosen program; the page shows the report."""
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
        report = imports.import_members(
            session, user.merchant_id, program_id, data, mapping=mapping,
            default_region=wallet().settings.default_region, dry_run=dry_run)
    except WalletError as exc:
        if exc.status == HTTPStatus.NOT_FOUND:
            raise
        session.rollback()
        return _page(error=exc.message, program_id=program_id,
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    if dry_run:
        session.rollback()
    else:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="members.import", target=f"program:{program_id}",
                     changes={"rows": report.rows, "imported": report.imported,
                              "existing": report.existing, "rejected": len(report.rejected)})
        session.commit()
    return _page(report=report, program_id=program_id)


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
