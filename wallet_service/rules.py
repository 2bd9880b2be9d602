"""Card rules, without I/O: what a purchase earns, how stamps wrap into rewards, the zero
floor of a balance, currency minor units, tiers and the way to the next tier.

Every surface that shows or changes a card asks this module: the ledger (what a change
does), the Apple pass and the Google object (what the card shows), the card page and the
merchant API. Functions take the program's ``rules`` document and currency rather than the
model, so the ledger can call them with the columns it selected under its row lock; nothing
here reads the database, the clock or the network.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR
from decimal import Decimal
from typing import Any
from typing import Protocol

from babel.numbers import get_currency_precision

from .errors import InvalidInput

Rules = dict[str, Any]

#: What a tier threshold counts (``tier_basis``); the default is lifetime points.
TIER_BASES = ("lifetime_points", "lifetime_spend", "visits")


# --- money ------------------------------------------------------------------------------


def minor_units(currency: str) -> int:
    """How many minor units make one unit of ``currency`` (100 for RUB, 1 for JPY)."""
    return int(10 ** get_currency_precision(currency))


def from_minor(currency: str, minor: int) -> Decimal:
    """Minor units back to an amount with the currency's decimals (12345 RUB → 123.45)."""
    return Decimal(minor).scaleb(-get_currency_precision(currency))


def to_minor(currency: str, amount: Decimal, field: str = "amount") -> int:
    """An amount in minor units (123.45 RUB → 12345).

    :raises InvalidInput: more decimals than the currency has.
    """
    scaled = amount * minor_units(currency)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"{field}: {amount} has more decimals than {currency} allows", field=field
        )
    return int(scaled)


# --- tiers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What tier thresholds are compared with: the card's lifetime totals, or the totals
    within the program's ``tier_window_days`` when it has one."""

    points: int = 0
    spend_minor: int = 0
    visits: int = 0


def tier_basis(rules: Rules) -> str:
    basis = rules.get("tier_basis") or "lifetime_points"
    return str(basis)


def basis_value(rules: Rules, currency: str, totals: Totals) -> Decimal:
    """The number a tier threshold is compared with (spend in major units)."""
    basis = tier_basis(rules)
    if basis == "lifetime_spend":
        return Decimal(totals.spend_minor) / minor_units(currency)
    if basis == "visits":
        return Decimal(totals.visits)
    return Decimal(totals.points)


def tier_for(rules: Rules, currency: str, totals: Totals) -> str | None:
    """The highest tier whose threshold ``totals`` reach, or None below the first."""
    value = basis_value(rules, currency, totals)
    current = None
    for tier in rules.get("tiers") or ():
        if value >= Decimal(str(tier["threshold"])):
            current = tier["name"]
    return current


def tier_rank(rules: Rules, tier: str | None) -> int:
    """The tier's position in the program (-1: none, or a tier the program no longer has)."""
    for index, t in enumerate(rules.get("tiers") or ()):
        if t["name"] == tier:
            return index
    return -1


def held_tier(manual_tier: str | None, until: dt.date | None, today: dt.date) -> str | None:
    """The tier the merchant assigned, while it holds on ``today``: through ``until``
    (inclusive), or for ever without one; else None."""
    if manual_tier is None or (until is not None and today > until):
        return None
    return manual_tier


def reviewed_tier(rules: Rules, due: str | None, held: str | None) -> str | None:
    """The tier a review gives a card: the one ``due`` by the program's rules, but never
    below a ``held`` tier the merchant assigned."""
    return held if tier_rank(rules, held) > tier_rank(rules, due) else due


def tier_info(rules: Rules, tier: str | None) -> dict[str, Any] | None:
    for t in rules.get("tiers") or ():
        if t["name"] == tier:
            return t  # type: ignore[no-any-return]
    return None


def next_tier(rules: Rules, tier: str | None) -> dict[str, Any] | None:
    """The tier above ``tier`` (the first tier when the card has none), or None at the top."""
    tiers = rules.get("tiers") or []
    rank = tier_rank(rules, tier)
    return tiers[rank + 1] if rank + 1 < len(tiers) else None  # type: ignore[no-any-return]


