"""The numbers an owner asks for: members, purchases, revenue, retention, points, wallets.

``docs/analytics.md`` defines every metric in words, with the SQL idea. Days and months are
the merchant's local ones (``local_time``): a purchase at 23:30 in Vladivostok counts on
that day there, whatever UTC says.

Two halves, so that a dashboard answers in milliseconds whatever the merchant's size:

* :func:`refresh`, run by the worker every few minutes for each merchant, recomputes the
  rollup tables (``analytics_days``, ``analytics_program_days``, ``analytics_cohorts``,
  ``analytics_breakdowns``) from the ledger, the members and the wallet event log, for the
  local days from its last refresh through today. Entries are only ever written at the
  moment they happen, so earlier days never change: a refresh within a day reads that
  day's entries only. The numbers that need more history (members active in the last 30
  and 90 days, the cohorts' months) are counted for the days that are over, by the first
  refresh of the next day, which reads the last 90 days; until then today shows
  yesterday's. The first refresh reads everything.
* The readers (:func:`summary`, :func:`daily`, :func:`cohorts`, :func:`points`,
  :func:`popularity`, :func:`by_location`, :func:`by_staff`, :func:`tiers`) read those
  tables only: a few hundred rows per program and period.

Members active in a rolling window (30 or 90 days) are counted without a scan per day: each
member's purchase days become intervals of days on which the member counts (a purchase on
day *d* makes them active on *d* … *d*+29; two purchases within the window make them a
repeat buyer from the second on), overlapping intervals of one member are cut where the
previous ends (``LAG`` over the member's days), and the count on a day is the running sum
of the intervals' starts less their ends.

Pure SQLAlchemy Core, the same statements on SQLite and PostgreSQL; only the local-day
expression and date arithmetic differ (:func:`_local_day`, :func:`_plus_days`). Never
commits: the worker (or the caller) owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from sqlalchemy import Date
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..local_time import local_date
from ..local_time import start_of_day
from ..local_time import zone
from ..models import AnalyticsBreakdown
from ..models import AnalyticsCohort
from ..models import AnalyticsDay
from ..models import AnalyticsProgramDay
from ..models import AnalyticsRefresh
from ..models import ConsoleUser
from ..models import Coupon
from ..models import CouponGrant
from ..models import LedgerTransaction
from ..models import Location
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..models import Reward
from ..models import WalletEvent

DAYS = AnalyticsDay.__table__
PROGRAM_DAYS = AnalyticsProgramDay.__table__
COHORTS = AnalyticsCohort.__table__
BREAKDOWNS = AnalyticsBreakdown.__table__
REFRESHES = AnalyticsRefresh.__table__
TXN = LedgerTransaction.__table__
CARDS = LoyaltyCard.__table__
MEMBERS = Member.__table__
EVENTS = WalletEvent.__table__
PROGRAMS = LoyaltyProgram.__table__

#: The rolling windows of active members, in days.
WINDOWS = (30, 90)
#: The months at which a cohort's lifetime value is read.
LTV_MONTHS = (1, 3, 6, 12)
#: The longest period a reader takes, in days.
MAX_PERIOD_DAYS = 3660
#: The days a period may name.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)
#: A purchase is an ``earn`` entry: with an amount (a paid purchase, which counts as
#: revenue), or stamps or points alone (a visit without an amount).
PURCHASE = "earn"
#: The breakdown kinds (``analytics_breakdowns.kind``).
REWARD, COUPON, TIER_MOVE, TIER_MEMBERS = "reward", "coupon", "tier_move", "tier_members"

#: The sums of ``analytics_days``, and those of them that come from the ledger.
_DAY_SUMS = ("new_members", "purchases", "paid_purchases", "revenue_minor", "refunds_minor",
             "points_issued", "points_redeemed", "points_expired", "points_net",
             "rewards_redeemed", "coupons_redeemed", "manual_entries", "apple_installs",
             "apple_removals", "google_installs", "google_removals")
_LEDGER_SUMS = ("purchases", "paid_purchases", "revenue_minor", "refunds_minor",
                "points_issued", "points_redeemed", "points_expired", "points_net",
                "rewards_redeemed", "coupons_redeemed", "manual_entries")


# --- The merchant's calendar in SQL --------------------------------------------------------


def _offsets(time_zone: str, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """The zone's UTC offsets between ``lo`` and ``hi``: ``(until, seconds)`` pieces, the
    last one open-ended (its ``until`` is ``hi``)."""
    tz = zone(time_zone)

    def offset(moment: dt.datetime) -> int:
        delta = moment.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    pieces: list[tuple[dt.datetime, int]] = []
    current, at = offset(lo), lo
    step = dt.timedelta(hours=6)
    while at < hi:
        nxt = min(at + step, hi)
        if offset(nxt) != current:
            a, b = at, nxt  # a change between a and b: find its minute
            while b - a > dt.timedelta(minutes=1):
                mid = a + (b - a) / 2
                if offset(mid) == current:
                    a = mid
                else:
                    b = mid
            pieces.append((b.replace(second=0, microsecond=0), current))
            current = offset(nxt)
        at = nxt
    pieces.append((hi, current))
    return pieces


def _local_day(dialect: str, column: Any, time_zone: str, lo: dt.datetime,
               hi: dt.datetime) -> ColumnElement[Any]:
    """The merchant's local date of a UTC timestamp ``column`` whose values lie in [lo, hi).

    PostgreSQL converts with the time zone database (``AT TIME ZONE``); SQLite has none, so
    the zone's offsets over the range (summer time included) are written into the query."""
    if dialect == "postgresql":
        return cast(func.timezone(time_zone, column), Date)
    pieces = _offsets(time_zone, lo, hi)

    def shifted(seconds: int) -> ColumnElement[Any]:
        return func.date(column, f"{seconds:+d} seconds")

    if len(pieces) == 1:
        return shifted(pieces[0][1])
    return case(*[(column < until, shifted(seconds)) for until, seconds in pieces[:-1]],
                else_=shifted(pieces[-1][1]))


def _month_of(dialect: str, day: Any) -> ColumnElement[Any]:
    """The first day of the month of a date expression."""
    if dialect == "postgresql":
        return cast(func.date_trunc("month", day), Date)
    return func.date(day, "start of month")


def _plus_days(dialect: str, day: Any, days: int) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return day + literal_column(str(int(days)))  # date + integer (never bigint)
    return func.date(day, f"{int(days):+d} days")


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _as_date(value: Any) -> dt.date:
    """A date from a query: SQLite's date functions answer with ISO text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# --- Refresh (the worker) ------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """What a refresh recomputed: the merchant's local days ``since`` … ``through``."""

    merchant_id: int
    since: dt.date
    through: dt.date


