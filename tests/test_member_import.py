"""Importing a customer base from CSV and exporting members and transactions, through the
API as a merchant's system uses it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from api_support import Api
from sqlalchemy import func
from sqlalchemy import select

from wallet_service.models import AuditEntry
from wallet_service.models import CardChange
from wallet_service.models import LedgerTransaction
from wallet_service.models import LoyaltyCard
from wallet_service.models import Member
from wallet_service.models import PointLot
from wallet_service.services.members import luhn_digit

TIERS = {"tier_basis": "lifetime_points",
         "tiers": [{"name": "Базовый", "threshold": 0}, {"name": "Серебро", "threshold": 1000},
                   {"name": "Золото", "threshold": 5000}]}

# A paper-card base kept in Excel and saved as "CSV (разделители - точка с запятой)": the
# Windows-1251 code page, semicolons, Russian headers, a card number written on the card.
PAPER_CARDS = (
    "Номер карты;ФИО;Телефон;Баллы;Уровень;Дата рождения;E-mail;Дата выдачи;Примечание\r\n"
    "0001;Иванова Анна Сергеевна;8 (912) 345-67-89;1 200;;12.03.1985;anna@example.ru;"
    "01.02.2019;\r\n"
    "0002;Петров Пётр;+7 912 000-11-22;0;Золото;;;;постоянный\r\n"
    "0003;Сидорова Ольга;9123334455;6000;;1990-07-01;;;\r\n"
)


def import_csv(api: Any, program_id: int, data: bytes, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.post(f"/programs/{program_id}/members/import" + (f"?{query}" if query else ""),
                    data=data, content_type="text/csv")


def members_of(app: Any, program_id: int) -> dict[str, Member]:
    with app.extensions["wallet"].sessions() as s:
        found = s.scalars(select(Member).where(Member.program_id == program_id)).all()
        for m in found:
            _ = m.card
        s.expunge_all()
        return {m.phone: m for m in found}


def count(app: Any, model: Any, *where: Any) -> int:
    with app.extensions["wallet"].sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_paper_card_base_in_windows_1251_with_semicolons_goes_in(api, app):
    program = api.program(**TIERS)
    r = import_csv(api, program["id"], PAPER_CARDS.encode("cp1251"))
    assert r.status_code == 200, r.json
    report = r.json
    assert (report["encoding"], report["delimiter"]) == ("windows-1251", ";")
    assert report["columns"] == {"Номер карты": "external_id", "ФИО": "name",
                                 "Телефон": "phone", "Баллы": "balance", "Уровень": "tier",
                                 "Дата рождения": "birthday", "E-mail": "email",
                                 "Дата выдачи": "joined"}
    assert report["ignored"] == ["Примечание"]
    assert (report["rows"], report["imported"], report["existing"], report["rejected"]) == (
        3, 3, 0, [])
    assert report["points"] == 1200 + 6000

    found = members_of(app, program["id"])
    anna = found["+79123456789"]
    assert anna.name == "Иванова Анна Сергеевна"
    assert anna.birthday.isoformat() == "1985-03-12"
    assert anna.email == "anna@example.ru" and anna.external_id == "0001"
    assert anna.source == "import"
    # She joined on 1 February 2019 of the merchant's calendar (Moscow by default).
    assert anna.created_at.astimezone(dt.UTC) == dt.datetime(2019, 1, 31, 21, tzinfo=dt.UTC)
    # 1,200 points reach Silver by the program's rules.
    assert (anna.card.balance, anna.card.tier, anna.card.manual_tier) == (1200, "Серебро", None)
    # An imported tier is held as the merchant's assignment, above what 0 points give.
    petr = found["+79120001122"]
    assert (petr.card.balance, petr.card.tier, petr.card.manual_tier) == (0, "Золото", "Золото")
    assert found["+79123334455"].card.tier == "Золото"
    # Cards as enrollment makes them: a Luhn card number, version 1, distinct tokens.
    for m in found.values():
        serial = m.card.serial_number
        assert len(serial) == 13 and luhn_digit(serial[:-1]) == serial[-1]
        assert m.card.version == 1 and m.card.status == "active"
        assert m.card.referral_code and m.card.authentication_token != m.card.download_token
    # A new card is on no phone yet: nothing for the outbox.
    assert count(app, CardChange) == 0

    # The member reads as any member does, and finds by the phone.
    r = api.get("/members", query_string={"phone": "+7 912 345-67-89"})
    assert [m["id"] for m in r.json["items"]] == [anna.id]
    assert r.json["items"][0]["balance"] == 1200


def test_imported_balances_are_in_the_members_history_with_the_reason_import(api, app):
    program = api.program(**TIERS, points_validity_days=365)
    import_csv(api, program["id"], PAPER_CARDS.encode("cp1251"))
    anna = members_of(app, program["id"])["+79123456789"]
    items = api.get(f"/members/{anna.id}/transactions").json["items"]
    assert len(items) == 1
    entry = items[0]
    assert (entry["type"], entry["points"], entry["reason"], entry["balance_after"]) == (
        "adjust", 1200, "import", 1200)
    # The imported points expire like any credit.
    assert count(app, PointLot, PointLot.card_id == anna.card.id,
                 PointLot.remaining == 1200) == 1
    # The history goes on from there.
    r = api.post(f"/members/{anna.id}/transactions", {"type": "redeem", "points": 200})
    assert r.status_code == 201, r.json
    assert r.json["balance"] == 1000


def test_a_rerun_of_the_same_file_adds_nothing(api, app):
    program = api.program(**TIERS)
    data = PAPER_CARDS.encode("cp1251")
    assert import_csv(api, program["id"], data).json["imported"] == 3
    again = import_csv(api, program["id"], data).json
    assert (again["imported"], again["existing"], again["rejected"]) == (0, 3, [])
    assert count(app, Member, Member.program_id == program["id"]) == 3
    assert count(app, LedgerTransaction) == 3  # one import row per member with a balance/tier


def test_bad_rows_are_listed_with_reasons_and_the_good_ones_go_in_whole(api, app):
    program = api.program(**TIERS)
    data = (
        "phone,name,balance,birthday,tier,email\n"
        "+79120000001,Good One,10,1980-01-01,,\n"
        "not a phone,Bad Phone,10,,,\n"
        "+79120000002,,10,,,\n"                     # no name
        "+79120000003,Bad Balance,ten,,,\n"
        "+79120000004,Bad Date,5,31.02.1990,,\n"
        "+79120000005,Bad Tier,5,,Platinum,\n"
        "+79120000006,Bad Mail,5,,,nobody\n"
        "+7 912 000-00-01,Same Phone,99,,,\n"       # row 2's phone again
        "+79120000007,Good Two,0,,серебро,two@example.com\n"
    ).encode()
    r = import_csv(api, program["id"], data)
    assert r.status_code == 200, r.json
    rejected = [(x["row"], x["field"]) for x in r.json["rejected"]]
    assert rejected == [(3, "phone"), (4, "name"), (5, "balance"), (6, "birthday"),
                        (7, "tier"), (8, "email"), (9, "phone")]
    assert "Platinum" in r.json["rejected"][4]["reason"]
    assert "row 2" in r.json["rejected"][6]["reason"]
    assert r.json["imported"] == 2
    found = members_of(app, program["id"])
    assert sorted(m.name for m in found.values()) == ["Good One", "Good Two"]
    assert found["+79120000007"].card.tier == "Серебро"  # matched regardless of case
    # No partial rows: every member has exactly one card, and no other card or entry exists.
    assert count(app, LoyaltyCard) == 2
    assert count(app, LedgerTransaction) == 2


def test_a_dry_run_writes_nothing(api, app):
    program = api.program()
    r = import_csv(api, program["id"], b"phone,name,points\n+79120000001,A,5\n",
                   dry_run="true")
    assert r.status_code == 200, r.json
    assert (r.json["dry_run"], r.json["imported"], r.json["points"]) == (True, 1, 5)
    assert count(app, Member) == 0


def test_utf8_with_bom_english_headers_and_an_explicit_mapping(api, app):
    program = api.program()
    data = "\ufeffMobile,Customer,Bonus points,Comment\n+79120000001,Ann,7,x\n".encode()
    r = import_csv(api, program["id"], data)
    assert r.json["encoding"] == "utf-8-sig"
    assert r.json["columns"] == {"Mobile": "phone", "Customer": "name"}
    assert r.json["ignored"] == ["Bonus points", "Comment"]
    # The merchant maps the column the names did not explain, and ignores one.
    other = api.program(name="Tea")
    r = import_csv(api, other["id"], data,
                   mapping='{"Bonus points":"balance","Customer":"","Comment":"name"}')
    assert r.status_code == 200, r.json
    assert r.json["columns"] == {"Mobile": "phone", "Bonus points": "balance",
                                 "Comment": "name"}
    assert members_of(app, other["id"])["+79120000001"].name == "x"
    assert members_of(app, other["id"])["+79120000001"].card.balance == 7


def test_name_in_parts_and_a_stamp_card(api, app):
    program = api.program(kind="stamps", stamps={"goal": 6, "reward": "a free coffee"})
    data = ("Фамилия;Имя;Отчество;Телефон;Штампы\n"
            "Иванов;Иван;Иванович;+79120000001;8\n").encode()
    r = import_csv(api, program["id"], data)
    assert r.status_code == 200, r.json
    m = members_of(app, program["id"])["+79120000001"]
    assert m.name == "Иванов Иван Иванович"
    # 8 stamps on a 6-stamp card: one reward ready and 2 stamps towards the next.
    assert (m.card.balance, m.card.stamps) == (1, 2)
    entry = api.get(f"/members/{m.id}/transactions").json["items"][0]
    assert (entry["reason"], entry["stamps"], entry["points"]) == ("import", 8, 1)


def test_bad_input_gives_a_problem_naming_the_field(api):
    program = api.program()
    path = f"/programs/{program['id']}/members/import"

    def problem(r: Any) -> tuple[int, str]:
        return r.status_code, r.json["errors"][0]["field"]

    assert problem(import_csv(api, program["id"], b"name,email\nA,a@b.c\n")) == (422, "mapping")
    assert problem(import_csv(api, program["id"], b"")) == (400, "file")
    assert problem(import_csv(api, program["id"], b"\x00\x01binary")) == (400, "file")
    assert problem(import_csv(api, program["id"], b"phone,name\n", mapping="[1]")) == (
        400, "mapping")
    assert problem(import_csv(api, program["id"], b"phone,name\n",
                              mapping='{"Nope":"phone"}')) == (422, "mapping.Nope")
    assert problem(import_csv(api, program["id"], b"phone,name\n",
                              mapping='{"name":"nickname"}')) == (422, "mapping.name")
    r = api.post(path, json={"phone": "+79120000001"})
    assert r.status_code == 415
    r = api.get(f"/programs/{program['id']}/transactions/export",
                query_string={"since": "2026-02-01", "until": "2026-01-01"})
    assert r.status_code == 422


def test_multipart_upload(api, app):
    program = api.program()
    r = api.post(f"/programs/{program['id']}/members/import",
                 data={"file": (io.BytesIO(b"phone;name\n+79120000001;A\n"), "base.csv")},
                 content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert r.json["imported"] == 1


def test_a_long_mapping_goes_in_the_multipart_form_beside_the_file(api, app):
    """A request line must stay short once percent-encoded (Cyrillic headers take 6 bytes a
    letter): the query's mapping is capped, the form field takes any length."""
    program = api.program()
    headers = [f"Колонка номер {i} из старой таблицы" for i in range(12)]
    mapping = json.dumps({**{h: "" for h in headers}, "Тел": "phone", "Клиент": "name"},
                         ensure_ascii=False)
    assert len(mapping) > 300
    data = (";".join(["Тел", "Клиент", *headers]) + "\n+79120000001;Анна" + ";x" * 12 + "\n")
    r = api.post(f"/programs/{program['id']}/members/import",
                 data={"file": (io.BytesIO(data.encode()), "base.csv"), "mapping": mapping},
                 content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert r.json["imported"] == 1 and r.json["ignored"] == headers
    r = import_csv(api, program["id"], data.encode(), mapping=mapping)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "mapping"


def read_csv(body: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=delimiter))


