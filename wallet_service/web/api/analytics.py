"""Analytics: the dashboard's numbers (``services.analytics``; docs/analytics.md).

Every operation answers JSON, or the same numbers as a CSV file with ``?format=csv`` or
``Accept: text/csv``. The numbers come from the rollups the worker keeps; ``refreshed_at``
in the answer says when they were last brought up to date.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import Response
from flask import request
from pydantic import BaseModel

from ... import schemas as s
from ...db import utcnow
from ...local_time import local_date
from ...permissions import Permission
from ...services import analytics
from .. import get_session
from . import serializers as out
from ._blueprint import bp
from ._blueprint import current_merchant

CSV = "text/csv"
M = TypeVar("M", bound=BaseModel)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _scope(query: s.AnalyticsProgramQuery) -> analytics.Scope:
    return analytics.scope(get_session(), current_merchant(), program_id=query.program_id,
                           location_id=getattr(query, "location_id", None),
                           start=query.start, end=query.end, now=utcnow())


def _cell(value: Any) -> Any:
    # A text a spreadsheet would read as a formula (a reward named "=1+1") is kept as text.
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_file(table: out.Table, filename: str) -> Response:
    """A table as a CSV download (the API's and the console's)."""
    header, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return Response(buffer.getvalue(), mimetype=CSV, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def csv_name(name: str, period: s.AnalyticsPeriod) -> str:
    return f"{name}-{period.start.isoformat()}-{period.end.isoformat()}.csv"


def _answer(query: s.AnalyticsProgramQuery, model: M, table: Callable[[M], out.Table],
            name: str) -> M | Response:
    """``model``, or its table as CSV when the request asks for it."""
    wants_csv = query.format == "csv" or (
        request.accept_mimetypes.best_match(["application/json", CSV]) == CSV
        and request.accept_mimetypes[CSV] > request.accept_mimetypes["application/json"])
    if not wants_csv:
        return model
    period = model.period  # type: ignore[attr-defined]  # every analytics answer has one
    return csv_file(table(model), csv_name(name, period))


_COMMON = {"errors": (404,), "tags": ("analytics",), "produces": (CSV,),
           "permission": Permission.READ}


@bp.operation("/analytics/summary", "GET", summary="Headline numbers with the change",
              query=s.AnalyticsQuery, response=s.AnalyticsSummary, **_COMMON)
def analytics_summary(query: s.AnalyticsQuery) -> s.AnalyticsSummary | Response:
    """Members, purchases, revenue, average check, active members (30 and 90 days), repeat
    purchase rate, purchase frequency, points issued, redeemed and expired, redemption
    rate, breakage, the points liability, rewards and coupons redeemed, cards added to and
    removed from each wallet: each for the period and for the period of the same length
    before it, with the change. Money is in minor units of `period.currency`. Definitions:
    docs/analytics.md."""
    sc = _scope(query)
    return _answer(query, out.analytics_summary_out(analytics.summary(get_session(), sc)),
                   out.analytics_summary_table, "summary")


@bp.operation("/analytics/daily", "GET", summary="Numbers per local day",
              query=s.AnalyticsQuery, response=s.AnalyticsDaily, **_COMMON)
def analytics_daily(query: s.AnalyticsQuery) -> s.AnalyticsDaily | Response:
    """One row per day of the period: new members and members in all, purchases and
    revenue, cards added to and removed from Apple Wallet and Google Wallet, members active
    in the 30 and 90 days ending that day."""
    sc = _scope(query)
    return _answer(query, out.analytics_daily_out(sc, analytics.daily(get_session(), sc)),
                   out.analytics_daily_table, "daily")


@bp.operation("/analytics/cohorts", "GET", summary="Retention and LTV by enrollment month",
              query=s.AnalyticsProgramQuery, response=s.AnalyticsCohorts, **_COMMON)
def analytics_cohorts(query: s.AnalyticsProgramQuery) -> s.AnalyticsCohorts | Response:
    """The members who joined in each month the period touches: the share of them with a
    purchase in each month since (the retention grid), and their purchases less refunds
    per member through month 1, 3, 6 and 12 (LTV)."""
    sc = _scope(query)
    session = get_session()
    today = local_date(utcnow(), sc.time_zone)
    return _answer(query, out.analytics_cohorts_out(sc, analytics.cohorts(session, sc, today)),
                   out.analytics_cohorts_table, "cohorts")


@bp.operation("/analytics/points", "GET", summary="Points liability, breakage, redemption",
              query=s.AnalyticsProgramQuery, response=s.AnalyticsPoints, **_COMMON)
def analytics_points(query: s.AnalyticsProgramQuery) -> s.AnalyticsPoints | Response:
    """Per program: the balance outstanding at the period's end and its value (the
    program's `point_value`), points issued, redeemed and expired in the period, the
    redemption rate and breakage."""
    sc = _scope(query)
    return _answer(query, out.analytics_points_out(sc, analytics.points(get_session(), sc)),
                   out.analytics_points_table, "points")


@bp.operation("/analytics/rewards", "GET", summary="Reward and coupon popularity",
              query=s.AnalyticsQuery, response=s.AnalyticsPopularity, **_COMMON)
def analytics_rewards(query: s.AnalyticsQuery) -> s.AnalyticsPopularity | Response:
    """Rewards, then coupons, by how often they were redeemed in the period."""
    sc = _scope(query)
    return _answer(query,
                   out.analytics_popularity_out(sc, analytics.popularity(get_session(), sc)),
                   out.analytics_popularity_table, "rewards")


@bp.operation("/analytics/locations", "GET", summary="Numbers per store",
              query=s.AnalyticsQuery, response=s.AnalyticsTills, **_COMMON)
def analytics_locations(query: s.AnalyticsQuery) -> s.AnalyticsTills | Response:
    """Purchases, revenue, average check, points issued, redemptions and manual entries
    posted at each store in the period; `id` null: entries that name no store."""
    sc = _scope(query)
    return _answer(query, out.analytics_tills_out(sc, analytics.by_location(get_session(), sc)),
                   out.analytics_tills_table, "locations")


@bp.operation("/analytics/staff", "GET", summary="Numbers per staff user",
              query=s.AnalyticsQuery, response=s.AnalyticsTills, **_COMMON)
def analytics_staff(query: s.AnalyticsQuery) -> s.AnalyticsTills | Response:
    """The same numbers per staff user who posted them at a till; `id` null: entries that
    name no staff user (the API, the daily job)."""
    sc = _scope(query)
    return _answer(query, out.analytics_tills_out(sc, analytics.by_staff(get_session(), sc)),
                   out.analytics_tills_table, "staff")


@bp.operation("/analytics/tiers", "GET", summary="Tier distribution and movement",
              query=s.AnalyticsProgramQuery, response=s.AnalyticsTiers, **_COMMON)
def analytics_tiers(query: s.AnalyticsProgramQuery) -> s.AnalyticsTiers | Response:
    """Open cards by tier as of the period's end, and how many moved from one tier to
    another in the period."""
    sc = _scope(query)
    return _answer(query, out.analytics_tiers_out(sc, analytics.tiers(get_session(), sc)),
                   out.analytics_tiers_table, "tiers")