def due_merchants(session: Session, now: dt.datetime, every: dt.timedelta) -> list[int]:
    """Merchants whose rollups were never refreshed, or not for ``every``."""
    rows = session.execute(
        select(Merchant.id).outerjoin(REFRESHES, REFRESHES.c.merchant_id == Merchant.id)
        .where(or_(REFRESHES.c.refreshed_at.is_(None), REFRESHES.c.refreshed_at <= now - every))
        .order_by(Merchant.id))
    return [r.id for r in rows]


def claim_refresh(session: Session, merchant_id: int, now: dt.datetime,
                  every: dt.timedelta) -> bool:
    """Claim the merchant's next refresh (a conditional update, or the first row), so that
    of several workers one refreshes it; False: another worker has it or did it lately.
    The claim is held until the caller's transaction ends."""
    claimed = session.execute(
        REFRESHES.update().where(REFRESHES.c.merchant_id == merchant_id,
                                 REFRESHES.c.refreshed_at <= now - every)
        .values(refreshed_at=now))
    if claimed.rowcount == 1:
        return True
    if session.execute(select(REFRESHES.c.merchant_id)
                       .where(REFRESHES.c.merchant_id == merchant_id)).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(insert(REFRESHES).values(merchant_id=merchant_id,
                                                     refreshed_at=now, through=None))
    except IntegrityError:
        return False
    return True


def refresh(session: Session, merchant_id: int, now: dt.datetime, *,
            since: dt.date | None = None) -> Refreshed:
    """Recompute the merchant's rollups from local day ``since`` (by default the day of the
    last refresh, or the first day with data) through today, and record the refresh."""
    time_zone = session.execute(select(Merchant.time_zone)
                                .where(Merchant.id == merchant_id)).scalar_one()
    today = local_date(now, time_zone)
    last = session.execute(select(REFRESHES.c.through)
                           .where(REFRESHES.c.merchant_id == merchant_id)).scalar()
    if since is None:
        since = _as_date(last) if last is not None else _first_day(session, merchant_id,
                                                                    time_zone, today)
    since = min(since, today)
    program_ids = list(session.scalars(select(PROGRAMS.c.id)
                                       .where(PROGRAMS.c.merchant_id == merchant_id)))
    dialect = session.get_bind().dialect.name
    ctx = _Context(session, dialect, merchant_id, time_zone, since, today, now, program_ids)
    _refresh_days(ctx)
    _refresh_program_days(ctx)
    _refresh_cohorts(ctx)
    _refresh_breakdowns(ctx)
    values = {"refreshed_at": now, "through": today}
    if session.execute(select(REFRESHES.c.merchant_id).where(
            REFRESHES.c.merchant_id == merchant_id)).first() is None:
        session.execute(insert(REFRESHES).values(merchant_id=merchant_id, **values))
    else:
        session.execute(REFRESHES.update().where(REFRESHES.c.merchant_id == merchant_id)
                        .values(**values))
    return Refreshed(merchant_id, since, today)


def _first_day(session: Session, merchant_id: int, time_zone: str, today: dt.date) -> dt.date:
    firsts = [
        session.scalar(select(func.min(MEMBERS.c.created_at))
                       .where(MEMBERS.c.merchant_id == merchant_id)),
        session.scalar(select(func.min(TXN.c.created_at)).where(TXN.c.merchant_id == merchant_id)),
        session.scalar(select(func.min(EVENTS.c.occurred_at))
                       .where(EVENTS.c.merchant_id == merchant_id)),
    ]
    moments = [m if m.tzinfo else m.replace(tzinfo=dt.UTC) for m in firsts if m is not None]
    return min((local_date(m, time_zone) for m in moments), default=today)


@dataclass
class _Context:
    session: Session
    dialect: str
    merchant_id: int
    time_zone: str
    since: dt.date
    today: dt.date
    now: dt.datetime
    program_ids: list[int]
    lo: dt.datetime = field(init=False)
    hi: dt.datetime = field(init=False)
    today_starts: dt.datetime = field(init=False)

    def __post_init__(self) -> None:
        self.lo = start_of_day(self.since, self.time_zone)
        self.hi = start_of_day(self.today + dt.timedelta(days=1), self.time_zone)
        self.today_starts = start_of_day(self.today, self.time_zone)

    @property
    def settles(self) -> bool:
        """Whether days before today are refreshed: the rolling windows and the cohorts
        are counted for them (and only for them)."""
        return self.since < self.today

    def day(self, column: Any, lo: dt.datetime | None = None) -> ColumnElement[Any]:
        return _local_day(self.dialect, column, self.time_zone, lo or self.lo, self.hi)


def _refresh_days(ctx: _Context) -> None:
    s, m = ctx.session, ctx.merchant_id
    s.execute(delete(DAYS).where(DAYS.c.merchant_id == m, DAYS.c.day >= ctx.since))
    rows: dict[tuple[int, int, int, dt.date], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(_DAY_SUMS, 0))

    joined = (select(MEMBERS.c.program_id, ctx.day(MEMBERS.c.created_at).label("d"))
              .where(MEMBERS.c.merchant_id == m, MEMBERS.c.created_at >= ctx.lo,
                     MEMBERS.c.created_at < ctx.hi).subquery())
    for r in s.execute(select(joined.c.program_id, joined.c.d, func.count().label("n"))
                       .group_by(joined.c.program_id, joined.c.d)):
        rows[(r.program_id, 0, 0, _as_date(r.d))]["new_members"] += r.n

    entries = (
        select(CARDS.c.program_id, func.coalesce(TXN.c.location_id, 0).label("loc"),
               func.coalesce(TXN.c.staff_user_id, 0).label("staff"),
               ctx.day(TXN.c.created_at).label("d"), TXN.c.type, TXN.c.points,
               TXN.c.amount_minor)
        .join(CARDS, CARDS.c.id == TXN.c.card_id)
        .where(TXN.c.merchant_id == m, TXN.c.created_at >= ctx.lo, TXN.c.created_at < ctx.hi)
        .subquery())
    e = entries.c

    def total(condition: Any, value: Any) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    def count(condition: Any) -> ColumnElement[Any]:
        return func.count(case((condition, 1)))

    sums = select(
        e.program_id, e.loc, e.staff, e.d,
        count(e.type == PURCHASE).label("purchases"),
        count(and_(e.type == PURCHASE, e.amount_minor.is_not(None))).label("paid_purchases"),
        total(and_(e.type == PURCHASE, e.amount_minor.is_not(None)), e.amount_minor)
        .label("revenue_minor"),
        total(and_(e.type == "refund", e.amount_minor.is_not(None)), e.amount_minor)
        .label("refunds_minor"),
        total(and_(e.type.in_((PURCHASE, "bonus", "adjust")), e.points > 0), e.points)
        .label("points_issued"),
        total(e.type.in_(("redeem", "reward")), -e.points).label("points_redeemed"),
        total(e.type == "expire", -e.points).label("points_expired"),
        func.coalesce(func.sum(e.points), 0).label("points_net"),
        count(e.type == "reward").label("rewards_redeemed"),
        count(e.type == "coupon").label("coupons_redeemed"),
        count(e.type == "adjust").label("manual_entries"),
    ).group_by(e.program_id, e.loc, e.staff, e.d)
    for r in s.execute(sums):
        row = rows[(r.program_id, r.loc, r.staff, _as_date(r.d))]
        for name in _LEDGER_SUMS:
            row[name] += int(getattr(r, name))

    events = (select(CARDS.c.program_id, ctx.day(EVENTS.c.occurred_at).label("d"),
                     EVENTS.c.wallet, EVENTS.c.event)
              .join(CARDS, CARDS.c.id == EVENTS.c.card_id)
              .where(EVENTS.c.merchant_id == m, EVENTS.c.occurred_at >= ctx.lo,
                     EVENTS.c.occurred_at < ctx.hi).subquery())
    for r in s.execute(select(events.c.program_id, events.c.d, events.c.wallet,
                              events.c.event, func.count().label("n"))
                       .group_by(events.c.program_id, events.c.d, events.c.wallet,
                                 events.c.event)):
        name = f"{r.wallet}_{'installs' if r.event == 'installed' else 'removals'}"
        if name in _DAY_SUMS:
            rows[(r.program_id, 0, 0, _as_date(r.d))][name] += r.n

    if rows:
        s.execute(insert(DAYS), [
            {"merchant_id": m, "program_id": p, "location_id": loc, "staff_id": staff, "day": d,
             **sums_} for (p, loc, staff, d), sums_ in rows.items()])


