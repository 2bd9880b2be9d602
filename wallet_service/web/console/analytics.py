"""The analytics dashboard: headline numbers against the previous period, charts of the
days, stores and rewards, the cohort grid, points and tiers, with period, program and
store filters (product brief "cockpit": Analytics). It reads the same services as
``/api/v1/analytics/…`` (``services.analytics``; definitions in docs/analytics.md), and
every chart has a CSV download of its numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from flask import Response
from flask import request
from flask import url_for

from ... import schemas as s
from ...errors import ValidationFailed
from ...local_time import local_date
from ...permissions import Permission
from ...services import analytics
from ...services import locations
from ...services import programs
from ...validation import validate
from .. import get_session
from ..api import serializers as out
from ..api.analytics import csv_file
from ..api.analytics import csv_name
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import error_page
from .frame import now
from .frame import render

#: The headline numbers shown, in order, and the members list each one opens.
HEADLINES = (
    ("members_total", {}), ("new_members", {}), ("active_30", {"visited": "30d"}),
    ("active_90", {"visited": "90d"}), ("purchases", {}), ("revenue_minor", {}),
    ("average_check_minor", {}), ("repeat_rate_30", {"visited": "30d"}),
    ("purchase_frequency_30", {"visited": "30d"}), ("points_issued", {}),
    ("redemption_rate", {}), ("breakage", {}), ("points_outstanding", {"balance_min": 1}),
    ("points_liability_minor", {"balance_min": 1}), ("apple_installs", {}),
    ("google_installs", {}),
)
#: The CSV downloads: the API's tables, by widget.
DOWNLOADS = ("summary", "daily", "cohorts", "points", "rewards", "locations", "staff", "tiers")


def _query() -> tuple[s.AnalyticsQuery, str | None]:
    """The filters of the request, or none and the problem with them."""
    args = {k: v for k, v in request.args.items() if v and k in s.AnalyticsQuery.model_fields}
    try:
        return validate(s.AnalyticsQuery, args, strict=False), None
    except ValidationFailed as exc:
        return s.AnalyticsQuery(), str(exc)


def _scope(query: s.AnalyticsQuery, merchant_id: int) -> analytics.Scope:
    return analytics.scope(get_session(), merchant_id, program_id=query.program_id,
                           location_id=query.location_id, start=query.start, end=query.end,
                           now=now())


@bp.get("/analytics", endpoint="analytics")
@console_page(Permission.READ)
def analytics_page() -> Response:
    """The dashboard for the chosen period (30 days through today by default)."""
    user = current_user()
    session = get_session()
    query, problem = _query()
    try:
        sc = _scope(query, user.merchant_id)
    except ValidationFailed as exc:
        query, problem = s.AnalyticsQuery(), str(exc)
        sc = _scope(query, user.merchant_id)
    summary = out.analytics_summary_out(analytics.summary(session, sc))
    daily = out.analytics_daily_out(sc, analytics.daily(session, sc))
    today = local_date(now(), sc.time_zone)
    program_only = replace(sc, location_id=None)
    cohorts = out.analytics_cohorts_out(sc, analytics.cohorts(session, program_only, today))
    tills = out.analytics_tills_out(sc, analytics.by_location(session, sc))
    items = out.analytics_popularity_out(sc, analytics.popularity(session, sc))
    tiers = out.analytics_tiers_out(sc, analytics.tiers(session, program_only))
    points = out.analytics_points_out(sc, analytics.points(session, program_only))
    metrics = {m.key: m for m in summary.metrics}
    filters = {k: v for k, v in (("program_id", query.program_id),
                                 ("location_id", query.location_id),
                                 ("start", sc.start.isoformat()), ("end", sc.end.isoformat()))
               if v is not None}
    charts = {
        "days": [d.day.isoformat() for d in daily.days],
        "purchases": [d.purchases for d in daily.days],
        "revenue": [d.revenue_minor / 100 for d in daily.days],
        "new_members": [d.new_members for d in daily.days],
        "active_30": [d.active_30 for d in daily.days],
        "locations": [t.name or "—" for t in tills.items],
        "location_revenue": [t.revenue_minor / 100 for t in tills.items],
        "rewards": [i.name or str(i.id) for i in items.items],
        "reward_counts": [i.count for i in items.items],
    }
    return render(
        "console/analytics.html", title="analytics_title", query=query, problem=problem,
        period=summary.period, metrics=metrics,
        headlines=[(key, metrics[key], url_for("console.members", **link))
                   for key, link in HEADLINES],
        daily=daily, cohorts=cohorts, tills=tills, items=items, tiers=tiers, points=points,
        programs=programs.list_programs(session, user.merchant_id),
        locations=locations.list_locations(session, user.merchant_id),
        charts_json=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"),
        downloads={name: url_for("console.analytics_csv", widget=name, **filters)
                   for name in DOWNLOADS})


_TABLES: dict[str, Any] = {
    "summary": (lambda sess, sc, today: out.analytics_summary_table(
        out.analytics_summary_out(analytics.summary(sess, sc)))),
    "daily": (lambda sess, sc, today: out.analytics_daily_table(
        out.analytics_daily_out(sc, analytics.daily(sess, sc)))),
    "cohorts": (lambda sess, sc, today: out.analytics_cohorts_table(
        out.analytics_cohorts_out(sc, analytics.cohorts(sess, sc, today)))),
    "points": (lambda sess, sc, today: out.analytics_points_table(
        out.analytics_points_out(sc, analytics.points(sess, sc)))),
    "rewards": (lambda sess, sc, today: out.analytics_popularity_table(
        out.analytics_popularity_out(sc, analytics.popularity(sess, sc)))),
    "locations": (lambda sess, sc, today: out.analytics_tills_table(
        out.analytics_tills_out(sc, analytics.by_location(sess, sc)))),
    "staff": (lambda sess, sc, today: out.analytics_tills_table(
        out.analytics_tills_out(sc, analytics.by_staff(sess, sc)))),
    "tiers": (lambda sess, sc, today: out.analytics_tiers_table(
        out.analytics_tiers_out(sc, analytics.tiers(sess, sc)))),
}
_PROGRAM_WIDE = ("cohorts", "points", "tiers")


@bp.get("/analytics/<widget>.csv", endpoint="analytics_csv")
@console_page(Permission.READ)
def analytics_csv(widget: str) -> Response:
    """A widget's numbers as CSV, for the dashboard's filters (the API's CSV)."""
    if widget not in _TABLES:
        return error_page(404)
    user = current_user()
    query, problem = _query()
    if problem:
        return error_page(400)
    sc = _scope(query, user.merchant_id)
    if widget in _PROGRAM_WIDE:
        sc = replace(sc, location_id=None)
    table = _TABLES[widget](get_session(), sc, local_date(now(), sc.time_zone))
    return csv_file(table, csv_name(widget, out.analytics_period(sc)))
