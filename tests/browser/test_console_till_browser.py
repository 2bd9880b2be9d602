"""The console's till section in Debian's Chromium: the owner reads the activity feed with
a limit hit, sets a limit through the form, and a bad PIN shows next to its field; axe-core
finds nothing serious in either language."""

from __future__ import annotations

from typing import Any

import browser_support
import pytest
from api_support import Api
from browser_support import axe_violations
from browser_support import console_sign_in
from console_support import make_user
from playwright.sync_api import expect
from till_support import Till
from till_support import set_limits

browser = browser_support.browser
live = browser_support.live


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_owner_manages_the_till(browser: Any, live: Any, app: Any, api: Api,
                                    lang: str) -> None:
    t = Till(app, api)
    staff_id = t.staff(email=f"cashier-{lang}@example.test")
    set_limits(app, api.merchant_id, staff_id, points_per_transaction=5)
    assert t.sign_in(staff_id).status_code == 200
    member_id = api.member(api.program()["id"])["id"]
    assert t.act(member_id, kind="purchase", amount="900").status_code == 409
    _, owner = make_user(app, api.merchant_id, "owner", email=f"boss-{lang}@example.test")

    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    console_sign_in(page, live, owner, lang=lang)
    page.goto(f"{live.url}/console/till?period=day")
    expect(page.locator("#till-activity tr.unusual")).to_have_count(1)
    expect(page.locator("#till-events tbody tr")).to_have_count(1)
    assert axe_violations(page) == []

    page.fill(f"#limits-{staff_id}-points_per_transaction", "50")
    page.locator(f"#limits-{staff_id} button[type=submit]").click()
    page.wait_for_url("**/console/till?done=*")
    expect(page.locator(f"#limits-{staff_id}-points_per_transaction")).to_have_value("50")

    page.fill(f"#pin-{staff_id}-pin", "12")
    page.locator(f"#pin-{staff_id} button[type=submit]").click()
    expect(page.locator(f"#pin-{staff_id}-pin-error")).to_have_count(1)
    assert page.locator(f"#pin-{staff_id}-pin").get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []
    context.close()