def _refresh_program_days(ctx: _Context) -> None:
    s, m, since = ctx.session, ctx.merchant_id, ctx.since
    keys = _Deltas.keys_for()
    # The rolling windows are counted for days that are over, by the day's first refresh;
    # the day in progress shows the day before's (refreshes within a day, every few
    # minutes, then read only that day's entries).
    kept: dict[int, dict[str, int]] = {}
    if not ctx.settles:
        kept = {r.program_id: {k: int(getattr(r, k)) for k in keys} for r in s.execute(
            select(PROGRAM_DAYS.c.program_id, *[PROGRAM_DAYS.c[k] for k in keys])
            .where(PROGRAM_DAYS.c.merchant_id == m, PROGRAM_DAYS.c.day == since))}
    s.execute(delete(PROGRAM_DAYS).where(PROGRAM_DAYS.c.merchant_id == m,
                                         PROGRAM_DAYS.c.day >= since))
    if not ctx.program_ids:
        return
    # Running totals carry on from the day before ``since``.
    before = since - dt.timedelta(days=1)
    base = {r.program_id: (r.members_total, r.points_outstanding) for r in s.execute(
        select(PROGRAM_DAYS.c.program_id, PROGRAM_DAYS.c.members_total,
               PROGRAM_DAYS.c.points_outstanding)
        .where(PROGRAM_DAYS.c.merchant_id == m, PROGRAM_DAYS.c.day == before))}
    missing = [p for p in ctx.program_ids if p not in base]
    if missing:
        members = dict(s.execute(
            select(MEMBERS.c.program_id, func.count()).where(
                MEMBERS.c.program_id.in_(missing), MEMBERS.c.created_at < ctx.lo)
            .group_by(MEMBERS.c.program_id)).all())
        outstanding = dict(s.execute(
            select(CARDS.c.program_id, func.coalesce(func.sum(TXN.c.points), 0))
            .join(CARDS, CARDS.c.id == TXN.c.card_id)
            .where(TXN.c.merchant_id == m, CARDS.c.program_id.in_(missing),
                   TXN.c.created_at < ctx.lo)
            .group_by(CARDS.c.program_id)).all())
        for p in missing:
            base[p] = (int(members.get(p, 0)), int(outstanding.get(p, 0)))

    daily = defaultdict(lambda: [0, 0])
    for r in s.execute(select(DAYS.c.program_id, DAYS.c.day,
                              func.sum(DAYS.c.new_members).label("n"),
                              func.sum(DAYS.c.points_net).label("p"))
                       .where(DAYS.c.merchant_id == m, DAYS.c.day >= since)
                       .group_by(DAYS.c.program_id, DAYS.c.day)):
        daily[(r.program_id, _as_date(r.day))] = [int(r.n), int(r.p)]

    deltas = _window_deltas(ctx) if ctx.settles else _Deltas()
    out = []
    for p in ctx.program_ids:
        members, outstanding = base[p]
        running = kept.get(p) or dict.fromkeys(keys, 0)
        pending = deltas.for_program(p)
        index = 0
        for day in _days(since, ctx.today):
            while day < ctx.today and index < len(pending) and pending[index][0] <= day:
                for key, value in pending[index][1].items():
                    running[key] += value
                index += 1
            n, pts = daily.get((p, day), (0, 0))
            members += n
            outstanding += pts
            out.append({"program_id": p, "day": day, "merchant_id": m,
                        "members_total": members, "points_outstanding": outstanding,
                        **running})
    s.execute(insert(PROGRAM_DAYS), out)


class _Deltas:
    """Per program, the days on which the rolling counts change and by how much."""

    def __init__(self) -> None:
        self._by_program: dict[int, dict[dt.date, dict[str, int]]] = defaultdict(dict)

    def add(self, program_id: int, day: dt.date, values: dict[str, int]) -> None:
        slot = self._by_program[program_id].setdefault(day, dict.fromkeys(self.keys_for(), 0))
        for key, value in values.items():
            slot[key] += value

    @staticmethod
    def keys_for() -> list[str]:
        return [f"{kind}_{w}" for kind in ("active", "repeat") for w in WINDOWS]

    def for_program(self, program_id: int) -> list[tuple[dt.date, dict[str, int]]]:
        return sorted(self._by_program.get(program_id, {}).items())