def test_export_round_trip(api, app):
    program = api.program(**TIERS)
    import_csv(api, program["id"], PAPER_CARDS.encode("cp1251"))
    member = api.member(program["id"], name="=HYPERLINK(\"x\")", phone="+79125550000")
    r = api.post(f"/members/{member['id']}/transactions", {"type": "adjust", "points": 30,
                                                          "reason": "goodwill"})
    assert r.status_code == 201, r.json

    r = api.get(f"/programs/{program['id']}/members/export")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert 'filename="members-' in r.headers["Content-Disposition"]
    rows = read_csv(r.data)
    assert len(rows) == 4
    by_phone = {row["phone"]: row for row in rows}
    assert by_phone["+79123456789"]["balance"] == "1200"
    assert by_phone["+79123456789"]["birthday"] == "1985-03-12"
    assert by_phone["+79125550000"]["name"] == "'=HYPERLINK(\"x\")"  # never a formula

    # For spreadsheets: a byte-order mark and semicolons.
    sheet = api.get(f"/programs/{program['id']}/members/export?spreadsheet=true").data
    assert sheet.startswith(b"\xef\xbb\xbfmember_id;name;phone")
    assert read_csv(sheet, ";") == rows

    # The file imports into another program as it is: same people, balances and tiers.
    copy = api.program(name="Copy", **TIERS)
    r = import_csv(api, copy["id"], sheet)
    assert r.status_code == 200, r.json
    assert (r.json["imported"], r.json["rejected"]) == (4, [])
    again = read_csv(api.get(f"/programs/{copy['id']}/members/export").data)
    keep = ("name", "phone", "email", "birthday", "external_id", "balance", "stamps", "tier",
            "created_at")
    assert sorted([{k: row[k] for k in keep} for row in again], key=lambda x: x["phone"]) == \
        sorted([{k: row[k] for k in keep} for row in rows], key=lambda x: x["phone"])

    # Transactions: every entry of the program, with the import's reason.
    tx = read_csv(api.get(f"/programs/{program['id']}/transactions/export").data)
    assert [(t["type"], t["reason"], t["points"]) for t in tx] == [
        ("adjust", "import", "1200"), ("adjust", "import", "0"), ("adjust", "import", "6000"),
        ("adjust", "goodwill", "30")]
    assert tx[0]["currency"] == "RUB"
    assert read_csv(api.get(f"/programs/{program['id']}/transactions/export",
                            query_string={"until": "2000-01-01"}).data) == []


