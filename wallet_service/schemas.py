"""Request and response models of the merchant API.

The same pydantic models validate input at the edge and generate the OpenAPI document,
so the documentation cannot promise what the service does not check.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated
from typing import Any
from typing import Literal

from babel.numbers import get_currency_precision
from babel.numbers import list_currencies
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SerializerFunctionWrapHandler
from pydantic import field_validator
from pydantic import model_serializer
from pydantic import model_validator

from .validation import EMAIL

PROGRAM_KINDS = ("points", "stamps", "cashback", "discount")
#: The card template a program of each kind gets unless it names one.
KIND_TEMPLATES = {"points": "points", "stamps": "stamps", "cashback": "cashback",
                  "discount": "tiers"}

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CURRENCIES = frozenset(list_currencies())

Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Color = Annotated[str, Field(pattern=_COLOR.pattern, examples=["#3c2a21"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- programs ---------------------------------------------------------------------------


class Contact(Strict):
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    website: str | None = Field(None, max_length=500, pattern=r"^https?://")


class Location(Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    relevant_text: str | None = Field(None, max_length=200)


class ProgramDesign(Strict):
    """How the card looks. Unset values fall back to the template's."""

    background_color: Color | None = None
    foreground_color: Color | None = None
    label_color: Color | None = None
    logo_text: str | None = Field(None, max_length=40)
    description: str | None = Field(None, max_length=200)
    points_label: str | None = Field(None, max_length=30)
    rules_text: str | None = Field(None, max_length=2000)
    terms_text: str | None = Field(None, max_length=5000)
    contact: Contact = Field(default_factory=Contact)
    barcode_format: Literal["qr", "pdf417", "aztec", "code128"] = "qr"
    locations: list[Location] = Field(default_factory=list, max_length=10)


class EarningRule(Strict):
    """``points`` points for every ``per_amount`` of currency spent (10 per 100 RUB)."""

    points: int = Field(10, ge=1, le=1_000_000)
    per_amount: Decimal = Field(Decimal("100"), gt=0, le=Decimal("1000000000"))


Percent = Annotated[Decimal, Field(ge=0, le=100, examples=["5"])]


class Tier(Strict):
    name: str = Field(min_length=1, max_length=60)
    threshold: Decimal = Field(
        ge=0, description="Points, spend in currency units, or visits (see `tier_basis`)")
    multiplier: Decimal = Field(Decimal("1"), gt=0, le=100,
                                description="Points programs: earning multiplier")
    cashback_percent: Percent | None = Field(
        None, description="Cashback programs: the share of a purchase returned at this tier")
    discount_percent: Percent | None = Field(
        None, description="The discount members of this tier get (shown on the card)")

    @model_serializer(mode="wrap")
    def _omit_unset_shares(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("cashback_percent", "discount_percent"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


TierBasis = Literal["lifetime_points", "lifetime_spend", "visits"]


class StampRule(Strict):
    """``goal`` stamps make one reward ("the 6th coffee is free")."""

    goal: int = Field(6, ge=2, le=50)
    reward: str = Field("a free coffee", min_length=1, max_length=60,
                        description="What the member gets, as the card says it")
    per_purchase: int = Field(1, ge=1, le=50, description="Stamps a purchase earns")
    min_amount: Decimal | None = Field(None, gt=0, description="Smallest purchase that earns")
    max_per_window: int | None = Field(
        1, ge=1, le=100, description="At most this many stamps per card within `window_minutes` "
                                     "(null: no limit)")
    window_minutes: int = Field(60, ge=1, le=7 * 24 * 60)


class CashbackRule(Strict):
    """A share of every purchase kept as money; tiers may set their own share."""

    percent: Percent = Decimal("5")
    categories: dict[Annotated[str, Field(min_length=1, max_length=60)], Percent] = Field(
        default_factory=dict, description="Another share for these product categories")
    max_redeem_percent: Percent = Field(
        Decimal("50"), description="At most this share of a purchase may be paid from cashback")


class Exclusions(Strict):
    """Goods that earn nothing (the merchant's black list)."""

    skus: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=1000)
    categories: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=200)