def _window_deltas(ctx: _Context) -> _Deltas:
    """The starts (+1) and ends (−1) of the intervals of days on which each member counts
    as active (a purchase in the window) or as a repeat buyer (two or more), for the
    windows of :data:`WINDOWS`, from the purchases of days before today. Reads the
    purchases of the longest window before ``since`` onwards: intervals that start earlier
    end before ``since`` or are cut there."""
    d_ = ctx.dialect
    longest = max(WINDOWS)
    lo_day = ctx.since - dt.timedelta(days=longest - 1)
    lo = start_of_day(lo_day, ctx.time_zone)
    purchases = (select(TXN.c.card_id, CARDS.c.program_id,
                        ctx.day(TXN.c.created_at, lo).label("d"))
                 .join(CARDS, CARDS.c.id == TXN.c.card_id)
                 .where(TXN.c.merchant_id == ctx.merchant_id, TXN.c.type == PURCHASE,
                        TXN.c.created_at >= lo, TXN.c.created_at < ctx.today_starts)
                 .subquery())
    card_days = (select(purchases.c.card_id, purchases.c.program_id, purchases.c.d,
                        func.count().label("n"))
                 .group_by(purchases.c.card_id, purchases.c.program_id, purchases.c.d)
                 .subquery())
    order = {"partition_by": card_days.c.card_id, "order_by": card_days.c.d}
    lagged = select(
        card_days.c.program_id, card_days.c.d, card_days.c.n,
        func.lag(card_days.c.d, 1).over(**order).label("p1"),
        func.lag(card_days.c.d, 2).over(**order).label("p2"),
        func.lag(card_days.c.n, 1).over(**order).label("pn"),
    ).cte("lagged")
    c = lagged.c
    keys = _Deltas.keys_for()
    parts = []
    for w in WINDOWS:
        # Active: d … d+w−1, from where the previous purchase's interval ends.
        a_start = _greatest(d_, c.d, func.coalesce(_plus_days(d_, c.p1, w), c.d))
        a_end = _plus_days(d_, c.d, w)
        # Repeat: from d while another purchase lies within the window before it.
        r_end = case((c.n >= 2, _plus_days(d_, c.d, w)),
                     (c.p1.is_not(None), _plus_days(d_, c.p1, w)), else_=c.d)
        r_prev = case((c.pn >= 2, _plus_days(d_, c.p1, w)),
                      (c.p2.is_not(None), _plus_days(d_, c.p2, w)), else_=c.d)
        r_start = _greatest(d_, c.d, r_prev)
        for kind, start, end in (("active", a_start, a_end), ("repeat", r_start, r_end)):
            key = f"{kind}_{w}"
            for at, sign in ((start, 1), (end, -1)):
                parts.append(select(c.program_id, at.label("day"),
                                    *[literal(sign if k == key else 0).label(k) for k in keys])
                             .where(start < end))
    changes = union_all(*parts).subquery()
    query = (select(changes.c.program_id, changes.c.day,
                    *[func.sum(changes.c[k]).label(k) for k in keys])
             .group_by(changes.c.program_id, changes.c.day))
    deltas = _Deltas()
    for r in ctx.session.execute(query):
        deltas.add(r.program_id, _as_date(r.day), {k: int(getattr(r, k)) for k in keys})
    return deltas


def _refresh_cohorts(ctx: _Context) -> None:
    """Counted through the end of yesterday, by the day's first refresh (as the rolling
    windows are)."""
    s, m = ctx.session, ctx.merchant_id
    if not ctx.settles:
        return
    month = _month_start(ctx.since)
    s.execute(delete(COHORTS).where(COHORTS.c.merchant_id == m, COHORTS.c.month >= month))
    lo = start_of_day(month, ctx.time_zone)
    first_member = s.scalar(select(func.min(MEMBERS.c.created_at))
                            .where(MEMBERS.c.merchant_id == m))
    if first_member is None:
        return
    if first_member.tzinfo is None:
        first_member = first_member.replace(tzinfo=dt.UTC)
    joined_lo = min(first_member, lo)
    entries = (
        select(TXN.c.card_id, CARDS.c.program_id, TXN.c.type, TXN.c.amount_minor,
               _month_of(ctx.dialect, _local_day(ctx.dialect, MEMBERS.c.created_at,
                                                 ctx.time_zone, joined_lo, ctx.hi))
               .label("cohort"),
               _month_of(ctx.dialect, ctx.day(TXN.c.created_at, lo)).label("month"))
        .join(CARDS, CARDS.c.id == TXN.c.card_id)
        .join(MEMBERS, MEMBERS.c.id == CARDS.c.member_id)
        .where(TXN.c.merchant_id == m, TXN.c.type.in_((PURCHASE, "refund")),
               TXN.c.created_at >= lo, TXN.c.created_at < ctx.today_starts)
        .subquery())
    e = entries.c
    amount = func.coalesce(func.sum(case(
        (and_(e.type == PURCHASE, e.amount_minor.is_not(None)), e.amount_minor),
        (and_(e.type == "refund", e.amount_minor.is_not(None)), -e.amount_minor), else_=0)), 0)
    query = (select(e.program_id, e.cohort, e.month,
                    func.count(func.distinct(case((e.type == PURCHASE, e.card_id))))
                    .label("active"), amount.label("amount"))
             .group_by(e.program_id, e.cohort, e.month))
    rows = [{"program_id": r.program_id, "cohort_month": _as_date(r.cohort),
             "month": _as_date(r.month), "merchant_id": m, "active_members": int(r.active),
             "amount_minor": int(r.amount)} for r in s.execute(query)]
    if rows:
        s.execute(insert(COHORTS), rows)


def _refresh_breakdowns(ctx: _Context) -> None:
    s, m = ctx.session, ctx.merchant_id
    s.execute(delete(BREAKDOWNS).where(
        BREAKDOWNS.c.merchant_id == m, BREAKDOWNS.c.day >= ctx.since,
        or_(BREAKDOWNS.c.kind != TIER_MEMBERS, BREAKDOWNS.c.day == ctx.today)))
    out: list[dict[str, Any]] = []

    def collect(kind: str, query: Any) -> None:
        sub = query.subquery()
        for r in s.execute(select(sub.c.program_id, sub.c.loc, sub.c.d, sub.c.item,
                                  func.count().label("n"))
                           .group_by(sub.c.program_id, sub.c.loc, sub.c.d, sub.c.item)):
            if r.item is not None:
                out.append({"merchant_id": m, "program_id": r.program_id,
                            "location_id": r.loc, "day": _as_date(r.d), "kind": kind,
                            "item": str(r.item)[:130], "count": int(r.n)})

    def entries(*columns: Any) -> Any:
        return (select(CARDS.c.program_id, func.coalesce(TXN.c.location_id, 0).label("loc"),
                       ctx.day(TXN.c.created_at).label("d"), *columns)
                .join(CARDS, CARDS.c.id == TXN.c.card_id)
                .where(TXN.c.merchant_id == m, TXN.c.created_at >= ctx.lo,
                       TXN.c.created_at < ctx.hi))

    collect(REWARD, entries(TXN.c.reference_id.label("item")).where(TXN.c.type == "reward"))
    collect(COUPON, entries(CouponGrant.coupon_id.label("item"))
            .join(CouponGrant, CouponGrant.id == TXN.c.reference_id)
            .where(TXN.c.type == "coupon"))
    # A tier changes by the daily review or the merchant (``tier``, ``tier_set``: the entry
    # says from and to) or by an upgrade on earning (``details.upgrade``).
    set_from = TXN.c.details[("from",)].as_string()
    up_from = TXN.c.details[("upgrade", "from")].as_string()
    up_to = TXN.c.details[("upgrade", "to")].as_string()
    is_set = TXN.c.type.in_(("tier", "tier_set"))
    moved = case((is_set, func.coalesce(set_from, "") + ">" + func.coalesce(TXN.c.tier_after,
                                                                             "")),
                 (up_to.is_not(None), func.coalesce(up_from, "") + ">" + up_to))
    collect(TIER_MOVE, entries(moved.label("item")).where(
        or_(is_set, TXN.c.type.in_((PURCHASE, "bonus", "adjust", "refund")))))
    for r in s.execute(select(CARDS.c.program_id, CARDS.c.tier, func.count().label("n"))
                       .where(CARDS.c.merchant_id == m, CARDS.c.status == "active")
                       .group_by(CARDS.c.program_id, CARDS.c.tier)):
        out.append({"merchant_id": m, "program_id": r.program_id, "location_id": 0,
                    "day": ctx.today, "kind": TIER_MEMBERS, "item": r.tier or "",
                    "count": int(r.n)})
    if out:
        s.execute(insert(BREAKDOWNS), out)


