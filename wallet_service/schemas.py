"""Request and response models of the merchant API.

The same pydantic models validate input at the edge and generate the OpenAPI document,
so the documentation cannot promise what the service does not check.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated
from typing import Literal

from babel.numbers import get_currency_precision
from babel.numbers import list_currencies
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

PROGRAM_KINDS = ("points",)
TEMPLATES = ("points", "stamps", "tiers", "cashback")
LANGUAGES = ("ru", "en")
BARCODE_FORMATS = ("qr", "pdf417", "aztec", "code128")

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
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


class Design(Strict):
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


class Tier(Strict):
    name: str = Field(min_length=1, max_length=60)
    threshold: Decimal = Field(ge=0, description="Lifetime points, or spend in currency units")
    multiplier: Decimal = Field(Decimal("1"), gt=0, le=100)


TierBasis = Literal["lifetime_points", "lifetime_spend"]

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
    if basis == "lifetime_points" and any(t != t.to_integral_value() for t in thresholds):
        raise ValueError("tiers: thresholds on lifetime points must be whole numbers")


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


class ProgramCreate(Strict):
    name: Text200
    kind: Literal["points"] = Field(description="Program mechanics. Only `points` for now.")
    currency: str = Field("RUB", min_length=3, max_length=3)
    languages: list[Literal["ru", "en"]] = Field(default_factory=lambda: ["ru", "en"])
    template: Literal["points", "stamps", "tiers", "cashback"] = "points"
    design: Design = Field(default_factory=Design)
    earning: EarningRule = Field(default_factory=EarningRule)
    tier_basis: TierBasis = "lifetime_points"
    tiers: list[Tier] = Field(default_factory=list, max_length=20)
    enrollment: Enrollment = Field(default_factory=Enrollment)

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
    """Fields to change; everything left out stays as it is."""

    name: Text200 | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    languages: list[Literal["ru", "en"]] | None = None
    template: Literal["points", "stamps", "tiers", "cashback"] | None = None
    design: Design | None = None
    earning: EarningRule | None = None
    tier_basis: TierBasis | None = None
    tiers: list[Tier] | None = Field(None, max_length=20)
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
    design: Design
    earning: EarningRule
    tier_basis: TierBasis
    tiers: list[Tier]
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

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not _EMAIL.match(v):
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
    balance: int
    tier: str | None
    lifetime_points: int
    lifetime_spend: Decimal
    version: int
    created_at: dt.datetime
    apple_pass_url: str | None
    google_save_url: str | None
    card_url: str | None


class MemberList(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None = None


# --- transactions -----------------------------------------------------------------------


class TransactionCreate(Strict):
    """``earn`` takes ``points`` or a purchase ``amount``; ``redeem`` and ``adjust`` take
    ``points`` (``adjust`` may be negative and needs a ``reason``)."""

    type: Literal["earn", "redeem", "adjust"]
    points: int | None = Field(None, ge=-1_000_000_000, le=1_000_000_000)
    amount: Decimal | None = Field(None, gt=0, le=Decimal("1000000000"), examples=["123.45"])
    reason: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> TransactionCreate:
        if self.type == "earn":
            if (self.points is None) == (self.amount is None):
                raise ValueError("earn takes exactly one of points or amount")
            if self.points is not None and self.points <= 0:
                raise ValueError("points: must be greater than 0 for earn")
        else:
            if self.amount is not None:
                raise ValueError(f"amount: not allowed for {self.type}; give points")
            if self.points is None:
                raise ValueError(f"points: required for {self.type}")
            if self.type == "redeem" and self.points <= 0:
                raise ValueError("points: must be greater than 0 for redeem")
            if self.type == "adjust":
                if self.points == 0:
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
    created_at: dt.datetime


class TransactionResult(BaseModel):
    transaction: TransactionOut
    balance: int
    tier: str | None


class TransactionList(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None = None


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
