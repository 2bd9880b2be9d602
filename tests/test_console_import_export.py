"""Import and export in the console: owners and managers import a CSV file and download
members and transactions; staff cannot; one merchant never reaches another's programme."""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import select

from wallet_service.models import AuditEntry
from wallet_service.models import ImportJob
from wallet_service.models import Member
from wallet_service.worker import Worker

PAGE = "/console/settings/import-export"


def upload(console: Any, program_id: int, data: bytes, **fields: str) -> Any:
    form = {"program_id": str(program_id), "file": (io.BytesIO(data), "base.csv"), **fields}
    return console.post(PAGE + "/import", form, content_type="multipart/form-data")


def test_an_owner_imports_a_file_and_sees_the_report(api, console, app):
    program = api.program(name="Coffee")
    page = console.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Import members from CSV" in html and "Coffee" in html
    assert PAGE in console.get("/console/settings").get_data(as_text=True)

    # The import is left to the worker; the answer is the job's page (tests/
    # test_console_import_jobs.py follows it to the report).
    data = "Телефон;ФИО;Баллы\n+79120000001;Анна;150\nnot a phone;Борис;5\n".encode("cp1251")
    r = upload(console, program["id"], data)
    assert r.status_code == 303 and f"{PAGE}/jobs/" in r.headers["Location"]
    assert "Waiting to start" in console.get(r.headers["Location"]).get_data(as_text=True)
    assert Worker.from_state(app.extensions["wallet"], wakeups=()).imports() == 1
    html = console.get(r.headers["Location"]).get_data(as_text=True)
    assert "Import done" in html and 'id="rejected"' in html and "not a valid phone" in html
    with app.extensions["wallet"].sessions() as s:
        assert [m.name for m in s.scalars(select(Member))] == ["Анна"]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "members.import")).one()
        assert entry.actor_kind == "user" and entry.changes["imported"] == 1

    # A dry run writes nothing and answers at once; the mapping is one line per column.
    r = upload(console, program["id"], b"Tel,Who\n+79120000002,Vera\n", dry_run="1",
               mapping="Tel=phone\nWho=name")
    assert r.status_code == 200
    assert "File checked (nothing written)" in r.get_data(as_text=True)
    with app.extensions["wallet"].sessions() as s:
        assert len(s.scalars(select(Member)).all()) == 1


def test_a_file_without_a_phone_column_is_explained(api, console):
    program = api.program()
    r = upload(console, program["id"], b"name\nAnna\n")
    assert r.status_code == 422
    assert "no column holds the phone" in r.get_data(as_text=True)
    r = console.post(PAGE + "/import", {"program_id": str(program["id"])},
                     content_type="multipart/form-data")
    assert r.status_code == 422 and "Choose a CSV file." in r.get_data(as_text=True)


def test_downloads_are_streamed_csv_and_audited(api, console, app):
    program = api.program()
    api.member(program["id"], name="Anna")
    r = console.get(f"{PAGE}/{program['id']}/members.csv?spreadsheet=1")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.data.startswith(b"\xef\xbb\xbfmember_id;name;phone") and "Anna" in r.data.decode()
    r = console.get(f"{PAGE}/{program['id']}/transactions.csv")
    assert r.status_code == 200 and r.data.startswith(b"transaction_id,created_at")
    with app.extensions["wallet"].sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-2:] == ["members.export", "transactions.export"]


def test_staff_may_neither_import_nor_export(api, console_as):
    program = api.program()
    staff = console_as("staff")
    assert staff.get(PAGE).status_code == 403
    assert staff.get(f"{PAGE}/{program['id']}/members.csv").status_code == 403
    assert upload(staff, program["id"], b"phone,name\n+79120000001,A\n").status_code == 403
    manager = console_as("manager")
    assert manager.get(PAGE).status_code == 200


def test_another_merchants_programme_is_not_found(api, other_api, console_as, app):
    theirs = other_api.program()
    mine = console_as("owner")
    assert mine.get(f"{PAGE}/{theirs['id']}/members.csv").status_code == 404
    assert upload(mine, theirs["id"], b"phone,name\n+79120000001,A\n").status_code == 404
    with app.extensions["wallet"].sessions() as s:
        assert s.scalars(select(Member)).all() == []
        assert s.scalars(select(ImportJob)).all() == []