@dataclass(frozen=True)
class TierProgress:
    """Where a card stands on the way to the next tier.

    ``next_tier`` is None at the top tier. ``left`` is what the card still needs in the
    basis's unit (points, visits, or money in major units of the program's currency);
    ``percent`` is how far it is from the current tier's threshold to the next one's.
    """

    tier: str | None
    next_tier: str | None
    basis: str
    value: Decimal
    threshold: Decimal | None
    left: Decimal
    percent: int


def tier_progress(rules: Rules, currency: str, tier: str | None,
                  totals: Totals) -> TierProgress | None:
    """The card's way to the tier above its current one; None for a program without
    tiers. The one implementation behind the pass, the Google card, the card page and the
    API."""
    tiers = rules.get("tiers") or []
    if not tiers:
        return None
    basis = tier_basis(rules)
    value = basis_value(rules, currency, totals)
    upcoming = next_tier(rules, tier)
    if upcoming is None:
        return TierProgress(tier, None, basis, value, None, Decimal(0), 100)
    current = tier_info(rules, tier)
    floor = Decimal(str(current["threshold"])) if current is not None else Decimal(0)
    threshold = Decimal(str(upcoming["threshold"]))
    left = max(threshold - value, Decimal(0))
    span = threshold - floor
    percent = int((value - floor) * 100 / span) if span > 0 else 0
    return TierProgress(tier, upcoming["name"], basis, value, threshold, left,
                        max(0, min(100, percent)))


def discount_percent(rules: Rules, tier: str | None) -> Decimal | None:
    """The discount of the card's tier (discount programs), or None."""
    info = tier_info(rules, tier)
    if info is None or info.get("discount_percent") is None:
        return None
    return Decimal(str(info["discount_percent"]))


def multiplier_for(rules: Rules, tier: str | None) -> Decimal:
    info = tier_info(rules, tier)
    return Decimal(str(info["multiplier"])) if info is not None else Decimal(1)


# --- what a purchase earns ----------------------------------------------------------------


def cashback_percent(rules: Rules, tier: str | None, category: str | None = None) -> Decimal:
    """The cashback share for a line: the better of the tier's share and the category's
    (a category's 10 % does not lower a tier's 15 %); the category's own share when the
    program sets ``cashback.category_rate_overrides_tier``; the program's share when
    neither the tier nor the category has one."""
    cashback = rules.get("cashback") or {}
    categories = cashback.get("categories") or {}
    info = tier_info(rules, tier)
    tier_share = (Decimal(str(info["cashback_percent"]))
                  if info is not None and info.get("cashback_percent") is not None else None)
    if category is not None and category in categories:
        share = Decimal(str(categories[category]))
        if tier_share is None or cashback.get("category_rate_overrides_tier"):
            return share
        return max(share, tier_share)
    if tier_share is not None:
        return tier_share
    return Decimal(str(cashback.get("percent", 0)))


def cashback_for(rules: Rules, lines: list[tuple[int, str | None]], tier: str | None) -> int:
    """Cashback in minor units for eligible ``(amount_minor, category)`` lines, rounded down
    once over the whole purchase."""
    total = sum((Decimal(amount) * cashback_percent(rules, tier, category)
                 for amount, category in lines), Decimal(0))
    return int((total / 100).to_integral_value(rounding=ROUND_FLOOR))


def points_for_amount(rules: Rules, currency: str, amount_minor: int, tier: str | None) -> int:
    """Points for a purchase: the earning rule times the tier multiplier, rounded down."""
    earning = rules["earning"]
    per_minor = Decimal(str(earning["per_amount"])) * minor_units(currency)
    raw = Decimal(amount_minor) * int(earning["points"]) * multiplier_for(rules, tier) / per_minor
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))


def is_excluded(rules: Rules, sku: str | None, category: str | None) -> bool:
    """Whether a receipt line's sku or category is on the program's list of goods that earn
    nothing."""
    excluded = rules.get("excluded") or {}
    return sku in set(excluded.get("skus", ())) or category in set(
        excluded.get("categories", ()))


