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
    rules: Rules, currency: str, *, lifetime_points: int, lifetime_spend_minor: int
) -> str | None:
    """The highest tier whose threshold the card has reached, or None below the first."""
    if rules.get("tier_basis") == "lifetime_spend":
        value = Decimal(lifetime_spend_minor) / minor_units(currency)
    else:
        value = Decimal(lifetime_points)
    current = None
    for tier in rules.get("tiers", []):
        if value >= Decimal(str(tier["threshold"])):
            current = tier["name"]
    return current


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
