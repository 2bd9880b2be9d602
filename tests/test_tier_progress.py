"""The way to the next tier reads the same on every surface: the API, the Apple pass and the
card page all come from one rule (wallet_service.rules.tier_progress)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from decimal import Decimal

import pytest

from wallet_service import rules
from wallet_service.apple import decode_strings

BASE = "https://wallet.example.test"

CASES = {
    # basis: (tiers, purchases in RUB, expected next tier, expected left)
    "lifetime_points": ([{"name": "Bronze", "threshold": 0}, {"name": "Silver", "threshold": 100},
                         {"name": "Gold", "threshold": 300}], ["1000", "550"], "Gold", "145"),
    "visits": ([{"name": "Bronze", "threshold": 0}, {"name": "Regular", "threshold": 5}],
               ["100", "100"], "Regular", "3"),
    "lifetime_spend": ([{"name": "Bronze", "threshold": 0},
                        {"name": "Silver", "threshold": "1500"}], ["250", "300"], "Silver", "950"),
}


def _back_fields(api, member, lang):
    """The pass's back fields as a phone in ``lang`` shows them (through its pass.strings)."""
    data = api.client.get(member["apple_pass_url"].removeprefix(BASE)).data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pass_json = json.loads(z.read("pass.json"))
        strings = decode_strings(z.read(f"{lang}.lproj/pass.strings"))
    return {f["key"]: strings.get(f["value"], f["value"])
            for f in pass_json["storeCard"]["backFields"]}


@pytest.mark.parametrize("basis", sorted(CASES))
def test_api_pass_and_card_page_agree(api, client, basis):
    tiers, purchases, upcoming, left = CASES[basis]
    program = api.program(tier_basis=basis, tiers=tiers, languages=["en", "ru"])
    member = api.member(program["id"])
    for amount in purchases:
        r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "amount": amount})
        assert r.status_code == 201, r.json
    shown = api.get(f"/members/{member['id']}").json
    progress = shown["tier_progress"]
    assert progress["next_tier"] == upcoming and progress["basis"] == basis
    assert Decimal(progress["left"]) == Decimal(left)

    back = _back_fields(api, shown, "en")
    assert upcoming in back["tier_progress"]
    assert re.search(rf"\b{left}\b", back["tier_progress"])

    page = client.get(shown["card_url"].removeprefix(BASE) + "?lang=en").get_data(as_text=True)
    text = re.search(r'id="progress">([^<]*)<', page).group(1)
    assert upcoming in text
    digits = re.sub(r"[^\d]", "", text.split("until")[0].split("Spend")[-1])
    assert digits.startswith(left)  # "145 points", "3 visits", "RUB 950.00"
    assert f'aria-valuenow="{progress["percent"]}"' in page


def test_top_tier_has_nothing_left(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0}])
    member = api.member(program["id"])
    assert api.get(f"/members/{member['id']}").json["tier_progress"] == {
        "next_tier": None, "basis": "lifetime_points", "left": "0", "percent": 100}


def test_program_without_tiers_has_no_progress(api):
    member = api.member(api.program()["id"])
    assert member["tier_progress"] is None


def test_progress_counts_from_the_current_tier_after_a_downgrade():
    """The rule measures from the tier the card holds, not from where its totals would put
    it: after the daily review lowered a card, the next tier is the one above its tier."""
    rule = {"tier_basis": "lifetime_points",
            "tiers": [{"name": "A", "threshold": 0}, {"name": "B", "threshold": 100},
                      {"name": "C", "threshold": 200}]}
    progress = rules.tier_progress(rule, "RUB", "A", rules.Totals(points=150))
    assert (progress.next_tier, progress.left, progress.percent) == ("B", 0, 100)
    progress = rules.tier_progress(rule, "RUB", "B", rules.Totals(points=150))
    assert (progress.next_tier, progress.left, progress.percent) == ("C", 50, 50)