class Bonuses(Strict):
    """Bonuses outside purchases, in the program's balance unit (points, stamps, or minor
    units of cashback). 0 turns a bonus off."""

    welcome: int = Field(0, ge=0, le=1_000_000, description="On sign-up")
    birthday: int = Field(0, ge=0, le=1_000_000,
                          description="On the birthday (28 February for 29 February outside "
                                      "leap years)")
    referrer: int = Field(0, ge=0, le=1_000_000,
                          description="To the member whose friend made a first purchase")
    referred: int = Field(0, ge=0, le=1_000_000,
                          description="To the friend, on their first purchase")
    winback: int = Field(0, ge=0, le=1_000_000, description="To members inactive for a while")
    winback_after_days: int = Field(60, ge=1, le=3650)
    actions: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
                  Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        default_factory=dict, max_length=20,
        description="Bonuses for actions beyond purchases, e.g. {\"review\": 50}")

DEFAULT_CONSENT = {
    "ru": "Я согласен(на) на обработку моих персональных данных и с правилами программы "
          "лояльности.",
    "en": "I agree to the processing of my personal data and to the loyalty program rules.",
}

Localized = dict[Literal["ru", "en"], Annotated[str, Field(min_length=1, max_length=2000)]]


class Question(Strict):
    """A question of the program's sign-up form."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["favourite_drink"])
    type: Literal["text", "choice", "date", "yesno"]
    label: Localized = Field(description="The question per language")
    required: bool = False
    options: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="The answers to pick from (choice)")

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if not self.label:
            raise ValueError("label: give the question in at least one language")
        if self.type == "choice" and len(self.options) < 2:
            raise ValueError("options: a choice needs at least two options")
        if self.type != "choice" and self.options:
            raise ValueError(f"options: only choice questions have options, not {self.type}")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options: must not repeat")
        return self


class Enrollment(Strict):
    """The public sign-up page: the consent the customer accepts and the merchant's questions."""

    consent_text: Localized = Field(default_factory=lambda: dict(DEFAULT_CONSENT))
    questions: list[Question] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _unique(self) -> Enrollment:
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys):
            raise ValueError("questions: keys must be unique")
        if not self.consent_text:
            raise ValueError("consent_text: give the text in at least one language")
        return self


def _check_tiers(tiers: list[Tier], basis: str) -> None:
    names = [t.name.casefold() for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError("tiers: names must be unique")
    thresholds = [t.threshold for t in tiers]
    if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
        raise ValueError("tiers: thresholds must be strictly increasing")
    whole = all(t == t.to_integral_value() for t in thresholds)
    if basis in ("lifetime_points", "visits") and not whole:
        raise ValueError(f"tiers: thresholds on {basis} must be whole numbers")


def _check_currency(value: str) -> str:
    value = value.upper()
    if value not in _CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency code {value!r}")
    return value


def _check_languages(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("at least one language is required")
    if len(set(value)) != len(value):
        raise ValueError("languages must not repeat")
    return value


class ProgramRules(Strict):
    """The mechanics of a program, stored as its ``rules`` document."""

    earning: EarningRule = Field(default_factory=EarningRule)
    tier_basis: TierBasis = "lifetime_points"
    tier_window_days: int | None = Field(
        None, ge=1, le=3650,
        description="Count the tier basis over this many last days only (null: for ever). "
                    "Upgrades are immediate; downgrades happen in the daily job")
    tiers: list[Tier] = Field(default_factory=list, max_length=20)
    stamps: StampRule | None = Field(None, description="Stamp programs")
    cashback: CashbackRule | None = Field(None, description="Cashback programs")
    excluded: Exclusions = Field(default_factory=Exclusions)
    points_validity_days: int | None = Field(
        None, ge=1, le=3650, description="Points expire this many days after they were earned, "
                                         "oldest first (null: never)")
    expiry_reminder_days: int = Field(14, ge=1, le=365,
                                      description="Remind on the card this long before")
    bonuses: Bonuses = Field(default_factory=Bonuses)


RULE_FIELDS = tuple(ProgramRules.model_fields)


class ProgramCreate(ProgramRules):
    name: Text200
    kind: Literal["points", "stamps", "cashback", "discount"] = Field(
        description="Program mechanics: `points` per purchase; `stamps` towards a reward; "
                    "`cashback`, a money balance; `discount`, a discount by tier")
    currency: str = Field("RUB", min_length=3, max_length=3)
    languages: list[Literal["ru", "en"]] = Field(default_factory=lambda: ["ru", "en"])
    template: Literal["points", "stamps", "tiers", "cashback"] = Field(
        "points", description="Defaults to the kind's own template")
    design: ProgramDesign = Field(default_factory=ProgramDesign)
    enrollment: Enrollment = Field(default_factory=Enrollment)

    @model_validator(mode="after")
    def _kind_defaults(self) -> ProgramCreate:
        if "template" not in self.model_fields_set:
            self.template = KIND_TEMPLATES[self.kind]  # type: ignore[assignment]
        if self.kind == "stamps" and self.stamps is None:
            self.stamps = StampRule()
        if self.kind == "cashback" and self.cashback is None:
            self.cashback = CashbackRule()
        if self.kind == "discount":
            if not self.tiers:
                raise ValueError("tiers: a discount program needs at least one tier")
            if any(t.discount_percent is None for t in self.tiers):
                raise ValueError("tiers: every tier of a discount program needs discount_percent")
        if self.kind == "stamps" and self.points_validity_days is not None:
            raise ValueError("points_validity_days: stamp programs do not expire points")
        return self

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        return _check_currency(v)

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str]) -> list[str]:
        return _check_languages(v)

    @model_validator(mode="after")
    def _tiers_ok(self) -> ProgramCreate:
        _check_tiers(self.tiers, self.tier_basis)
        if self.earning.per_amount.as_tuple().exponent < -get_currency_precision(self.currency):
            raise ValueError("earning.per_amount: more decimals than the currency has")
        return self


