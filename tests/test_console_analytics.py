"""The analytics dashboard in the console: the same numbers as the API (the hand-made
history of tests/test_analytics.py), the charts' data and CSV downloads, filters, roles,
and one merchant never seeing another's."""

# The history fixture comes from the module that defines it; pytest hands it over by name.
# ruff: noqa: F401, F811

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from test_analytics import MARCH
from test_analytics import shop


def page_of(console: Any, **query: Any) -> str:
    r = console.get("/console/analytics", query_string=query)
    assert r.status_code == 200, r.status_code
    return r.get_data(as_text=True)


def figure(html: str, key: str) -> str:
    block = re.search(rf'id="metric-{key}">.*?</div>', html, re.S)
    assert block, key
    return re.sub(r"<[^>]+>|\s+", " ", block.group(0))


def test_the_owner_sees_march_against_february(shop, console_as):
    console = console_as("owner", shop["api"])
    html = page_of(console, **MARCH)
    # 1,150 RUB of revenue, 500 RUB before: +650 RUB (+130 %).
    revenue = figure(html, "revenue-minor")
    assert "1,150 RUB" in revenue and "+650 RUB" in revenue and "+130 %" in revenue
    assert "5" in figure(html, "purchases") and "33.3 %" in figure(html, "repeat-rate-30")
    assert "157.5 RUB" in figure(html, "points-liability-minor")
    # Every number opens the members behind it.
    assert 'href="/console/members?visited=30d"' in html
    data = json.loads(re.search(r'id="analytics-data">(.*?)</script>', html, re.S).group(1))
    assert data["days"][0] == "2025-03-01" and data["days"][-1] == "2025-03-31"
    assert data["purchases"][:2] == [1, 1] and data["revenue"][:2] == [100.0, 300.0]
    assert data["rewards"] == ["Free coffee", "−20% on pastries"]
    assert data["locations"] == ["—", "Harbour"] and data["location_revenue"] == [250.0, 900.0]
    # The cohort grid: January's members, 50 % of them back in February.
    grid = re.search(r'id="cohort-grid".*?</table>', html, re.S).group(0)
    assert "2025-03" in grid
    assert 'src="/static/vendor/chart.js/chart.umd.min.js"' in html


def test_chart_downloads_are_the_apis_csv(shop, console_as):
    console = console_as("manager", shop["api"])
    r = console.get("/console/analytics/daily.csv", query_string=MARCH)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(rows) == 31 and rows[0]["revenue_minor"] == "10000"
    api_csv = shop["api"].get("/analytics/daily", query_string={**MARCH, "format": "csv"})
    assert api_csv.get_data() == r.get_data()
    r = console.get("/console/analytics/cohorts.csv",
                    query_string={"start": "2025-01-01", "end": "2025-01-31"})
    assert list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))[0]["members"] == "2"
    assert console.get("/console/analytics/nothing.csv").status_code == 404


def test_filters_staff_and_other_merchants(shop, console_as, other_api):
    staff = console_as("staff", shop["api"])
    html = page_of(staff, location_id=shop["location"]["id"], **MARCH)
    # At the store: #7 and #8; numbers of members are not a store's.
    assert "900 RUB" in figure(html, "revenue-minor")
    assert "—" in figure(html, "members-total")
    html = page_of(staff, start="2025-03-10", end="2025-03-01")
    assert 'role="alert"' in html and "end" in html
    stranger = console_as("owner", other_api)
    r = stranger.get("/console/analytics", query_string={"program_id": shop["program"]["id"]})
    assert r.status_code == 404
    assert "Free coffee" not in page_of(stranger, **MARCH)


def test_signed_out_goes_to_sign_in(client):
    r = client.get("/console/analytics")
    assert r.status_code == 303 and "/console/sign-in" in r.headers["Location"]