def test_every_export_and_import_is_in_the_audit_log(api, app):
    program = api.program()
    import_csv(api, program["id"], b"phone,name\n+79120000001,A\n")
    api.get(f"/programs/{program['id']}/members/export")
    api.get(f"/programs/{program['id']}/transactions/export?spreadsheet=true")
    with app.extensions["wallet"].sessions() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        logged = [(e.action, e.target, e.actor_kind) for e in entries]
        assert logged[-3:] == [
            ("members.import", f"program:{program['id']}", "key"),
            ("members.export", f"program:{program['id']}", "key"),
            ("transactions.export", f"program:{program['id']}", "key")]
        assert entries[-1].changes["format"] == "spreadsheet"
        assert entries[-3].changes["imported"] == 1


def test_one_merchant_cannot_import_into_or_export_another_merchants_program(api, other_api,
                                                                             app):
    program = api.program()
    import_csv(api, program["id"], b"phone,name\n+79120000001,A\n")
    assert import_csv(other_api, program["id"], b"phone,name\n+79120000002,B\n"
                      ).status_code == 404
    assert other_api.get(f"/programs/{program['id']}/members/export").status_code == 404
    assert other_api.get(f"/programs/{program['id']}/transactions/export").status_code == 404
    assert count(app, Member) == 1
    # Their own program exports only their members.
    theirs = other_api.program()
    assert read_csv(other_api.get(f"/programs/{theirs['id']}/members/export").data) == []
    assert count(app, AuditEntry, AuditEntry.merchant_id == other_api.merchant_id,
                 AuditEntry.action == "members.export") == 1


