"""Program arithmetic: currency minor units, tiers and the points a purchase earns.

Functions take the program's ``rules`` document and currency rather than the model, so the
ledger can call them with the columns it selected under its row lock.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision

Rules = dict[str, Any]


def minor_units(currency: str) -> int:
    """How many minor units make one unit of ``currency`` (100 for RUB, 1 for JPY)."""
    return int(10 ** get_currency_precision(currency))


def from_minor(currency: str, minor: int) -> Decimal:
    """Minor units back to an amount with the currency's decimals (12345 RUB → 123.45)."""
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def tier_for(
    rules: Rules, currency: str, *, lifetime_points: int, lifetime_spend_minor: int,
    visits: int = 0,
) -> str | None:
    """The highest tier whose threshold the card has reached, or None below the first.

    The values are the card's lifetime totals, or the totals within the program's
    ``tier_window_days`` when it has one (see ``ledger.window_totals``).
    """
    basis = rules.get("tier_basis")
    if basis == "lifetime_spend":
        value = Decimal(lifetime_spend_minor) / minor_units(currency)
    elif basis == "visits":
        value = Decimal(visits)
    else:
        value = Decimal(lifetime_points)
    current = None
    for tier in rules.get("tiers", []):
        if value >= Decimal(str(tier["threshold"])):
            current = tier["name"]
    return current


def tier_rank(rules: Rules, tier: str | None) -> int:
    """The tier's position in the program (-1: none, or a tier the program no longer has)."""
    for index, t in enumerate(rules.get("tiers", [])):
        if t["name"] == tier:
            return index
    return -1


def tier_info(rules: Rules, tier: str | None) -> dict[str, Any] | None:
    for t in rules.get("tiers", []):
        if t["name"] == tier:
            return t  # type: ignore[no-any-return]
    return None


def next_tier(rules: Rules, tier: str | None) -> dict[str, Any] | None:
    """The tier above ``tier`` (the first tier when the card has none), or None at the top."""
    tiers = rules.get("tiers", [])
    rank = tier_rank(rules, tier)
    return tiers[rank + 1] if rank + 1 < len(tiers) else None  # type: ignore[no-any-return]


def discount_percent(rules: Rules, tier: str | None) -> Decimal | None:
    info = tier_info(rules, tier)
    if info is None or info.get("discount_percent") is None:
        return None
    return Decimal(str(info["discount_percent"]))


def cashback_percent(rules: Rules, tier: str | None, category: str | None = None) -> Decimal:
    """The cashback share for a line: the category's own share, else the tier's, else the
    program's."""
    cashback = rules.get("cashback") or {}
    categories = cashback.get("categories") or {}
    if category is not None and category in categories:
        return Decimal(str(categories[category]))
    info = tier_info(rules, tier)
    if info is not None and info.get("cashback_percent") is not None:
        return Decimal(str(info["cashback_percent"]))
    return Decimal(str(cashback.get("percent", 0)))


def cashback_for(rules: Rules, lines: list[tuple[int, str | None]], tier: str | None) -> int:
    """Cashback in minor units for eligible ``(amount_minor, category)`` lines, rounded down
    once over the whole purchase."""
    total = sum((Decimal(amount) * cashback_percent(rules, tier, category)
                 for amount, category in lines), Decimal(0))
    return int((total / 100).to_integral_value(rounding=ROUND_FLOOR))


def multiplier_for(rules: Rules, tier: str | None) -> Decimal:
    for t in rules.get("tiers", []):
        if t["name"] == tier:
            return Decimal(str(t["multiplier"]))
    return Decimal(1)


def points_for_amount(rules: Rules, currency: str, amount_minor: int, tier: str | None) -> int:
    """Points for a purchase: the earning rule times the tier multiplier, rounded down."""
    earning = rules["earning"]
    per_minor = Decimal(str(earning["per_amount"])) * minor_units(currency)
    raw = Decimal(amount_minor) * int(earning["points"]) * multiplier_for(rules, tier) / per_minor
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))