# --- Readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a reader looks at: a merchant's programs (one, or all), maybe one store, and a
    period of local days with the period of the same length just before it."""

    merchant_id: int
    program_ids: tuple[int, ...]
    location_id: int | None
    start: dt.date
    end: dt.date
    currency: str | None
    time_zone: str
    refreshed_at: dt.datetime | None
    #: Each program's value of one balance unit in minor units (:func:`point_values`).
    point_values: tuple[tuple[int, Decimal | None], ...] = ()

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> tuple[dt.date, dt.date]:
        return (self.start - dt.timedelta(days=self.length),
                self.start - dt.timedelta(days=1))


def scope(session: Session, merchant_id: int, *, program_id: int | None = None,
          location_id: int | None = None, start: dt.date | None = None,
          end: dt.date | None = None, now: dt.datetime) -> Scope:
    """The scope of a reader; by default the 30 local days through today.

    :raises ResourceNotFound: the program or the location is missing or another merchant's.
    :raises ValidationFailed: a day outside :data:`FIRST_DAY` … :data:`LAST_DAY`, ``end``
        before ``start``, a period over
        :data:`MAX_PERIOD_DAYS`, or programs of different currencies without ``program_id``.
    """
    merchant = session.execute(
        select(Merchant.time_zone, REFRESHES.c.refreshed_at)
        .outerjoin(REFRESHES, REFRESHES.c.merchant_id == Merchant.id)
        .where(Merchant.id == merchant_id)).first()
    if merchant is None:
        raise ResourceNotFound(f"merchant {merchant_id} not found", field="merchant_id")
    today = local_date(now, merchant.time_zone)
    for name, day in (("start", start), ("end", end)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationFailed(f"{name}: a day from {FIRST_DAY.isoformat()} to "
                                   f"{LAST_DAY.isoformat()}", field=name)
    end = end or (today if start is None
                  else max(start, min(today, start + dt.timedelta(days=29))))
    start = start or end - dt.timedelta(days=29)
    if end < start:
        raise ValidationFailed("end: must not be before start", field="end")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationFailed(f"end: a period is {MAX_PERIOD_DAYS} days at most", field="end")
    query = select(PROGRAMS.c.id, PROGRAMS.c.currency, PROGRAMS.c.kind, PROGRAMS.c.rules).where(
        PROGRAMS.c.merchant_id == merchant_id).order_by(PROGRAMS.c.id)
    if program_id is not None:
        query = query.where(PROGRAMS.c.id == program_id)
    programs = session.execute(query).all()
    if program_id is not None and not programs:
        raise ResourceNotFound(f"program {program_id} not found", field="program_id")
    currencies = {p.currency for p in programs}
    if len(currencies) > 1:
        raise ValidationFailed(
            "program_id: the merchant's programs count money in different currencies ("
            f"{', '.join(sorted(currencies))}); choose one program", field="program_id")
    if location_id is not None and session.execute(
            select(Location.id).where(Location.id == location_id,
                                      Location.merchant_id == merchant_id)).first() is None:
        raise ResourceNotFound(f"location {location_id} not found", field="location_id")
    refreshed = merchant.refreshed_at
    if refreshed is not None and refreshed.tzinfo is None:
        refreshed = refreshed.replace(tzinfo=dt.UTC)  # SQLite, read without the column type
    return Scope(merchant_id, tuple(p.id for p in programs), location_id, start, end,
                 next(iter(currencies), None), merchant.time_zone, refreshed,
                 tuple((p.id, point_value(p.kind, p.currency, p.rules)) for p in programs))


def _day_sums(session: Session, sc: Scope, start: dt.date, end: dt.date,
              names: Sequence[str] = _DAY_SUMS) -> dict[str, int]:
    query = select(*[func.coalesce(func.sum(DAYS.c[n]), 0).label(n) for n in names]).where(
        DAYS.c.merchant_id == sc.merchant_id, DAYS.c.program_id.in_(sc.program_ids),
        DAYS.c.day >= start, DAYS.c.day <= end)
    if sc.location_id is not None:
        query = query.where(DAYS.c.location_id == sc.location_id)
    row = session.execute(query).one()
    return {n: int(getattr(row, n)) for n in names}


def _standing(session: Session, sc: Scope, day: dt.date) -> dict[str, int]:
    """The programs' standing at the end of ``day`` (zeros before any data)."""
    names = ("members_total", "points_outstanding", *_Deltas.keys_for())
    row = session.execute(
        select(*[func.coalesce(func.sum(PROGRAM_DAYS.c[n]), 0).label(n) for n in names])
        .where(PROGRAM_DAYS.c.merchant_id == sc.merchant_id,
               PROGRAM_DAYS.c.program_id.in_(sc.program_ids), PROGRAM_DAYS.c.day == day)
    ).one()
    return {n: int(getattr(row, n)) for n in names}


@dataclass(frozen=True)
class Metric:
    """A headline number, the same number for the previous period, and the change."""

    key: str
    unit: str  # count, minor (money in minor units), points, ratio, per_member
    value: float | int | None
    previous: float | int | None

    @property
    def change(self) -> float | int | None:
        if self.value is None or self.previous is None:
            return None
        diff = self.value - self.previous
        return round(diff, 4) if isinstance(diff, float) else diff

    @property
    def change_percent(self) -> float | None:
        if self.value is None or not self.previous:
            return None
        return round((self.value - self.previous) * 100 / self.previous, 1)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _per(a: int, b: int) -> int | None:
    """``a`` ÷ ``b`` rounded half up to a whole (money in minor units), or None."""
    return (2 * a + b) // (2 * b) if b else None