class ProgramUpdate(Strict):
    """A JSON Merge Patch (RFC 7396) of a program: everything left out stays as it is, objects
    merge key by key, lists replace whole, null clears a field. The merged program must be a
    valid ``ProgramCreate``; ``name`` and ``currency`` cannot be cleared (their types here
    refuse null)."""

    name: Text200 = Field(None)  # type: ignore[assignment]
    currency: str = Field(None, min_length=3, max_length=3)  # type: ignore[assignment]
    languages: list[Literal["ru", "en"]] | None = None
    template: Literal["points", "stamps", "tiers", "cashback"] | None = None
    design: ProgramDesign | None = None
    earning: EarningRule | None = None
    tier_basis: TierBasis | None = None
    tier_window_days: int | None = Field(None, ge=1, le=3650)
    tiers: list[Tier] | None = Field(None, max_length=20)
    stamps: StampRule | None = None
    cashback: CashbackRule | None = None
    excluded: Exclusions | None = None
    points_validity_days: int | None = Field(None, ge=1, le=3650)
    expiry_reminder_days: int | None = Field(None, ge=1, le=365)
    bonuses: Bonuses | None = None
    enrollment: Enrollment | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str | None) -> str | None:
        return None if v is None else _check_currency(v)

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_languages(v)


class ProgramOut(BaseModel):
    id: int
    name: str
    kind: str
    currency: str
    languages: list[str]
    template: str
    design: ProgramDesign
    earning: EarningRule
    tier_basis: TierBasis
    tier_window_days: int | None
    tiers: list[Tier]
    stamps: StampRule | None
    cashback: CashbackRule | None
    excluded: Exclusions
    points_validity_days: int | None
    expiry_reminder_days: int
    bonuses: Bonuses
    enrollment: Enrollment
    join_url: str = Field(description="The public sign-up page (print it as a QR code)")
    created_at: dt.datetime
    updated_at: dt.datetime


class ProgramImageOut(BaseModel):
    program_id: int
    kind: str
    files: list[str] = Field(description="The pass files made from the upload, per resolution")


class ProgramList(BaseModel):
    items: list[ProgramOut]


# --- members ----------------------------------------------------------------------------


class MemberCreate(Strict):
    name: Text200
    phone: str = Field(min_length=3, max_length=40, examples=["+7 912 345-67-89"])
    email: str | None = Field(None, max_length=254)
    birthday: dt.date | None = None
    external_id: str | None = Field(None, min_length=1, max_length=100)
    consent_text: str | None = Field(
        None, max_length=5000, description="The exact consent text the customer accepted."
    )
    answers: dict[str, Annotated[str, Field(max_length=500)] | bool] = Field(
        default_factory=dict, description="Answers to the program's questions, by key")
    referral_code: str | None = Field(
        None, min_length=4, max_length=16,
        description="The referral code of the member who invited this one")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL.match(v):
            raise ValueError("not a valid e-mail address")
        return v

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, v: dt.date | None) -> dt.date | None:
        if v is not None and not (dt.date(1900, 1, 1) <= v <= dt.date.today()):
            raise ValueError("must be a past date after 1900-01-01")
        return v


class Consent(BaseModel):
    text: str
    accepted_at: dt.datetime


