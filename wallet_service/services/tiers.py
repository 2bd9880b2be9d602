"""Tier arithmetic: which tier a card is in, and the multiplier it earns with."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import get_currency_precision

from ..models import LoyaltyProgram


def minor_units(program: LoyaltyProgram) -> int:
    """How many minor units make one unit of the program's currency (100 for RUB)."""
    return int(10 ** get_currency_precision(program.currency))


def from_minor(currency: str, minor: int) -> Decimal:
    """Minor units back to an amount with the currency's decimals (12345 RUB → 123.45)."""
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def tier_for(program: LoyaltyProgram, *, lifetime_points: int, lifetime_spend_minor: int) -> str | None:
    """The highest tier whose threshold the card has reached, or None below the first."""
    rules = program.rules
    if rules.get("tier_basis") == "lifetime_spend":
        value = Decimal(lifetime_spend_minor) / minor_units(program)
    else:
        value = Decimal(lifetime_points)
    current = None
    for tier in rules.get("tiers", []):
        if value >= Decimal(str(tier["threshold"])):
            current = tier["name"]
    return current


def multiplier_for(program: LoyaltyProgram, tier: str | None) -> Decimal:
    for t in program.rules.get("tiers", []):
        if t["name"] == tier:
            return Decimal(str(t["multiplier"]))
    return Decimal(1)