def _headline(sums: dict[str, int], window_sums: dict[int, int], stand: dict[str, int],
              location: bool) -> dict[str, Any]:
    program_wide = None if location else True
    out: dict[str, Any] = {
        "members_total": stand["members_total"] if program_wide else None,
        "new_members": sums["new_members"] if program_wide else None,
        "purchases": sums["purchases"],
        "paid_purchases": sums["paid_purchases"],
        "revenue_minor": sums["revenue_minor"] - sums["refunds_minor"],
        "average_check_minor": _per(sums["revenue_minor"], sums["paid_purchases"]),
        "points_issued": sums["points_issued"],
        "points_redeemed": sums["points_redeemed"],
        "points_expired": sums["points_expired"],
        "redemption_rate": _ratio(sums["points_redeemed"], sums["points_issued"]),
        "breakage": _ratio(sums["points_expired"], sums["points_issued"]),
        "rewards_redeemed": sums["rewards_redeemed"],
        "coupons_redeemed": sums["coupons_redeemed"],
        "apple_installs": sums["apple_installs"] if program_wide else None,
        "apple_removals": sums["apple_removals"] if program_wide else None,
        "google_installs": sums["google_installs"] if program_wide else None,
        "google_removals": sums["google_removals"] if program_wide else None,
        "points_outstanding": stand["points_outstanding"] if program_wide else None,
    }
    for w in WINDOWS:
        active, repeat = stand[f"active_{w}"], stand[f"repeat_{w}"]
        out[f"active_{w}"] = active if program_wide else None
        out[f"repeat_rate_{w}"] = _ratio(repeat, active) if program_wide else None
        out[f"purchase_frequency_{w}"] = (
            _ratio(window_sums[w], active) if program_wide else None)
    return out


UNITS = {
    "members_total": "count", "new_members": "count", "purchases": "count",
    "paid_purchases": "count", "revenue_minor": "minor", "average_check_minor": "minor",
    "points_issued": "points", "points_redeemed": "points", "points_expired": "points",
    "redemption_rate": "ratio", "breakage": "ratio", "rewards_redeemed": "count",
    "coupons_redeemed": "count", "apple_installs": "count", "apple_removals": "count",
    "google_installs": "count", "google_removals": "count", "points_outstanding": "points",
    "points_liability_minor": "minor",
    **{f"active_{w}": "count" for w in WINDOWS},
    **{f"repeat_rate_{w}": "ratio" for w in WINDOWS},
    **{f"purchase_frequency_{w}": "per_member" for w in WINDOWS},
}


def to_liability(points: int, point_value: Decimal | None) -> Decimal:
    """Outstanding balance units × the value of one, in minor units (whole)."""
    return (Decimal(points) * (point_value or 0)).to_integral_value()


def point_value(kind: str, currency: str, rules: dict[str, Any] | None) -> Decimal | None:
    """A program's value of one balance unit in minor units: its ``point_value`` (major
    units); a cashback balance is money already (one minor unit); None: not valued."""
    raw = (rules or {}).get("point_value")
    if raw is not None:
        return Decimal(str(raw)) * 10 ** get_currency_precision(currency)
    return Decimal(1) if kind == "cashback" else None


def _point_values(session: Session, sc: Scope) -> dict[int, Decimal | None]:
    if sc.point_values:
        return dict(sc.point_values)
    return {p.id: point_value(p.kind, p.currency, p.rules) for p in session.execute(
        select(PROGRAMS.c.id, PROGRAMS.c.kind, PROGRAMS.c.rules, PROGRAMS.c.currency)
        .where(PROGRAMS.c.id.in_(sc.program_ids)))}


@dataclass(frozen=True)
class Summary:
    scope: Scope
    metrics: list[Metric]


def summary(session: Session, sc: Scope) -> Summary:
    """The headline numbers of the period, each with the previous period's: one statement
    for the sums of both periods and both windows, one for the standing at both ends."""
    values = _point_values(session, sc)
    location = sc.location_id is not None
    periods = {"now": (sc.start, sc.end), "before": sc.previous}
    lo = min(sc.previous[0], sc.end - dt.timedelta(days=max(WINDOWS) - 1),
             sc.previous[1] - dt.timedelta(days=max(WINDOWS) - 1))
    columns = []
    for key, (start, end) in periods.items():
        in_period = and_(DAYS.c.day >= start, DAYS.c.day <= end)
        if location:
            in_period = and_(in_period, DAYS.c.location_id == sc.location_id)
        columns += [func.coalesce(func.sum(case((in_period, DAYS.c[n]), else_=0)), 0)
                    .label(f"{key}_{n}") for n in _DAY_SUMS]
        columns += [func.coalesce(func.sum(case((and_(
            DAYS.c.day >= end - dt.timedelta(days=w - 1), DAYS.c.day <= end),
            DAYS.c.purchases), else_=0)), 0).label(f"{key}_window_{w}") for w in WINDOWS]
    row = session.execute(select(*columns).where(
        DAYS.c.merchant_id == sc.merchant_id, DAYS.c.program_id.in_(sc.program_ids),
        DAYS.c.day >= lo, DAYS.c.day <= sc.end)).one()
    names = ("members_total", "points_outstanding", *_Deltas.keys_for())
    standing: dict[dt.date, dict[str, int]] = {
        end: dict.fromkeys(names, 0) for _start, end in periods.values()}
    outstanding: dict[dt.date, list[tuple[int, int]]] = defaultdict(list)
    for r in session.execute(
            select(PROGRAM_DAYS.c.program_id, PROGRAM_DAYS.c.day,
                   *[PROGRAM_DAYS.c[n] for n in names])
            .where(PROGRAM_DAYS.c.merchant_id == sc.merchant_id,
                   PROGRAM_DAYS.c.program_id.in_(sc.program_ids),
                   PROGRAM_DAYS.c.day.in_(list(standing)))):
        day = _as_date(r.day)
        for n in names:
            standing[day][n] += int(getattr(r, n))
        outstanding[day].append((r.program_id, int(r.points_outstanding)))
    heads = {}
    for key, (_start, end) in periods.items():
        sums = {n: int(getattr(row, f"{key}_{n}")) for n in _DAY_SUMS}
        window_sums = {w: int(getattr(row, f"{key}_window_{w}")) for w in WINDOWS}
        head = _headline(sums, window_sums, standing[end], location)
        head["points_liability_minor"] = (
            None if location else _liability(outstanding[end], values))
        heads[key] = head
    return Summary(sc, [Metric(k, UNITS[k], heads["now"][k], heads["before"][k])
                        for k in UNITS])


def _liability(outstanding: list[tuple[int, int]],
               values: dict[int, Decimal | None]) -> int | None:
    """What the programs' outstanding balances are worth; None if a program has no value."""
    if not values or any(v is None for v in values.values()):
        return None
    return int(sum(to_liability(points, values[pid]) for pid, points in outstanding))


def _program_wide(sc: Scope) -> Scope:
    return replace(sc, location_id=None)


@dataclass(frozen=True)
class Day:
    day: dt.date
    values: dict[str, int | None]