def stamps_for_purchase(rules: Rules, currency: str, eligible_minor: int) -> int:
    """Stamps one purchase gives before the stamp window's limit: ``per_purchase`` when the
    eligible amount reaches ``min_amount`` (any amount above zero without one)."""
    stamp_rule = rules["stamps"]
    minimum = stamp_rule.get("min_amount")
    if eligible_minor <= 0:
        return 0
    if minimum is not None and eligible_minor < to_minor(currency, Decimal(str(minimum))):
        return 0
    return int(stamp_rule.get("per_purchase", 1))


def purchase_earns(kind: str, rules: Rules, currency: str,
                   eligible: list[tuple[int, str | None]], tier: str | None) -> int:
    """What a purchase's eligible ``(amount_minor, category)`` lines add to the balance:
    points (points programs), cashback in minor units (cashback programs), nothing for
    stamps (see :func:`stamps_for_purchase`) and discount programs."""
    if kind == "points":
        return points_for_amount(rules, currency, sum(m for m, _ in eligible), tier)
    if kind == "cashback":
        return cashback_for(rules, eligible, tier)
    return 0


# --- stamps and the balance -----------------------------------------------------------------


@dataclass(frozen=True)
class StampResult:
    """A card's stamps after a change: the count towards the next reward, the rewards the
    change completed (negative: rewards a refund took back), what could not be taken back
    (``unrecovered``) and the stamps the card owes (``debt``)."""

    stamps: int
    rewards: int = 0
    unrecovered: int = 0
    debt: int = 0


def add_stamps(current: int, added: int, goal: int, *, debt: int = 0) -> StampResult:
    """Stamps after adding ``added`` (negative takes back): new stamps pay the card's
    ``debt`` first (see :func:`take_back_stamps`); every ``goal`` stamps wrap into one
    reward (5/6 plus 2 is 1/6 and a reward); stamps never go below zero, and what could not
    be taken back is ``unrecovered``."""
    if added > 0 and debt:
        paid = min(debt, added)
        debt, added = debt - paid, added - paid
    stamps = current + added
    unrecovered = 0
    if stamps < 0:
        unrecovered, stamps = -stamps, 0
    rewards = 0
    if goal and stamps >= goal:
        rewards, stamps = divmod(stamps, goal)
    return StampResult(stamps, rewards, unrecovered, debt)


