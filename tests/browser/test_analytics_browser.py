"""The analytics dashboard in a real browser (Debian's Chromium through Playwright), in
Russian and in English: the charts are drawn by the vendored Chart.js with the numbers of
the hand-made history of tests/test_analytics.py, the page passes axe-core, and
screenshots at 1280 px and 375 px go to docs/screenshots/."""

# The history fixture comes from the module that defines it; pytest hands it over by name.
# ruff: noqa: F401, F811

from __future__ import annotations

from pathlib import Path
from typing import Any

import browser_support
import pytest
from browser_support import axe_violations
from browser_support import console_sign_in
from console_support import make_user
from test_analytics import shop

browser = browser_support.browser
live = browser_support.live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCALES = {"ru": "ru-RU", "en": "en-US"}
MARCH = "start=2025-01-01&end=2025-03-31"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_dashboard_draws_its_charts(browser: Any, live: Any, shop: Any, lang: str) -> None:
    _, email = make_user(live.app, shop["api"].merchant_id, "owner",
                         email=f"owner-{lang}@analytics.test")
    for width, height in ((1280, 900), (375, 812)):
        context = browser.new_context(locale=LOCALES[lang],
                                      viewport={"width": width, "height": height})
        page = context.new_page()
        console_sign_in(page, live, email, lang=lang)
        page.locator(".main-nav a[href='/console/analytics']").click()
        page.wait_for_url("**/console/analytics")
        page.goto(f"{live.url}/console/analytics?{MARCH}")
        # Chart.js has drawn each chart with the period's numbers: 90 days, 1 + 2 … purchases.
        page.wait_for_function(
            "() => ['chart-days', 'chart-members', 'chart-locations', 'chart-rewards']"
            ".every(id => window.Chart && Chart.getChart(document.getElementById(id)))")
        days = page.evaluate(
            "() => Chart.getChart(document.getElementById('chart-days')).data")
        assert len(days["labels"]) == 90 and sum(days["datasets"][0]["data"]) == 10
        rewards = page.evaluate(
            "() => Chart.getChart(document.getElementById('chart-rewards')).data.labels")
        assert rewards == ["Free coffee", "−20% on pastries"]
        drawn = page.evaluate(
            "() => { const c = document.getElementById('chart-days');"
            " const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n; }")
        assert drawn > 1000  # the canvas holds a drawing, not nothing
        assert page.locator("#cohort-grid tbody tr").count() == 3
        assert axe_violations(page) == []
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"analytics-{lang}-{width}.png"), full_page=True)
        with page.expect_download() as download:
            page.locator("a[href*='/console/analytics/daily.csv']").first.click()
        assert download.value.suggested_filename == "daily-2025-01-01-2025-03-31.csv"
        context.close()