DAILY_FIELDS = ("new_members", "members_total", "purchases", "paid_purchases",
                "revenue_minor", "apple_installs", "apple_removals", "google_installs",
                "google_removals", *[f"active_{w}" for w in WINDOWS])


def daily(session: Session, sc: Scope) -> list[Day]:
    """One row per local day of the period."""
    names = ("new_members", "purchases", "paid_purchases", "revenue_minor", "refunds_minor",
             "apple_installs", "apple_removals", "google_installs", "google_removals")
    query = (select(DAYS.c.day, *[func.sum(DAYS.c[n]).label(n) for n in names])
             .where(DAYS.c.merchant_id == sc.merchant_id, DAYS.c.program_id.in_(sc.program_ids),
                    DAYS.c.day >= sc.start, DAYS.c.day <= sc.end)
             .group_by(DAYS.c.day))
    if sc.location_id is not None:
        query = query.where(DAYS.c.location_id == sc.location_id)
    sums = {_as_date(r.day): r for r in session.execute(query)}
    standing = {_as_date(r.day): r for r in session.execute(
        select(PROGRAM_DAYS.c.day, func.sum(PROGRAM_DAYS.c.members_total).label("members_total"),
               *[func.sum(PROGRAM_DAYS.c[f"active_{w}"]).label(f"active_{w}") for w in WINDOWS])
        .where(PROGRAM_DAYS.c.merchant_id == sc.merchant_id,
               PROGRAM_DAYS.c.program_id.in_(sc.program_ids),
               PROGRAM_DAYS.c.day >= sc.start, PROGRAM_DAYS.c.day <= sc.end)
        .group_by(PROGRAM_DAYS.c.day))}
    program_wide = sc.location_id is None
    out = []
    for day in _days(sc.start, sc.end):
        s, st = sums.get(day), standing.get(day)

        def val(name: str, row: Any = s) -> int:
            return int(getattr(row, name) or 0) if row is not None else 0

        values: dict[str, int | None] = {
            "purchases": val("purchases"), "paid_purchases": val("paid_purchases"),
            "revenue_minor": val("revenue_minor") - val("refunds_minor")}
        for name in ("new_members", "apple_installs", "apple_removals", "google_installs",
                     "google_removals"):
            values[name] = val(name) if program_wide else None
        for name in ("members_total", *[f"active_{w}" for w in WINDOWS]):
            values[name] = val(name, st) if program_wide else None
        out.append(Day(day, values))
    return out


@dataclass(frozen=True)
class Cohort:
    month: dt.date
    members: int
    #: Share of the cohort with a purchase in month 0 (the month of joining), 1, 2, …
    retention: list[float | None]
    #: Purchases less refunds per member, in minor units, cumulative through month k
    #: (the joining month is month 1); None for a month not over yet.
    ltv: dict[int, int | None]


def cohorts(session: Session, sc: Scope, today: dt.date) -> list[Cohort]:
    """The enrollment cohorts of the months the period touches, oldest first."""
    first, last = _month_start(sc.start), _month_start(sc.end)
    sizes: dict[dt.date, int] = defaultdict(int)
    for r in session.execute(
            select(DAYS.c.day, func.sum(DAYS.c.new_members).label("n"))
            .where(DAYS.c.merchant_id == sc.merchant_id, DAYS.c.program_id.in_(sc.program_ids),
                   DAYS.c.day >= first, DAYS.c.day < _add_months(last, 1))
            .group_by(DAYS.c.day)):
        sizes[_month_start(_as_date(r.day))] += int(r.n)
    cells: dict[tuple[dt.date, dt.date], tuple[int, int]] = {}
    for r in session.execute(
            select(COHORTS.c.cohort_month, COHORTS.c.month,
                   func.sum(COHORTS.c.active_members).label("a"),
                   func.sum(COHORTS.c.amount_minor).label("m"))
            .where(COHORTS.c.merchant_id == sc.merchant_id,
                   COHORTS.c.program_id.in_(sc.program_ids),
                   COHORTS.c.cohort_month >= first, COHORTS.c.cohort_month <= last)
            .group_by(COHORTS.c.cohort_month, COHORTS.c.month)):
        cells[(_as_date(r.cohort_month), _as_date(r.month))] = (int(r.a), int(r.m))
    current = _month_start(today)
    out = []
    month = first
    while month <= last:
        size = sizes.get(month, 0)
        retention: list[float | None] = []
        at, running, ltv_by_month = month, 0, {}
        k = 0
        while at <= current:
            active, amount = cells.get((month, at), (0, 0))
            retention.append(_ratio(active, size))
            running += amount
            k += 1
            ltv_by_month[k] = running
            at = _add_months(at, 1)
        ltv = {n: (_per(ltv_by_month[n], size) if n in ltv_by_month and
                   _add_months(month, n) <= current else None) for n in LTV_MONTHS}
        out.append(Cohort(month, size, retention, ltv))
        month = _add_months(month, 1)
    return out


@dataclass(frozen=True)
class ProgramPoints:
    program_id: int
    name: str
    kind: str
    currency: str
    point_value_minor: Decimal | None
    outstanding: int
    liability_minor: int | None
    issued: int
    redeemed: int
    expired: int
    issued_to_date: int
    expired_to_date: int

    @property
    def breakage(self) -> float | None:
        return _ratio(self.expired, self.issued)

    @property
    def breakage_to_date(self) -> float | None:
        return _ratio(self.expired_to_date, self.issued_to_date)

    @property
    def redemption_rate(self) -> float | None:
        return _ratio(self.redeemed, self.issued)


def points(session: Session, sc: Scope) -> list[ProgramPoints]:
    """Per program: the balance outstanding at the period's end and what it is worth, and
    the points issued, redeemed and expired in the period and to date."""
    values = _point_values(session, sc)
    names = {p.id: p for p in session.execute(
        select(PROGRAMS.c.id, PROGRAMS.c.name, PROGRAMS.c.kind, PROGRAMS.c.currency)
        .where(PROGRAMS.c.id.in_(sc.program_ids)))}
    out = []
    for pid in sc.program_ids:
        one = replace(sc, program_ids=(pid,), location_id=None)
        sums = _day_sums(session, one, sc.start, sc.end,
                         ("points_issued", "points_redeemed", "points_expired"))
        to_date = _day_sums(session, one, dt.date(1, 1, 1), sc.end,
                            ("points_issued", "points_expired"))
        outstanding = _standing(session, one, sc.end)["points_outstanding"]
        value = values.get(pid)
        p = names[pid]
        out.append(ProgramPoints(
            pid, p.name, p.kind, p.currency, value, outstanding,
            int(to_liability(outstanding, value)) if value is not None else None,
            sums["points_issued"], sums["points_redeemed"], sums["points_expired"],
            to_date["points_issued"], to_date["points_expired"]))
    return out


@dataclass(frozen=True)
class Item:
    kind: str
    id: int
    name: str | None
    count: int