def take_back_stamps(current: int, taken: int, goal: int, *, ready: int,
                     debt: int = 0) -> StampResult:
    """Stamps after a refund takes ``taken`` stamps back: from the card's count first; then
    each reward still ``ready`` that is no longer covered by stamps goes back into ``goal``
    stamps (0/6 and a reward, less 1, is 5/6 and no reward); what is still missing, because
    the reward was claimed already, becomes ``debt`` that the next stamps pay off first."""
    stamps = current - taken
    rewards = 0
    if stamps < 0 and goal:
        back = min(ready, -(stamps // goal))  # rewards needed to cover the shortfall
        rewards, stamps = -back, stamps + back * goal
    if stamps < 0:
        debt, stamps = debt - stamps, 0
    return StampResult(stamps, rewards, 0, debt)


@dataclass(frozen=True)
class BalanceResult:
    balance: int
    points: int
    unrecovered: int = 0


def apply_points(balance: int, points: int, *, cap_at_zero: bool) -> BalanceResult | None:
    """The balance after ``points``. Below zero: None when the change may not be capped (the
    caller refuses it), else the balance stops at zero and the rest is ``unrecovered``."""
    after = balance + points
    if after >= 0:
        return BalanceResult(after, points)
    if not cap_at_zero:
        return None
    return BalanceResult(0, -balance, -after)


# --- a card's standing, for its program's kind ------------------------------------------------


class CardNumbers(Protocol):
    """The card values a standing is worked out from (``LoyaltyCard`` has them)."""

    balance: int
    stamps: int
    stamp_debt: int
    tier: str | None
    lifetime_points: int
    lifetime_spend_minor: int
    visits: int


@dataclass(frozen=True)
class NextDiscount:
    """The discount of the tier above the card's (discount programs) and what the card still
    needs for it: ``left`` in the unit of the tier basis (points, visits, or money in major
    units)."""

    tier: str
    percent: Decimal
    basis: str
    left: Decimal

    @property
    def spend_left(self) -> Decimal | None:
        """The money still to spend, when the tiers count spend; else None."""
        return self.left if self.basis == "lifetime_spend" else None


@dataclass(frozen=True)
class Standing:
    """What a card holds and where it stands, in its program's own terms: the one
    description the merchant API, the Apple pass, the Google object and the card page show.

    ``unit`` says what the card's main figure counts: ``points`` (``points``), ``stamps``
    (``stamps`` of ``stamps_goal``, with ``rewards_ready`` rewards waiting), ``money``
    (``cashback`` in major units of ``currency``) or ``percent`` (``discount_percent``).
    ``reward`` is what a full stamp card gives, as the program states it (one text, or one
    per language). ``discount_percent`` and ``next_discount`` come from tiers that give a
    discount (every tier of a discount program does). Values of other kinds are None.
    """

    kind: str
    unit: str
    currency: str
    tier: str | None
    points: int | None = None
    stamps: int | None = None
    stamps_goal: int | None = None
    stamp_debt: int | None = None
    rewards_ready: int | None = None
    reward: str | dict[str, str] | None = None
    cashback: Decimal | None = None
    cashback_percent: Decimal | None = None
    discount_percent: Decimal | None = None
    next_discount: NextDiscount | None = None
    tier_progress: TierProgress | None = None

    @property
    def stamps_left(self) -> int | None:
        """Stamps still missing for the next reward (stamp programs), the stamps the card
        owes first (:func:`take_back_stamps`)."""
        if self.stamps is None or self.stamps_goal is None:
            return None
        return max(self.stamps_goal - self.stamps, 0) + (self.stamp_debt or 0)


#: The unit of each program kind's main figure.
KIND_UNITS = {"points": "points", "stamps": "stamps", "cashback": "money",
              "discount": "percent"}


def standing(kind: str, rules: Rules, currency: str, card: CardNumbers,
             totals: Totals | None = None) -> Standing:
    """Describe ``card`` for its program's ``kind``: points; stamps towards the goal and the
    rewards ready; cashback as money with the card's share; the discount and the next one;
    and, with tiers, the way to the next tier (:func:`tier_progress`) over ``totals`` (the
    card's lifetime totals unless given: a program with a tier window counts less)."""
    if totals is None:
        totals = Totals(card.lifetime_points, card.lifetime_spend_minor, card.visits)
    progress = tier_progress(rules, currency, card.tier, totals)
    share = discount_percent(rules, card.tier)
    if kind == "discount" and share is None:
        share = Decimal(0)  # below the first tier
    common: dict[str, Any] = {
        "kind": kind, "unit": KIND_UNITS.get(kind, "points"), "currency": currency,
        "tier": card.tier, "tier_progress": progress, "discount_percent": share,
        "next_discount": _next_discount(rules, card.tier, progress),
    }
    if kind == "stamps":
        stamp_rule = rules.get("stamps") or {}
        return Standing(**common, stamps=card.stamps, stamps_goal=int(stamp_rule.get("goal", 1)),
                        stamp_debt=card.stamp_debt, rewards_ready=card.balance,
                        reward=stamp_rule.get("reward"))
    if kind == "cashback":
        return Standing(**common, cashback=from_minor(currency, card.balance),
                        cashback_percent=cashback_percent(rules, card.tier))
    if kind == "discount":
        return Standing(**common)
    return Standing(**common, points=card.balance)


def _next_discount(rules: Rules, tier: str | None,
                   progress: TierProgress | None) -> NextDiscount | None:
    upcoming = next_tier(rules, tier)
    if upcoming is None or progress is None or upcoming.get("discount_percent") is None:
        return None
    return NextDiscount(upcoming["name"], Decimal(str(upcoming["discount_percent"])),
                        progress.basis, progress.left)
