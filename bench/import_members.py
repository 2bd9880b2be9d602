"""Member import and export at size.

Builds a CSV file of N members as a paper-card base saved from Excel (Windows-1251, ``;``,
Russian headers, phones written in several ways, balances, tiers, birthdays, e-mails), then
imports it into a points program with tiers and points that expire (so every member gets a
card, an ``import`` ledger row and a lot), commits, and prints the time. Then it imports the
same file again (every phone is already there: nothing is added) and exports the members
and the transactions as CSV, reading the whole stream. Besides the wall time it prints the
CPU time spent (this process, and the PostgreSQL backend serving it when the database runs
on this machine), which stays meaningful on a machine busy with other work.

    python bench/import_members.py                          # both databases, 100,000 rows
    python bench/import_members.py --db postgresql --rows 200000

PostgreSQL URL: ``--pg-url`` (default the local ``wallet_import_bench`` database; its
``public`` schema is dropped and rebuilt, so do not point it at data you keep).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# bench/google.py would shadow the google package the service imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy import text  # noqa: E402

from wallet_service.config import load_settings  # noqa: E402
from wallet_service.migrate import upgrade  # noqa: E402
from wallet_service.models import LedgerTransaction  # noqa: E402
from wallet_service.models import Member  # noqa: E402
from wallet_service.schemas import ProgramCreate  # noqa: E402
from wallet_service.services import audit  # noqa: E402
from wallet_service.services import exports  # noqa: E402
from wallet_service.services.imports import ImportReport  # noqa: E402
from wallet_service.services.imports import import_members  # noqa: E402
from wallet_service.services.merchants import create_merchant  # noqa: E402
from wallet_service.services.programs import create_program  # noqa: E402
from wallet_service.state import build_state  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wallet_import_bench"
TIERS = [{"name": "Базовый", "threshold": 0}, {"name": "Серебро", "threshold": 1000},
         {"name": "Золото", "threshold": 5000}]


def make_file(rows: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    lines = ["Номер карты;ФИО;Телефон;Баллы;Уровень;Дата рождения;E-mail"]
    styles = ("+7 912 {a}-{b}-{c}", "8 (912) {a}-{b}-{c}", "912{a}{b}{c}", "+7912{a}{b}{c}")
    for i in range(rows):
        digits = f"{i:07d}"
        phone = rnd.choice(styles).format(a=digits[:3], b=digits[3:5], c=digits[5:])
        tier = rnd.choice(("", "", "", "Золото"))
        birthday = (f"{rnd.randint(1, 28):02d}.{rnd.randint(1, 12):02d}."
                    f"{rnd.randint(1950, 2005)}" if rnd.random() < 0.6 else "")
        email = f"client{i}@example.ru" if rnd.random() < 0.3 else ""
        lines.append(f"{i:06d};Клиент Номер {i};{phone};{rnd.randint(0, 8000)};{tier};"
                     f"{birthday};{email}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1251")


def backend_cpu(pid: int | None) -> float:
    """CPU seconds a local PostgreSQL backend has used (0 when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run(url: str, data: bytes, rows: int) -> None:
    settings = load_settings({"DATABASE_URL": url, "SECRET_KEY": "bench",
                              "PUBLIC_URL": "https://wallet.example.test",
                              "INSTANCE_PATH": tempfile.mkdtemp()})
    state = build_state(settings)
    upgrade(state.engine)
    with state.sessions() as session:
        merchant, _key, _raw = create_merchant(session, "Bench", time_zone="Europe/Moscow")
        program = create_program(session, merchant.id, ProgramCreate.model_validate(
            {"name": "Кофейня", "kind": "points", "tiers": TIERS,
             "points_validity_days": 365}))
        session.commit()
        merchant_id, program_id = merchant.id, program.id

    postgres = url.startswith("postgresql")

    def timed_import() -> tuple[float, float, ImportReport]:
        """Wall time, CPU time (this process, plus the PostgreSQL backend's when it runs on
        this machine) and the report."""
        started, cpu = time.perf_counter(), time.process_time()
        with state.sessions() as session:
            backend = session.scalar(text("SELECT pg_backend_pid()")) if postgres else None
            server = backend_cpu(backend)
            report = import_members(session, merchant_id, program_id, data,
                                    default_region="RU")
            session.commit()
            server = backend_cpu(backend) - server
        return (time.perf_counter() - started, time.process_time() - cpu + server, report)

    seconds, cpu, report = timed_import()
    print(f"  import {rows:,} rows: {seconds:.1f} s ({rows / seconds:,.0f} rows/s; CPU "
          f"{cpu:.1f} s); imported {report.imported:,}, rejected {len(report.rejected)}")
    with state.sessions() as session:
        members = session.scalar(select(func.count()).select_from(Member))
        entries = session.scalar(select(func.count()).select_from(LedgerTransaction))
    print(f"  in the database: {members:,} members, {entries:,} ledger rows")
    seconds, cpu, report = timed_import()
    print(f"  the same file again: {seconds:.1f} s (CPU {cpu:.1f} s); imported "
          f"{report.imported}, already there {report.existing:,}")
    actor = audit.Actor("system", None, "bench")
    for name, export in (("members", exports.export_members),
                         ("transactions", exports.export_transactions)):
        started = time.perf_counter()
        with state.sessions() as session:
            out = export(session, merchant_id, program_id, actor=actor)
            session.commit()
            size = sum(len(chunk) for chunk in out.chunks)
        seconds = time.perf_counter() - started
        print(f"  export {name}: {seconds:.1f} s, {size / 1e6:.1f} MB")
    state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    data = make_file(args.rows)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"file: {args.rows:,} rows, {len(data) / 1e6:.1f} MB (Windows-1251, ';')")
    if args.db in ("sqlite", "both"):
        print("SQLite")
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{Path(tmp) / 'bench.db'}", data, args.rows)
    if args.db in ("postgresql", "both"):
        print("PostgreSQL")
        reset_postgres(args.pg_url)
        run(args.pg_url, data, args.rows)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