def popularity(session: Session, sc: Scope) -> list[Item]:
    """Rewards and coupons by how often they were redeemed in the period, most first."""
    query = (select(BREAKDOWNS.c.kind, BREAKDOWNS.c.item, func.sum(BREAKDOWNS.c.count).label("n"))
             .where(BREAKDOWNS.c.merchant_id == sc.merchant_id,
                    BREAKDOWNS.c.program_id.in_(sc.program_ids),
                    BREAKDOWNS.c.kind.in_((REWARD, COUPON)),
                    BREAKDOWNS.c.day >= sc.start, BREAKDOWNS.c.day <= sc.end)
             .group_by(BREAKDOWNS.c.kind, BREAKDOWNS.c.item))
    if sc.location_id is not None:
        query = query.where(BREAKDOWNS.c.location_id == sc.location_id)
    rows = [(r.kind, int(r.item), int(r.n)) for r in session.execute(query)]
    reward_ids = [i for k, i, _ in rows if k == REWARD]
    coupon_ids = [i for k, i, _ in rows if k == COUPON]
    names: dict[tuple[str, int], str] = {}
    if reward_ids:
        names.update({(REWARD, r.id): r.name_plain for r in session.execute(
            select(Reward.id, Reward.name_plain).where(Reward.id.in_(reward_ids)))})
    if coupon_ids:
        names.update({(COUPON, c.id): c.title_plain for c in session.execute(
            select(Coupon.id, Coupon.title_plain).where(Coupon.id.in_(coupon_ids)))})
    items = [Item(k, i, names.get((k, i)), n) for k, i, n in rows]
    return sorted(items, key=lambda x: (x.kind != REWARD, -x.count, x.id))


@dataclass(frozen=True)
class Till:
    """What was posted at one store (or by one staff user) in the period; ``key`` None:
    entries that name none (the API, the daily job)."""

    key: int | None
    name: str | None
    purchases: int
    paid_purchases: int
    revenue_minor: int
    average_check_minor: int | None
    points_issued: int
    rewards_redeemed: int
    coupons_redeemed: int
    manual_entries: int


def _tills(session: Session, sc: Scope, column: str) -> list[Till]:
    names = ("purchases", "paid_purchases", "revenue_minor", "refunds_minor", "points_issued",
             "rewards_redeemed", "coupons_redeemed", "manual_entries")
    query = (select(DAYS.c[column].label("key"), *[func.sum(DAYS.c[n]).label(n) for n in names])
             .where(DAYS.c.merchant_id == sc.merchant_id, DAYS.c.program_id.in_(sc.program_ids),
                    DAYS.c.day >= sc.start, DAYS.c.day <= sc.end)
             .group_by(DAYS.c[column]).order_by(DAYS.c[column]))
    if sc.location_id is not None:
        query = query.where(DAYS.c.location_id == sc.location_id)
    labels: dict[int, str] = {}
    if column == "location_id":
        labels = dict(session.execute(select(Location.id, Location.name)
                                      .where(Location.merchant_id == sc.merchant_id))
                      .all())
    elif column == "staff_id":
        # A staff user is named by the e-mail they sign in with (console users have no
        # other name); only the merchant's own users, as for the stores.
        labels = dict(session.execute(select(ConsoleUser.id, ConsoleUser.email)
                                      .where(ConsoleUser.merchant_id == sc.merchant_id))
                      .all())
    out = []
    for r in session.execute(query):
        if not any(int(getattr(r, n)) for n in names):
            continue
        key = int(r.key) or None
        out.append(Till(key, labels.get(key) if key else None, int(r.purchases),
                        int(r.paid_purchases), int(r.revenue_minor) - int(r.refunds_minor),
                        _per(int(r.revenue_minor), int(r.paid_purchases)),
                        int(r.points_issued), int(r.rewards_redeemed),
                        int(r.coupons_redeemed), int(r.manual_entries)))
    return out


def by_location(session: Session, sc: Scope) -> list[Till]:
    """Purchases, revenue and redemptions per store in the period."""
    return _tills(session, sc, "location_id")


def by_staff(session: Session, sc: Scope) -> list[Till]:
    """Purchases, revenue, redemptions and manual entries per staff user in the period."""
    return _tills(session, sc, "staff_id")


@dataclass(frozen=True)
class TierCount:
    tier: str | None
    members: int


@dataclass(frozen=True)
class TierMove:
    from_tier: str | None
    to_tier: str | None
    members: int


@dataclass(frozen=True)
class Tiers:
    as_of: dt.date | None
    distribution: list[TierCount]
    movements: list[TierMove]


def tiers(session: Session, sc: Scope) -> Tiers:
    """Open cards by tier as of the last snapshot on or before the period's end, and the
    moves between tiers in the period."""
    latest = (select(func.max(BREAKDOWNS.c.day)).where(
        BREAKDOWNS.c.merchant_id == sc.merchant_id, BREAKDOWNS.c.kind == TIER_MEMBERS,
        BREAKDOWNS.c.program_id.in_(sc.program_ids), BREAKDOWNS.c.day <= sc.end)
        .scalar_subquery())
    distribution: list[TierCount] = []
    as_of = None
    for r in session.execute(
            select(BREAKDOWNS.c.day, BREAKDOWNS.c.item, func.sum(BREAKDOWNS.c.count).label("n"))
            .where(BREAKDOWNS.c.merchant_id == sc.merchant_id,
                   BREAKDOWNS.c.kind == TIER_MEMBERS,
                   BREAKDOWNS.c.program_id.in_(sc.program_ids), BREAKDOWNS.c.day == latest)
            .group_by(BREAKDOWNS.c.day, BREAKDOWNS.c.item)
            .order_by(func.sum(BREAKDOWNS.c.count).desc(), BREAKDOWNS.c.item)):
        as_of = r.day
        distribution.append(TierCount(r.item or None, int(r.n)))
    moves = []
    for r in session.execute(
            select(BREAKDOWNS.c.item, func.sum(BREAKDOWNS.c.count).label("n"))
            .where(BREAKDOWNS.c.merchant_id == sc.merchant_id, BREAKDOWNS.c.kind == TIER_MOVE,
                   BREAKDOWNS.c.program_id.in_(sc.program_ids),
                   BREAKDOWNS.c.day >= sc.start, BREAKDOWNS.c.day <= sc.end)
            .group_by(BREAKDOWNS.c.item).order_by(BREAKDOWNS.c.item)):
        before, _, after = r.item.partition(">")
        if before != after:
            moves.append(TierMove(before or None, after or None, int(r.n)))
    return Tiers(_as_date(as_of) if as_of is not None else None, distribution, moves)


def refresh_all(session: Session, merchant_ids: Iterable[int], now: dt.datetime) -> None:
    """Refresh several merchants in the caller's transaction (the CLI, a benchmark)."""
    for merchant_id in merchant_ids:
        refresh(session, merchant_id, now)