class TierProgressOut(BaseModel):
    """The way to the next tier, as the pass and the card page show it."""

    next_tier: str | None = Field(description="Null at the top tier")
    basis: Literal["lifetime_points", "lifetime_spend", "visits"]
    left: Decimal = Field(description="Points, visits or money (major units) still needed")
    percent: int = Field(ge=0, le=100, description="From the current tier to the next")


class MemberOut(BaseModel):
    id: int
    program_id: int
    name: str
    phone: str
    email: str | None
    birthday: dt.date | None
    external_id: str | None
    consent: Consent | None
    answers: dict[str, str | bool]
    source: str
    serial_number: str
    card_number: str
    status: str
    balance: int = Field(description="Points; rewards ready to claim in a stamp program; "
                                     "minor units (kopecks, cents) in a cashback program")
    tier: str | None
    lifetime_points: int
    lifetime_spend: Decimal
    stamps: int = Field(description="Stamps towards the next reward (stamp programs)")
    visits: int
    referral_code: str | None = Field(description="The member's code for inviting friends")
    message: str | None = Field(description="The latest message on the back of the card")
    version: int
    tier_progress: TierProgressOut | None = Field(
        description="Null for a program without tiers")
    created_at: dt.datetime
    apple_pass_url: str | None
    google_save_url: str | None
    card_url: str | None


class MemberList(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None = None


# --- transactions -----------------------------------------------------------------------


class ReceiptLine(Strict):
    sku: str | None = Field(None, min_length=1, max_length=100)
    category: str | None = Field(None, min_length=1, max_length=60)
    amount: Decimal = Field(gt=0, le=Decimal("1000000000"), description="The line's total")


class TransactionCreate(Strict):
    """``earn`` takes ``points``, ``stamps`` (stamp programs) or a purchase: ``amount`` and/or
    receipt ``lines``. ``redeem`` takes ``points`` (rewards ready, in a stamp program) or, in a
    cashback program, the ``amount`` of money to pay with and the ``purchase_amount``.
    ``adjust`` takes signed ``points`` or ``stamps`` and a ``reason``. ``refund`` takes the
    ``original_id`` of a purchase and optionally the refunded ``amount`` (default: all of it
    that is not refunded yet)."""

    type: Literal["earn", "redeem", "adjust", "refund"]
    points: int | None = Field(None, ge=-1_000_000_000, le=1_000_000_000)
    stamps: int | None = Field(None, ge=-1000, le=1000)
    amount: Decimal | None = Field(None, gt=0, le=Decimal("1000000000"), examples=["123.45"])
    lines: list[ReceiptLine] | None = Field(None, min_length=1, max_length=500)
    purchase_amount: Decimal | None = Field(None, gt=0, le=Decimal("1000000000"))
    original_id: int | None = Field(None, ge=1, description="refund: the purchase's id")
    reason: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> TransactionCreate:
        purchase = self.amount is not None or self.lines is not None
        if self.type != "earn" and self.lines is not None:
            raise ValueError(f"lines: not allowed for {self.type}")
        if self.type != "redeem" and self.purchase_amount is not None:
            raise ValueError(f"purchase_amount: only for redeem, not {self.type}")
        if self.type != "refund" and self.original_id is not None:
            raise ValueError(f"original_id: only for refund, not {self.type}")
        if self.type == "earn":
            if sum((self.points is not None, self.stamps is not None, purchase)) != 1:
                raise ValueError("earn takes exactly one of points, stamps or a purchase "
                                 "(amount or lines)")
            if self.points is not None and self.points <= 0:
                raise ValueError("points: must be greater than 0 for earn")
            if self.stamps is not None and self.stamps <= 0:
                raise ValueError("stamps: must be greater than 0 for earn")
            if (self.lines is not None and self.amount is not None
                    and sum(line.amount for line in self.lines) != self.amount):
                raise ValueError("amount: must equal the sum of the lines")
        elif self.type == "refund":
            if self.original_id is None:
                raise ValueError("original_id: required for refund")
            if self.points is not None or self.stamps is not None:
                raise ValueError("points: a refund takes back what the purchase earned")
        elif self.type == "redeem":
            if self.stamps is not None:
                raise ValueError("stamps: not allowed for redeem; claim a reward with points")
            if self.points is None and self.amount is None:
                raise ValueError("points: required for redeem")
            if self.points is not None and self.amount is not None:
                raise ValueError("amount: give points or amount, not both")
            if self.points is not None and self.points <= 0:
                raise ValueError("points: must be greater than 0 for redeem")
        else:
            if self.amount is not None:
                raise ValueError(f"amount: not allowed for {self.type}; give points")
            if self.points is None and self.stamps is None:
                raise ValueError(f"points: required for {self.type}")
            if self.points == 0 or self.stamps == 0:
                raise ValueError("points: must not be 0 for adjust")
            if not self.reason:
                raise ValueError("reason: required for adjust")
        return self


class TransactionOut(BaseModel):
    id: int
    member_id: int
    type: str
    points: int
    amount: Decimal | None
    reason: str | None
    balance_after: int
    tier_after: str | None
    stamps: int
    reference_id: int | None
    details: dict[str, Any] | None
    created_at: dt.datetime


class TransactionResult(BaseModel):
    transaction: TransactionOut
    balance: int
    tier: str | None


class TransactionList(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None = None


class StampCreate(Strict):
    """Stamps given at the till; past the goal they turn into a reward."""

    count: int = Field(1, ge=1, le=50)
    reason: str | None = Field(None, min_length=1, max_length=500)


class ActionCreate(Strict):
    """An action beyond purchases the program rewards (``bonuses.actions``)."""

    action: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["review"])
    reference: str | None = Field(
        None, min_length=1, max_length=100,
        description="Identifies the action (the review's id); the same one earns once")


# --- rewards and coupons ----------------------------------------------------------------


class RewardCreate(Strict):
    name: Text200
    description: str | None = Field(None, max_length=1000)
    cost_points: int | None = Field(None, ge=1, le=1_000_000_000)
    cost_stamps: int | None = Field(None, ge=1, le=50)

    @model_validator(mode="after")
    def _cost(self) -> RewardCreate:
        if (self.cost_points is None) == (self.cost_stamps is None):
            raise ValueError("give exactly one of cost_points or cost_stamps")
        return self


class RewardOut(BaseModel):
    id: int
    program_id: int
    name: str
    description: str | None
    cost_points: int | None
    cost_stamps: int | None
    active: bool


class RewardList(BaseModel):
    items: list[RewardOut]


class Segment(Strict):
    """Members to reach; every filter given must match (none given: all members)."""

    tier: str | None = Field(None, min_length=1, max_length=60)
    inactive_days: int | None = Field(None, ge=1, le=3650,
                                      description="No purchase in this many days")
    birthday_month: int | None = Field(None, ge=1, le=12)
    member_ids: list[int] | None = Field(None, min_length=1, max_length=1000)


class CouponCreate(Strict):
    title: str = Field(min_length=1, max_length=100, examples=["−20% on pastries"])
    description: str | None = Field(None, max_length=1000)
    segment: Segment = Field(default_factory=Segment)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None

    @model_validator(mode="after")
    def _period(self) -> CouponCreate:
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name}: give a time zone")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until: must be after valid_from")
        return self


