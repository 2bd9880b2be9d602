"""Analytics at real sizes: every dashboard widget's answer time on PostgreSQL.

Builds a merchant with ``--scale`` × 1,000,000 members (cards) and × 10,000,000 ledger
entries over two years (purchases with and without an amount, bonuses, rewards, redeems,
refunds, expiry, adjustments, coupons, tier changes, at three stores and ten staff users),
plus wallet events, loaded with ``COPY`` into a database of its own; brings the analytics
rollups up to date as the worker does (the first, full refresh and then the refresh the worker
does every few minutes, timed); then asks every ``/api/v1/analytics/…`` widget through the
Flask app, for the last 30 days and the last 365, and prints each one's p50 and p95 and a
summary of ``EXPLAIN ANALYZE`` of the statements it ran.

    python bench/analytics.py --scale 0.1        # 100,000 members, 1,000,000 entries
    python bench/analytics.py                    # 1,000,000 members, 10,000,000 entries

PostgreSQL URL: ``--pg-url`` (default ``WALLET_BENCH_ANALYTICS_URL`` or the local
``analytics_bench`` database). Its ``public`` schema is dropped and rebuilt: never point it at
data you keep. The full scale needs about 6 GB of disk; the script checks the free space of
the database's data directory first (or of ``/`` when that is not readable) and stops if it
is short. Not part of the test suite or CI: it takes minutes at full scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/google.py would stand in for the google package this script imports through the app.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import psycopg  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from wallet_service.app import create_app  # noqa: E402
from wallet_service.db import make_engine  # noqa: E402
from wallet_service.migrate import upgrade  # noqa: E402
from wallet_service.services import analytics  # noqa: E402
from wallet_service.services.merchants import create_merchant  # noqa: E402

DEFAULT_URL = os.environ.get("WALLET_BENCH_ANALYTICS_URL",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/analytics_bench")
ZONE = "Europe/Moscow"
DAYS = 730
#: Bytes on disk per unit of scale (tables, indexes, rollups), measured at 0.1 and rounded up.
BYTES_PER_SCALE = 6 * 1024**3
#: Entry types and their shares of the ledger.
TYPES = (("earn", 0.85), ("earn_points", 0.03), ("bonus", 0.03), ("reward", 0.03),
         ("redeem", 0.02), ("refund", 0.01), ("expire", 0.01), ("adjust", 0.01),
         ("coupon", 0.005), ("tier", 0.005))
TIERS = ("", "Silver", "Gold")
LOCATIONS = 3
STAFF = 10
REWARDS = 20
COUPONS = 5


def check_disk(conn: psycopg.Connection[Any], scale: float) -> None:
    need = int(BYTES_PER_SCALE * scale)
    where = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
    path = where if os.access(where, os.R_OK) else "/"
    free = shutil.disk_usage(path).free
    print(f"disk: {free / 1024**3:.1f} GiB free at {path}, about {need / 1024**3:.1f} GiB needed")
    if free < need * 1.5:
        sys.exit("not enough free disk for this scale; try a smaller --scale")


def copy_rows(conn: psycopg.Connection[Any], table: str, columns: str, rows: Any) -> int:
    """COPY ``rows`` (tab-separated lines) into ``table``; returns how many."""
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in rows:
            chunk.append(line)
            if len(chunk) >= 20000:
                copy.write("".join(chunk))
                n += len(chunk)
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))
            n += len(chunk)
    return n


def generate(conn: psycopg.Connection[Any], merchant_id: int, program_id: int, scale: float,
             now: dt.datetime, rng: random.Random) -> dict[str, int]:
    members = int(1_000_000 * scale)
    entries = int(10_000_000 * scale)
    first = now - dt.timedelta(days=DAYS)
    span = DAYS * 86400
    # More members joined lately (the base grows): joining second ~ span × sqrt(u).
    joined = [int(span * math.sqrt(rng.random())) for _ in range(members)]

    minutes: dict[int, str] = {}

    def ts(second: int) -> str:
        # Formatting a datetime per row is most of the generation's time: minutes are
        # formatted once, seconds appended.
        minute, sec = divmod(second, 60)
        text_ = minutes.get(minute)
        if text_ is None:
            moment = first.replace(second=0, microsecond=0) + dt.timedelta(minutes=minute)
            text_ = minutes[minute] = moment.strftime("%Y-%m-%d %H:%M")
        return f"{text_}:{sec:02d}+00"

    counts = {}
    t0 = time.perf_counter()
    counts["members"] = copy_rows(conn, "members",
                                  "id, merchant_id, program_id, name, answers, source, created_at",
                                  (f"{i + 1}\t{merchant_id}\t{program_id}\tMember {i + 1}\t{{}}\t"
                                   f"api\t{ts(joined[i])}\n" for i in range(members)))
    tiers = [rng.choices(TIERS, (70, 20, 10))[0] for _ in range(members)]
    counts["loyalty_cards"] = copy_rows(
        conn, "loyalty_cards",
        "id, merchant_id, program_id, member_id, serial_number, authentication_token, "
        "download_token, status, balance, lifetime_points, lifetime_spend_minor, tier, "
        "version, update_seq, last_modified, created_at, updated_at",
        (f"{i + 1}\t{merchant_id}\t{program_id}\t{i + 1}\tS{i + 1:015d}\ttoken{i + 1}\t"
         f"dl{i + 1}\tactive\t0\t0\t0\t{tiers[i] or chr(92) + 'N'}\t1\t0\t{ts(joined[i])}\t"
         f"{ts(joined[i])}\t{ts(joined[i])}\n" for i in range(members)))
    coupon_cards = max(1, int(entries * 0.005))
    counts["coupon_grants"] = copy_rows(
        conn, "coupon_grants", "id, coupon_id, card_id, used_at, created_at",
        (f"{i + 1}\t{i % COUPONS + 1}\t{i % members + 1}\t\\N\t{ts(joined[i % members])}\n"
         for i in range(min(coupon_cards, members))))
    print(f"  members, cards, coupon grants: {time.perf_counter() - t0:.1f} s")

    names = [t for t, _ in TYPES]
    weights = [w for _, w in TYPES]
    picks = rng.choices(range(len(names)), weights, k=entries)

    def ledger() -> Any:
        r = rng.random
        for n in range(entries):
            kind = names[picks[n]]
            i = int(r() * members)
            second = joined[i] + int((span - joined[i]) * r())
            amount = "\\N"
            reference = "\\N"
            tier_after = tiers[i] or "\\N"
            details = "\\N"
            if kind == "earn":
                minor = 10_000 + int(r() * 4900) * 100
                amount, points = str(minor), minor // 1000
            elif kind == "earn_points":
                kind, points = "earn", rng.randrange(5, 50)
            elif kind == "bonus":
                points = 100
            elif kind == "reward":
                points, reference = -rng.randrange(50, 300), str(rng.randrange(REWARDS) + 1)
            elif kind == "redeem":
                points = -rng.randrange(10, 200)
            elif kind == "refund":
                minor = rng.randrange(10_000, 100_000, 100)
                amount, points = str(minor), -(minor // 1000)
            elif kind == "expire":
                points = -rng.randrange(10, 100)
            elif kind == "adjust":
                points = rng.randrange(-20, 50)
            elif kind == "coupon":
                points, i = 0, n % min(coupon_cards, members)
                reference = str(i + 1)
            else:  # a tier review
                points = 0
                before, after = rng.sample(TIERS, 2)
                tier_after = after or "\\N"
                details = json.dumps({"from": before or None, "to": after or None})
            location = int(r() * (LOCATIONS + 1))  # 0: the API, no store
            staff = 1 + int(r() * STAFF) if location else 0
            yield (f"{merchant_id}\t{i + 1}\t{kind}\t{points}\t{amount}\t{points}\t"
                   f"{tier_after}\t{reference}\t{details}\t{ts(second)}\t"
                   f"{location or chr(92) + 'N'}\t{staff or chr(92) + 'N'}\n")

    t0 = time.perf_counter()
    counts["ledger_transactions"] = copy_rows(
        conn, "ledger_transactions",
        "merchant_id, card_id, type, points, amount_minor, balance_after, tier_after, "
        "reference_id, details, created_at, location_id, staff_user_id", ledger())
    print(f"  ledger: {time.perf_counter() - t0:.1f} s")

    def wallet_events() -> Any:
        for i in range(members):
            u = rng.random()
            at = joined[i] + rng.randrange(600)
            wallet = "apple" if u < 0.6 else "google" if u < 0.9 else None
            if wallet is None:
                continue
            yield (f"{merchant_id}\t{i + 1}\t{wallet}\tinstalled\tregistered\t{ts(at)}\n")
            if rng.random() < 0.15:
                gone = at + int((span - at) * rng.random())
                yield (f"{merchant_id}\t{i + 1}\t{wallet}\tremoved\tunregistered\t{ts(gone)}\n")

    t0 = time.perf_counter()
    counts["wallet_events"] = copy_rows(
        conn, "wallet_events", "merchant_id, card_id, wallet, event, cause, occurred_at",
        wallet_events())
    print(f"  wallet events: {time.perf_counter() - t0:.1f} s")
    for table in ("members", "loyalty_cards", "coupon_grants"):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                     f"(SELECT max(id) FROM {table}))")
    return counts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--pg-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=30, help="measured calls per widget")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", action="store_true",
                        help="reuse the data loaded before (no generation, no first refresh)")
    args = parser.parse_args()
    raw_url = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.UTC)

    with psycopg.connect(raw_url, autocommit=True) as conn:
        check_disk(conn, args.scale)
        if not args.keep:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    engine = make_engine(args.pg_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    if not args.keep:
        upgrade(engine)
        with sessions() as s:
            merchant, _key, raw_key = create_merchant(s, "Bench", time_zone=ZONE)
            merchant_id = merchant.id
            program_id = s.execute(text(
                "INSERT INTO loyalty_programs (merchant_id, name, kind, currency, languages, "
                "template, design, rules, enrollment, join_token, created_at, updated_at) "
                "VALUES (:m, 'Bench', 'points', 'RUB', '[\"ru\", \"en\"]', 'points', '{}', "
                "'{\"point_value\": \"0.50\", \"tiers\": [{\"name\": \"Silver\", "
                "\"threshold\": \"1000\"}, {\"name\": \"Gold\", \"threshold\": \"5000\"}]}', "
                "'{}', 'benchjoin', now(), now()) RETURNING id"), {"m": merchant_id}).scalar_one()
            for n in range(LOCATIONS):
                s.execute(text("INSERT INTO locations (merchant_id, name, address, latitude, "
                               "longitude, created_at, updated_at) VALUES (:m, :name, 'x', "
                               "55.75, 37.61, now(), now())"),
                          {"m": merchant_id, "name": f"Store {n + 1}"})
            for n in range(REWARDS):
                s.execute(text("INSERT INTO rewards (program_id, name, cost_points, active, "
                               "created_at) VALUES (:p, :name, 100, true, now())"),
                          {"p": program_id, "name": f"Reward {n + 1}"})
            for n in range(COUPONS):
                s.execute(text("INSERT INTO coupons (program_id, title, segment, evergreen, "
                               "created_at) VALUES (:p, :t, '{}', false, now())"),
                          {"p": program_id, "t": f"Coupon {n + 1}"})
            s.commit()
        (Path(tempfile.gettempdir()) / "analytics-bench-key").write_text(raw_key)
        print(f"generating scale {args.scale} ...")
        t0 = time.perf_counter()
        with psycopg.connect(raw_url) as conn:
            counts = generate(conn, merchant_id, program_id, args.scale, now, rng)
            conn.commit()
        with psycopg.connect(raw_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(f"loaded {counts} in {time.perf_counter() - t0:.0f} s; database "
              f"{size / 1024**3:.2f} GiB")
        t0 = time.perf_counter()
        with sessions() as s:
            done = analytics.refresh(s, merchant_id, dt.datetime.now(dt.UTC))
            s.commit()
        print(f"first refresh (everything): {time.perf_counter() - t0:.2f} s "
              f"({done.since} … {done.through})")
    else:
        raw_key = (Path(tempfile.gettempdir()) / "analytics-bench-key").read_text()
        with sessions() as s:
            merchant_id = s.execute(text("SELECT min(id) FROM merchants")).scalar_one()
    today = dt.datetime.now(dt.UTC).date()
    for label, since in (("first refresh of a day (yesterday settles)",
                          today - dt.timedelta(days=1)),
                         ("refresh within the day (every 5 minutes)", None)):
        t0 = time.perf_counter()
        with sessions() as s:
            analytics.refresh(s, merchant_id, dt.datetime.now(dt.UTC), since=since)
            s.commit()
        print(f"{label}: {time.perf_counter() - t0:.2f} s")
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    engine.dispose()
    measure(args, raw_key)


WIDGETS = ("summary", "daily", "cohorts", "points", "rewards", "locations", "staff", "tiers")


def measure(args: argparse.Namespace, key: str) -> None:
    app = create_app({"DATABASE_URL": args.pg_url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": tempfile.mkdtemp(prefix="wallet-bench-"),
                      "PUBLIC_URL": "https://bench.example.test", "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    engine = app.extensions["wallet"].engine
    today = dt.datetime.now(dt.UTC).date()
    periods = {"30 d": {}, "365 d": {"start": (today - dt.timedelta(days=364)).isoformat(),
                                     "end": today.isoformat()}}
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        captured.append((statement, parameters))

    print(f"\n{'widget':<10} {'period':<7} {'p50 ms':>8} {'p95 ms':>8}   slowest statement "
          "(EXPLAIN ANALYZE)")
    for widget in WIDGETS:
        for label, query in periods.items():
            path = f"/api/v1/analytics/{widget}"
            for _ in range(3):
                r = client.get(path, query_string=query, headers=headers)
                assert r.status_code == 200, r.get_data(as_text=True)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = client.get(path, query_string=query, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
            captured.clear()
            client.get(path, query_string=query, headers=headers)
            plans = explain(engine, [c for c in captured if c[0].lstrip().upper()
                                     .startswith("SELECT")])
            slowest = max(plans, key=lambda p: p[0]) if plans else (0.0, "-", 0)
            print(f"{widget:<10} {label:<7} {statistics.median(times):8.1f} "
                  f"{percentile(times, 0.95):8.1f}   {len(plans)} statements, "
                  f"{sum(p[0] for p in plans):.1f} ms in all; slowest {slowest[0]:.1f} ms: "
                  f"{slowest[1]}, {slowest[2]} rows read")
    event.remove(engine, "before_cursor_execute", _capture)


def explain(engine: Any, statements: list[tuple[str, Any]]) -> list[tuple[float, str, int]]:
    """For each statement: execution time, the plan's top nodes, the rows its scans read."""
    out = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            result = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()
            plan = (result if isinstance(result, list) else json.loads(result))[0]
            nodes, scanned = scans(plan["Plan"])
            out.append((float(plan["Execution Time"]), "; ".join(dict.fromkeys(nodes)), scanned))
    return out


def scans(node: dict[str, Any]) -> tuple[list[str], int]:
    """The scans of a plan node and its children, and the rows they read."""
    nodes, rows = [], 0
    if "Scan" in node["Node Type"]:
        nodes.append(f"{node['Node Type']} on "
                     f"{node.get('Index Name') or node.get('Relation Name')}")
        rows += int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
    for child in node.get("Plans", ()):
        more, more_rows = scans(child)
        nodes += more
        rows += more_rows
    return nodes, rows


if __name__ == "__main__":
    main()