def test_a_till_key_may_not_import_or_export(api, client):
    program = api.program()
    r = api.post("/api-keys", {"name": "till", "scope": "till"})
    till = Api(client, r.json["api_key"], api.merchant_id)
    r = import_csv(till, program["id"], b"phone,name\n+79120000001,A\n")
    assert r.status_code == 403 and r.json["permission"] == "members:import"
    r = till.get(f"/programs/{program['id']}/members/export")
    assert r.status_code == 403 and r.json["permission"] == "export"


def test_the_command_line_imports_with_progress_and_lists_the_rejected_rows(
        api, app, app_config, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from wallet_service.cli import main

    for name, value in app_config.items():
        monkeypatch.setenv(f"WALLET_{name}", value)
    program = api.program(**TIERS)
    path = tmp_path / "base.csv"
    path.write_bytes((PAPER_CARDS + "0004;Без телефона;;5;;;;\r\n").encode("cp1251"))
    rejected = tmp_path / "rejected.csv"
    args = ["import-members", str(path), "--program-id", str(program["id"])]

    r = CliRunner().invoke(main, [*args, "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would import 3" in r.stdout
    assert count(app, Member) == 0

    r = CliRunner().invoke(main, [*args, "--rejected", str(rejected),
                                  "--mapping", "Примечание=", "--mapping", "Номер карты="])
    assert r.exit_code == 0, r.output
    assert "4 rows (windows-1251, ';'): imported 3, already in the program 0, rejected 1" \
        in r.stdout
    assert "importing" in r.stderr and "row 5: phone: required" in r.stderr
    assert rejected.read_text().splitlines()[1].startswith("5,phone,required")
    assert count(app, Member, Member.external_id.is_not(None)) == 0  # the mapping held

    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert '"existing": 3' in r.stdout and '"imported": 0' in r.stdout

    r = CliRunner().invoke(main, [*args, "--mapping", "nonsense"])
    assert r.exit_code == 1 and "mapping" in r.output
    r = CliRunner().invoke(main, ["import-members", str(path), "--program-id", "999999"])
    assert r.exit_code == 1 and "program 999999 not found" in r.output


def test_a_phone_enrolled_while_the_import_runs_is_left_as_it_is(api, app):
    """The till enrols a phone of the file after the import checked it and before it wrote
    it: the database refuses the chunk, which is then written row by row, and that row
    counts as existing. PostgreSQL only: on SQLite writers take turns from their start."""
    import threading
    import time

    import pytest

    from wallet_service.services.imports import import_members
    from wallet_service.services.members import NewMember
    from wallet_service.services.members import enroll_member

    if app.extensions["wallet"].engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers from the start of their transactions")
    program = api.program()
    sessions = app.extensions["wallet"].sessions
    till = sessions()
    enroll_member(till, api.merchant_id, program["id"], NewMember("Till", "+79120000002"),
                  default_region="RU")
    till.flush()  # written, not committed: the import cannot see it yet

    def commit_soon() -> None:
        time.sleep(1.0)
        till.commit()
        till.close()

    threading.Thread(target=commit_soon).start()
    data = b"phone,name,points\n+79120000001,A,5\n+79120000002,B,7\n+79120000003,C,9\n"
    with sessions() as s:
        report = import_members(s, api.merchant_id, program["id"], data, default_region="RU")
        s.commit()
    assert (report.imported, report.existing, report.rejected) == (2, 1, [])
    found = members_of(app, program["id"])
    assert found["+79120000002"].name == "Till" and found["+79120000002"].card.balance == 0
    assert found["+79120000003"].card.balance == 9


def test_members_who_joined_on_past_days_reopen_those_days_for_the_analytics(api, app):
    from wallet_service.models import AnalyticsRefresh

    program = api.program()
    with app.extensions["wallet"].sessions() as s:
        s.add(AnalyticsRefresh(merchant_id=api.merchant_id, refreshed_at=dt.datetime.now(dt.UTC),
                               through=dt.date(2026, 11, 29)))
        s.commit()
    import_csv(api, program["id"], b"phone,name,joined\n+79120000001,A,2024-05-06\n"
                                   b"+79120000002,B,03.02.2025\n")
    with app.extensions["wallet"].sessions() as s:
        assert s.get(AnalyticsRefresh, api.merchant_id).through == dt.date(2024, 5, 6)