class CouponOut(BaseModel):
    id: int
    program_id: int
    title: str
    description: str | None
    segment: Segment
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    granted: int = Field(description="Cards the coupon was given to")
    used: int


class MemberCoupon(BaseModel):
    grant_id: int
    coupon_id: int
    title: str
    description: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    used_at: dt.datetime | None


class MemberCouponList(BaseModel):
    items: list[MemberCoupon]


# --- campaigns and automations ----------------------------------------------------------


class CampaignCreate(Strict):
    text: str = Field(min_length=1, max_length=500,
                      description="Shown on the back of the card; the phone announces it")
    segment: Segment = Field(default_factory=Segment)


class CampaignOut(BaseModel):
    id: int
    program_id: int
    text: str
    segment: Segment
    reached: int = Field(description="Cards that show the message")
    created_at: dt.datetime


class CampaignList(BaseModel):
    items: list[CampaignOut]


class DailyRun(Strict):
    day: dt.date | None = Field(None, description="The day to run for (default: today, UTC)")


class DailyReport(BaseModel):
    day: dt.date
    expired: int = Field(description="Lots expired")
    reminded: int
    birthdays: int
    winbacks: int
    downgrades: int
    coupons_refreshed: int = Field(0, description="Cards whose coupon started or ended")


# --- api keys ---------------------------------------------------------------------------


class ApiKeyCreate(Strict):
    name: str = Field("default", min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="Shown once; only a hash is stored.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = Field(default_factory=list)
