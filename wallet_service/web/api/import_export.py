"""Moving a customer base in and out: import members from CSV, export members and
transactions as streamed CSV (``services.imports``, ``services.exports``)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response
from flask import g
from flask import request
from pydantic import Field
from pydantic import model_validator

from ... import schemas as s
from ...errors import InvalidInput
from ...models import ApiKey
from ...permissions import Permission
from ...services import audit
from ...services import exports
from ...services import imports
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import import_report_out


class ImportQuery(s.Strict):
    dry_run: bool = Field(False, description="Check every row and answer what would be "
                                             "imported, writing nothing")
    mapping: str | None = Field(
        None, max_length=300,
        description="A JSON object from the file's column headers to fields (`phone`, "
                    "`name`, `last_name`, `first_name`, `middle_name`, `email`, `birthday`, "
                    "`external_id`, `balance`, `stamps`, `tier`, `joined`); `\"\"` ignores "
                    "a column. Columns left out are mapped by their names, in Russian or English "
                    "(`Телефон`, `ФИО`, `Баланс`, `Уровень`, `Штампы`, `Дата рождения` …). "
                    "Up to 300 characters here, since a request line must stay short "
                    "once percent-encoded; a longer mapping goes in the multipart form "
                    "field `mapping` beside `file`")


class ExportQuery(s.Strict):
    spreadsheet: bool = Field(False, description="For spreadsheets: a UTF-8 byte-order mark "
                                                 "and `;` between fields (Excel in Russian "
                                                 "locales opens it as it is)")


class TransactionExportQuery(ExportQuery):
    since: s.IsoDate | None = Field(None, description="From the start of this day (the "
                                                      "merchant's calendar)")
    until: s.IsoDate | None = Field(None, description="Through the end of this day")

    @model_validator(mode="after")
    def _order(self) -> TransactionExportQuery:
        if self.since and self.until and self.until < self.since:
            raise ValueError("until: before since")
        return self


def _actor() -> audit.Actor:
    """The API key of this request, as the audit log names it."""
    key = get_session().get(ApiKey, g.api_key_id)
    label = f"API key {key.name}" if key is not None else "API key"
    return audit.Actor("key", g.api_key_id, label, request.remote_addr)


@bp.operation("/programs/<int:program_id>/members/import", "POST",
              summary="Import members from a CSV file", query=ImportQuery,
              response=s.ImportOut, errors=(404,), tags=("import and export",),
              media=("text/csv", "multipart/form-data"),
              permission=Permission.MEMBERS_IMPORT)
def import_members(program_id: int, query: ImportQuery) -> s.ImportOut:
    """Send the file as the body (`text/csv`) or as the multipart form field `file`, up to
    10 MB (about 100,000 members; larger bases go through
    `wallet-service import-members`). It is imported at once and the answer is the report.
    UTF-8 (with or without a byte-order mark) and Windows-1251 are told apart, and the
    delimiter (`,`, `;` or tab) is read from the header line. Each row goes in whole or not
    at all: rows refused are listed in `rejected` with their number, field and reason, and
    the others go in. The phone is the key: a phone already in the program is left as it is
    (`existing`), so sending the same file again adds nothing. Balances and stamps are one
    ledger entry per member with the reason `import`; an imported tier is held as an
    assigned tier (`POST /members/{id}/tier`). Imported members get no welcome bonus. The
    import is written to the audit log. 400 names `file` (not CSV text) or `mapping`; 422
    names `mapping` when no column holds the phone or the name, or the mapping names a
    column or field that does not exist."""
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data.strip():
        raise InvalidInput("file: send the CSV file as the body or as the form field 'file'",
                           field="file")
    text = request.form.get("mapping") if upload is not None else None
    if text is None:
        text = query.mapping
    mapping = imports.parse_mapping([text]) if text is not None else None
    session = get_session()
    report = imports.import_members(
        session, current_merchant(), program_id, data, mapping=mapping,
        default_region=wallet().settings.default_region, dry_run=query.dry_run)
    if query.dry_run:
        session.rollback()
    else:
        audit.record(session, merchant_id=current_merchant(), actor=_actor(),
                     action="members.import", target=f"program:{program_id}",
                     changes={"rows": report.rows, "imported": report.imported,
                              "existing": report.existing, "rejected": len(report.rejected)})
        session.commit()
    return import_report_out(report)


def _stream(export: exports.Export) -> Response:
    """The export as a streamed download. The request's teardown closes its session before
    the body is sent; reading the rows opens a new transaction on it, which this closes once
    the last chunk is out (or the client went away)."""
    session = get_session()

    def chunks() -> Iterator[bytes]:
        try:
            yield from export.chunks
        finally:
            session.close()

    return Response(chunks(), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="{export.filename}"',
                             "Cache-Control": "no-store"})


@bp.operation("/programs/<int:program_id>/members/export", "GET",
              summary="Export the program's members as CSV", query=ExportQuery,
              errors=(404,), tags=("import and export",), produces=("text/csv",),
              permission=Permission.EXPORT)
def export_members(program_id: int, query: ExportQuery) -> Response:
    """Every member of the program with their card (number, status, balance, stamps, tier,
    lifetime totals, visits), oldest first, streamed however many there are. UTF-8, `,`
    between fields; `spreadsheet=true` adds a byte-order mark and uses `;`. The columns
    `phone`, `name`, `email`, `birthday`, `external_id`, `balance`, `stamps` and `tier` are
    the ones the import reads, so the file imports into another program as it is. Erased
    members keep their row without personal data. Each export is written to the audit
    log."""
    session = get_session()
    export = exports.export_members(session, current_merchant(), program_id, actor=_actor(),
                                    spreadsheet=query.spreadsheet)
    session.commit()
    return _stream(export)


@bp.operation("/programs/<int:program_id>/transactions/export", "GET",
              summary="Export the program's transactions as CSV",
              query=TransactionExportQuery, errors=(404,), tags=("import and export",),
              produces=("text/csv",), permission=Permission.EXPORT)
def export_transactions(program_id: int, query: TransactionExportQuery) -> Response:
    """Every ledger entry of the program's cards, oldest first, streamed; `since` and
    `until` (days of the merchant's calendar, inclusive) narrow it. Amounts are in the
    currency's units (`150.50`), points and stamps signed whole numbers. Options and audit
    as for the members' export."""
    session = get_session()
    export = exports.export_transactions(
        session, current_merchant(), program_id, actor=_actor(), since=query.since,
        until=query.until, spreadsheet=query.spreadsheet)
    session.commit()
    return _stream(export)

