"""Request and response models of the merchant API.

The same pydantic models validate input at the edge and generate the OpenAPI document,
so the documentation cannot promise what the service does not check.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import partial
from typing import Annotated
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

from babel.numbers import get_currency_precision
from babel.numbers import list_currencies
from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PlainValidator
from pydantic import SerializerFunctionWrapHandler
from pydantic import WithJsonSchema
from pydantic import create_model
from pydantic import field_validator
from pydantic import model_serializer
from pydantic import model_validator
from pydantic.fields import FieldInfo

from .i18n import text_languages_error
from .local_time import is_time_zone
from .permissions import DEFAULT_SCOPE
from .permissions import Scope
from .validation import EMAIL

PROGRAM_KINDS = ("points", "stamps", "cashback", "discount")
#: The card template a program of each kind gets unless it names one.
KIND_TEMPLATES = {"points": "points", "stamps": "stamps", "cashback": "cashback",
                  "discount": "tiers"}

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CURRENCIES = frozenset(list_currencies())

Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Color = Annotated[str, Field(pattern=_COLOR.pattern, examples=["#3c2a21"])]

#: The languages customers read (``ProgramCreate.languages``).
LANGUAGES = ("ru", "en")
Language = Literal["ru", "en"]


def _localized_text(max_length: int, value: Any) -> str | dict[str, str]:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        return value
    if not isinstance(value, dict):
        raise ValueError('give one text, or one per language: {"ru": "…", "en": "…"}')
    if not value:
        raise ValueError("give the text in at least one language")
    texts = {}
    for language, text in value.items():
        if language not in LANGUAGES:
            raise ValueError(f"{language!r} is not a language; use {' or '.join(LANGUAGES)}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{language}: must be a text that is not empty")
        if len(text.strip()) > max_length:
            raise ValueError(f"{language}: at most {max_length} characters")
        texts[language] = text.strip()
    return texts


#: A merchant's text customers read: one text for every language, or one per language
#: (``{"ru": "…", "en": "…"}``). The program's own languages are checked where the program
#: is known (:func:`wallet_service.i18n.program_text`).
LocalizedText = str | dict[str, str]


def localized_text(max_length: int) -> PlainValidator:
    """The check of a :data:`LocalizedText` field: texts not empty, at most ``max_length``
    characters each, languages among :data:`LANGUAGES`."""
    one = Annotated[str, Field(min_length=1, max_length=max_length)]
    return PlainValidator(partial(_localized_text, max_length),
                          json_schema_input_type=one | Annotated[dict[Language, one],
                                                                 Field(min_length=1)])


RulesText = Annotated[LocalizedText, localized_text(2000)]
TermsText = Annotated[LocalizedText, localized_text(5000)]
RewardText = Annotated[LocalizedText, localized_text(60)]
Name200 = Annotated[LocalizedText, localized_text(200)]
TitleText = Annotated[LocalizedText, localized_text(100)]
MessageText = Annotated[LocalizedText, localized_text(500)]


class Strict(BaseModel):
    """A request document. Unknown fields are refused, texts trimmed, and values must have
    the JSON type the OpenAPI document gives them (strict): ``"5"`` is not a number, ``0`` is
    not ``false`` and a number of seconds is not a date. Dates, times and decimals arrive as
    text and are read by their types (:data:`IsoDate`, :data:`ZonedDateTime`,
    :data:`DecimalValue`). Query parameters are text by nature: ``validate(...,
    strict=False)`` reads them (web/routing.py). No text may hold the character U+0000:
    PostgreSQL cannot store it, and no text of this service needs it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        where = _nul_at(data)
        if where is not None:
            raise ValueError(f"{where or 'body'}: must not contain the character U+0000 (NUL)")
        return data


def _nul_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first text (value or key) in ``value`` that holds U+0000."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return path or "body"
            found = _nul_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
                            r"(?:\.[0-9]{1,6})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a day of the calendar") from None
    raise ValueError("must be a date written YYYY-MM-DD")


def _iso_date_time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE_TIME.fullmatch(value):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a moment of the calendar") from None
    raise ValueError("must be a date and time written as RFC 3339, such as "
                     "2026-11-30T10:00:00Z")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    raise ValueError("must be a decimal number such as 2.5, as a number or a string")


#: A day, as JSON carries it: ``YYYY-MM-DD`` text (the OpenAPI ``format: date``).
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
#: A moment, as RFC 3339 text (``format: date-time``); fields that need the offset say so.
ZonedDateTime = Annotated[dt.datetime, BeforeValidator(_iso_date_time)]
def _text_pattern(pattern: str, *, minimum: int | None = None) -> Any:
    """``json_schema_extra`` of a decimal type: its text form matches ``pattern`` (and its
    number form is at least ``minimum``)."""

    def extra(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", ()):
            if branch.get("type") == "string":
                branch["pattern"] = pattern
            elif branch.get("type") == "number" and minimum is not None:
                branch.setdefault("minimum", minimum)

    return extra


#: A decimal number (not money: see :data:`Money`), as a JSON number (read exactly,
#: web/limits.py) or its text.
DecimalValue = Annotated[Decimal, BeforeValidator(_decimal), Field(
    json_schema_extra=_text_pattern(f"^{_DECIMAL_TEXT.pattern}$"))]


def merge_patch_model(create: type[BaseModel], fields: tuple[str, ...], name: str,
                      doc: str) -> type[Strict]:
    """The body of a JSON Merge Patch (RFC 7396) of ``fields`` of the ``create`` model.

    Each field keeps its type and limits from ``create``, so a change there (a plain text
    becoming one text per language) carries over, and defaults to None; a field whose type
    refuses null cannot be cleared. The merged document is validated by ``create`` itself.
    """
    spec: dict[str, Any] = {
        f: (create.model_fields[f].annotation,
            FieldInfo.merge_field_infos(create.model_fields[f], default=None))
        for f in fields
    }
    model: type[Strict] = create_model(name, __base__=Strict, __doc__=doc, **spec)
    return model


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
    rules_text: RulesText | None = Field(
        None, description="One text, or one per language: {\"ru\": \"…\", \"en\": \"…\"}")
    terms_text: TermsText | None = Field(
        None, description="One text, or one per language: {\"ru\": \"…\", \"en\": \"…\"}")
    contact: Contact = Field(default_factory=Contact)
    barcode_format: Literal["qr", "pdf417", "aztec", "code128"] = "qr"
    locations: list[Location] = Field(default_factory=list, max_length=10)


#: The largest id the database holds (BIGINT): a larger one names nothing, and the database
#: driver could not even send it.
MAX_ID = 2**63 - 1
#: The id of a row (a program, member, transaction...) in a request body or query.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

#: Decimals a ``Money`` value may have; the currency's own scale is checked when the
#: amount is booked (``rules.to_minor``).
MONEY_DECIMALS = 4
_MONEY = re.compile(rf"[0-9]{{1,12}}(?:\.[0-9]{{1,{MONEY_DECIMALS}}})?")


def _exact_money(value: Any) -> Decimal:
    """The value as sent, or refused: nothing is rounded, read in another script or
    expanded from an exponent (``1e-999999999`` would pass ``gt=0`` and book 0.00)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a decimal number such as 123.45, as a string or a number")
    if isinstance(value, int):
        text = str(value) if 0 <= value < 10**12 else "-"
    else:
        # JSON numbers arrive as Decimal (web/limits.py); a float is spelled as Python reads it.
        text = repr(value) if isinstance(value, float) else str(value)
    if not _MONEY.fullmatch(text):
        raise ValueError(f"must be a decimal number such as 123.45: ASCII digits, at most "
                         f"{MONEY_DECIMALS} decimals, no sign, exponent or spaces")
    return Decimal(text)


#: An amount of money (or a threshold counted in it) in major units, taken exactly: the
#: one type of every such request field. Fields add their own bounds (``gt=0``...).
Money = Annotated[Decimal, BeforeValidator(_exact_money), Field(
    json_schema_extra=_text_pattern(f"^{_MONEY.pattern}$", minimum=0))]


class EarningRule(Strict):
    """``points`` points for every ``per_amount`` of currency spent (10 per 100 RUB)."""

    points: int = Field(10, ge=1, le=1_000_000)
    per_amount: Money = Field(Decimal("100"), gt=0, le=Decimal("1000000000"))


Percent = Annotated[DecimalValue, Field(ge=0, le=100, examples=["5"])]


class Tier(Strict):
    name: str = Field(min_length=1, max_length=60)
    threshold: Money = Field(
        ge=0, description="Points, spend in currency units, or visits (see `tier_basis`)")
    multiplier: DecimalValue = Field(Decimal("1"), gt=0, le=100,
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
    reward: RewardText = Field("a free coffee",
                               description="What the member gets, as the card says it: one "
                                           "text, or one per language")
    per_purchase: int = Field(1, ge=1, le=50, description="Stamps a purchase earns")
    min_amount: Money | None = Field(None, gt=0, description="Smallest purchase that earns")
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
    category_rate_overrides_tier: bool = Field(
        False, description="A category's share applies even where the member's tier has a "
                           "higher one (false: a line earns the better of the tier's and the "
                           "category's share)")


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
    action_period_days: int | None = Field(
        None, ge=1, le=3650,
        description="An action reported without a `reference` earns at most once per member "
                    "in this many days (null: once ever); with a `reference`, once per "
                    "reference")

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
    marketing_consent_text: Localized | None = Field(
        None, description="The separate, optional consent to marketing messages (campaigns) "
                          "per language; null: the service's own text")
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
    point_value: Money | None = Field(
        None, ge=0, le=Decimal("1000000"),
        description="What one unit of the balance (a point; a reward ready in a stamp "
                    "program) is worth to the merchant, in currency units: the points "
                    "liability is the balance outstanding times this (null: not valued; a "
                    "cashback balance is money already)")


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

    @model_validator(mode="after")
    def _texts_in_languages(self) -> ProgramCreate:
        """Texts given per language name only the program's languages, and are kept in
        the program's order of languages."""
        holders: list[tuple[Any, str, str]] = [(self.design, "rules_text", "design.rules_text"),
                                               (self.design, "terms_text", "design.terms_text")]
        if self.stamps is not None:
            holders.append((self.stamps, "reward", "stamps.reward"))
        for holder, name, field in holders:
            value = getattr(holder, name)
            problem = text_languages_error(value, self.languages)
            if problem is not None:
                raise ValueError(f"{field}: {problem}")
            if isinstance(value, dict):
                setattr(holder, name, {lang: value[lang] for lang in self.languages
                                       if lang in value})
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
    point_value: Money | None = Field(None, ge=0, le=Decimal("1000000"))
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
    point_value: Money | None = None
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
    phone: str = Field(
        min_length=3, max_length=40, examples=["+7 912 345-67-89"],
        description="A phone number valid in its country (libphonenumber's rules), stored in "
                    "E.164; written without a country code, it is read in the service's "
                    "`WALLET_DEFAULT_REGION`. A text that is not a valid number is 400 "
                    "naming `phone`")
    email: str | None = Field(None, max_length=254)
    birthday: IsoDate | None = None
    external_id: str | None = Field(None, min_length=1, max_length=100)
    consent_text: str | None = Field(
        None, max_length=5000, description="The exact consent text the customer accepted."
    )
    answers: dict[str, Annotated[str, Field(max_length=500)] | bool] = Field(
        default_factory=dict, description="Answers to the program's questions, by key")
    referral_code: str | None = Field(
        None, min_length=4, max_length=16,
        description="The referral code of the member who invited this one")
    marketing_consent: bool = Field(
        False, description="The customer agreed to marketing messages (campaigns); separate "
                           "from the consent to processing and never required")
    marketing_consent_text: str | None = Field(
        None, min_length=1, max_length=5000,
        description="The exact marketing consent text the customer accepted (default: the "
                    "program's, in its first language)")

    @model_validator(mode="after")
    def _marketing_text(self) -> MemberCreate:
        if self.marketing_consent_text is not None and not self.marketing_consent:
            raise ValueError("marketing_consent_text: only with marketing_consent true")
        return self

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


MEMBER_FIELDS = ("name", "phone", "email", "birthday", "external_id")

MemberUpdate = merge_patch_model(
    MemberCreate, MEMBER_FIELDS, "MemberUpdate",
    "A JSON Merge Patch (RFC 7396) of a member: fields left out stay as they are, null "
    "clears one; `name` and `phone` cannot be cleared. Checked as enrollment checks them.")


class TierAssign(Strict):
    """A tier the merchant gives a member (a paid or VIP membership)."""

    tier: str | None = Field(min_length=1, max_length=60, examples=["VIP"],
                             description="A tier of the program; null ends an assignment")
    until: IsoDate | None = Field(
        None, examples=["2027-01-31"],
        description="The last day the tier holds against the daily review (null: until "
                    "ended); today or later")


class ManualTierOut(BaseModel):
    tier: str
    until: dt.date | None = Field(description="The last day it holds; null: until ended")


class Consent(BaseModel):
    text: str
    accepted_at: dt.datetime
    withdrawn_at: dt.datetime | None = Field(
        None, description="Withdrawn: processing stopped and the member's data was erased")


class MarketingConsentOut(BaseModel):
    """The consent to marketing messages: campaigns reach the member only while it is given."""

    given: bool
    text: str | None = Field(description="The exact text accepted (kept after a withdrawal)")
    accepted_at: dt.datetime | None
    withdrawn_at: dt.datetime | None


class MarketingConsentChange(Strict):
    consent: bool = Field(description="true: the customer agrees; false: withdraws")
    text: str | None = Field(
        None, min_length=1, max_length=5000,
        description="The exact text the customer accepted (default: the program's, in its "
                    "first language); only with consent true")

    @model_validator(mode="after")
    def _text(self) -> MarketingConsentChange:
        if self.text is not None and not self.consent:
            raise ValueError("text: only with consent true")
        return self


class TierProgressOut(BaseModel):
    """The way to the next tier, as the pass and the card page show it."""

    next_tier: str | None = Field(description="Null at the top tier")
    basis: Literal["lifetime_points", "lifetime_spend", "visits"]
    left: Decimal = Field(description="Points, visits or money (major units) still needed")
    percent: int = Field(ge=0, le=100, description="From the current tier to the next")


class MoneyOut(BaseModel):
    amount: Decimal = Field(description="In major units (roubles, dollars)")
    currency: str


class NextDiscountOut(BaseModel):
    tier: str
    percent: Decimal
    basis: Literal["lifetime_points", "lifetime_spend", "visits"]
    left: Decimal = Field(description="Points, visits or money (major units) still needed")
    spend_left: Decimal | None = Field(
        description="The money (major units) still to spend, when tiers count spend")


class MemberOut(BaseModel):
    id: int
    program_id: int
    name: str
    phone: str | None = Field(description="Null once the member is erased")
    email: str | None
    birthday: dt.date | None
    external_id: str | None
    consent: Consent | None
    marketing_consent: MarketingConsentOut
    answers: dict[str, str | bool]
    source: str
    erased_at: dt.datetime | None = Field(
        description="Erased: personal data removed, the card void; the record stays anonymous")
    serial_number: str
    card_number: str
    status: str
    balance: int = Field(description="Points; rewards ready to claim in a stamp program; "
                                     "minor units (kopecks, cents) in a cashback program")
    tier: str | None
    manual_tier: ManualTierOut | None = Field(
        description="A tier the merchant assigned; the daily review does not lower the card "
                    "below it while it holds")
    lifetime_points: int
    lifetime_spend: Decimal
    stamps: int = Field(description="Stamps towards the next reward (stamp programs)")
    stamp_debt: int = Field(
        description="Stamps the card owes (stamp programs): a refund took back stamps of "
                    "a reward already claimed; the next stamps pay them off first")
    visits: int
    referral_code: str | None = Field(description="The member's code for inviting friends")
    message: LocalizedText | None = Field(
        description="The latest message on the back of the card: one text, or one per "
                    "language")
    reminder: str | None = Field(
        description="Points about to expire, as the back of the card says it; gone "
                    "once those points are spent or expired")
    version: int
    tier_progress: TierProgressOut | None = Field(
        description="Null for a program without tiers")
    kind: Literal["points", "stamps", "cashback", "discount"] = Field(
        description="The program's kind, which says what the card holds")
    stamps_goal: int | None = Field(
        description="Stamp programs: stamps that make a reward (the card shows "
                    "`stamps` / `stamps_goal`)")
    rewards_ready: int | None = Field(
        description="Stamp programs: rewards ready to claim (the same as `balance`)")
    reward: LocalizedText | None = Field(description="Stamp programs: what a full card gives")
    cashback: MoneyOut | None = Field(
        description="Cashback programs: the balance as money in major units (`balance` is "
                    "in minor units)")
    cashback_percent: Decimal | None = Field(
        description="Cashback programs: the share of a purchase the card gets back now")
    discount_percent: Decimal | None = Field(
        description="The discount the card gives now (discount programs; other programs "
                    "whose tiers give one)")
    next_discount: NextDiscountOut | None = Field(
        description="The discount of the next tier and what is still needed for it; null "
                    "at the top or without discount tiers")
    created_at: dt.datetime
    apple_pass_url: str | None
    google_save_url: str | None = Field(
        description="\"Add to Google Wallet\": the service's own link, which adds the card "
                    "to Google Wallet when tapped and goes on to Google; null while Google "
                    "Wallet is off")
    card_url: str | None


class MemberList(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None = None


# --- transactions -----------------------------------------------------------------------


class ReceiptLine(Strict):
    sku: str | None = Field(None, min_length=1, max_length=100)
    category: str | None = Field(None, min_length=1, max_length=60)
    amount: Money = Field(gt=0, le=Decimal("1000000000"), description="The line's total")


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
    amount: Money | None = Field(None, gt=0, le=Decimal("1000000000"), examples=["123.45"])
    lines: list[ReceiptLine] | None = Field(None, min_length=1, max_length=500)
    purchase_amount: Money | None = Field(None, gt=0, le=Decimal("1000000000"))
    original_id: Id | None = Field(None, description="refund: the purchase's id")
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


#: The most operations one ``POST /transactions/batch`` takes.
MAX_BATCH_ITEMS = 500


class TransactionBatchItem(TransactionCreate):
    """One operation of a batch: the body of ``POST /members/{id}/transactions`` with the
    ``member_id`` it is for and its own ``idempotency_key``."""

    member_id: Id
    idempotency_key: str = Field(
        min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$",
        description="The operation's key, as the `Idempotency-Key` header of the single "
                    "route: the same key for the same member and body replays there and here")


class TransactionBatch(BaseModel):
    """Up to 500 operations on any members of the merchant. The envelope is checked whole
    (an object with ``items``, a list of 1 to 500 objects); each item is checked on its own
    and answered on its own."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # The document says what the envelope checks: a list of 1 to 500 JSON objects. What is
    # inside each object is checked item by item (TransactionBatchItem), so a bad item is
    # that item's 422 in a 200 answer, never the whole request's.
    items: Annotated[list[Any], WithJsonSchema({
        "type": "array", "minItems": 1, "maxItems": MAX_BATCH_ITEMS,
        "items": {"type": "object", "description": (
            "One operation: `member_id`, `idempotency_key` and the body of "
            "`POST /members/{id}/transactions` (`type`, `points`, `stamps`, `amount`, "
            "`lines`, `purchase_amount`, `original_id`, `reason`); checked on its own, see "
            "the `TransactionBatchItem` schema")},
    })] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)

    @field_validator("items", mode="wrap")
    @classmethod
    def _envelope_only(cls, value: Any, _handler: Any) -> list[Any]:
        # Items are validated one by one by the view, so one bad item fails alone.
        if not isinstance(value, list):
            raise ValueError("must be a list of operations")
        if not 1 <= len(value) <= MAX_BATCH_ITEMS:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH_ITEMS} operations, not "
                             f"{len(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise ValueError(f"each operation must be a JSON object; item {index} is not")
        return value


#: Request parts checked on their own and documented beside the operations.
DOCUMENTED_ALONE = (TransactionBatchItem,)


class TransactionBatchResult(BaseModel):
    """One item's answer: ``status`` as the single route would answer it, with its
    ``result`` (201) or its ``problem`` document (any error); ``replayed`` when its key
    answered with the first result."""

    status: int
    replayed: bool = False
    result: TransactionResult | None = None
    problem: Problem | None = None


class TransactionBatchResults(BaseModel):
    """The items' answers, in the order of the request's items."""

    items: list[TransactionBatchResult]


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
        description="Identifies the action (the review's id); the same one earns once. "
                    "Without it, the action earns once per `bonuses.action_period_days` "
                    "(once ever by default)")


# --- rewards and coupons ----------------------------------------------------------------


class RewardCreate(Strict):
    name: Name200 = Field(description="One text, or one per language: {\"ru\": \"…\", "
                                      "\"en\": \"…\"}")
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
    name: LocalizedText = Field(description="As given: one text, or one per language")
    description: str | None
    cost_points: int | None
    cost_stamps: int | None
    active: bool


class RewardList(BaseModel):
    items: list[RewardOut]


RewardUpdate = merge_patch_model(
    RewardCreate, ("name", "description", "cost_points", "cost_stamps"), "RewardUpdate",
    "A JSON Merge Patch (RFC 7396) of a catalog reward, checked as a new reward is: it keeps "
    "exactly one cost, so switching from points to stamps clears one and sets the other.")


class RewardQuery(Strict):
    include_retired: bool = Field(False, description="List retired rewards too")


class Segment(Strict):
    """Members to reach; every filter given must match (none given: all members)."""

    tier: str | None = Field(None, min_length=1, max_length=60)
    inactive_days: int | None = Field(None, ge=1, le=3650,
                                      description="No purchase in this many days")
    birthday_month: int | None = Field(None, ge=1, le=12)
    member_ids: list[Id] | None = Field(None, min_length=1, max_length=1000)


class CouponCreate(Strict):
    title: TitleText = Field(examples=["−20% on pastries"],
                             description="One text, or one per language: {\"ru\": \"…\", "
                                         "\"en\": \"…\"}")
    description: str | None = Field(None, max_length=1000)
    segment: Segment = Field(default_factory=Segment)
    valid_from: ZonedDateTime | None = None
    valid_until: ZonedDateTime | None = None
    evergreen: bool = Field(
        False, description="Also give the coupon to members who enter the segment later (the "
                           "daily job, once per member, until `valid_until`); false: only "
                           "the members in the segment now")

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
    title: LocalizedText = Field(description="As given: one text, or one per language")
    description: str | None
    segment: Segment
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    granted: int = Field(description="Cards the coupon was given to")
    used: int
    evergreen: bool = Field(description="Members entering the segment later get it too")
    retired_at: dt.datetime | None = Field(
        description="Retired: no card shows it and it cannot be used")


CouponUpdate = merge_patch_model(
    CouponCreate, ("title", "description", "valid_until"), "CouponUpdate",
    "A JSON Merge Patch (RFC 7396) of a coupon, checked as a new coupon is; every card that "
    "shows it is updated.")


class MemberCoupon(BaseModel):
    grant_id: int
    coupon_id: int
    title: LocalizedText = Field(description="As given: one text, or one per language")
    description: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    used_at: dt.datetime | None
    retired_at: dt.datetime | None


class MemberCouponList(BaseModel):
    items: list[MemberCoupon]


# --- campaigns and automations ----------------------------------------------------------


class CampaignCreate(Strict):
    text: MessageText = Field(
        description="Shown on the back of the card; the phone announces it. One text, or one "
                    "per language: {\"ru\": \"…\", \"en\": \"…\"}")
    segment: Segment = Field(default_factory=Segment)
    holdout_percent: int = Field(
        0, ge=0, le=50, examples=[10],
        description="Per cent of the members the campaign could reach (the segment's, with "
                    "marketing consent) to hold out: drawn at random, recorded, not "
                    "messaged, to measure the campaign's effect against (rounded down)")


class CampaignOut(BaseModel):
    id: int
    program_id: int
    text: LocalizedText = Field(description="As given: one text, or one per language")
    segment: Segment
    reached: int = Field(description="Cards that show the message")
    holdout_percent: int = Field(description="The holdout share asked for")
    held_out: int = Field(description="Members held out: not messaged")
    holdout_seed: str | None = Field(
        description="The random seed the holdout was drawn from: a member's draw is the "
                    "first 16 hex digits of SHA-256 of `<seed>:<card id>`, and the lowest "
                    "draws are held out; null without a holdout")
    created_at: dt.datetime


class CampaignList(BaseModel):
    items: list[CampaignOut]


class CampaignRecipientOut(BaseModel):
    member_id: int
    group: Literal["reached", "holdout"]
    draw: str = Field(description="The member's draw (empty without a holdout)")


class CampaignRecipientList(BaseModel):
    items: list[CampaignRecipientOut]
    next_cursor: str | None


class GroupEffectOut(BaseModel):
    members: int = Field(description="Members in the group")
    purchases: int = Field(description="Purchases in the window")
    purchasing_members: int = Field(description="Members with at least one purchase")
    revenue: MoneyOut = Field(description="The amounts of those purchases")
    purchases_per_member: Decimal | None = Field(
        description="purchases ÷ members, 4 decimals; null for an empty group")
    purchasing_rate: Decimal | None = Field(
        description="purchasing_members ÷ members, 4 decimals; null for an empty group")
    revenue_per_member: Decimal | None = Field(
        description="revenue ÷ members (major units), 4 decimals; null for an empty group")


class EffectDifferenceOut(BaseModel):
    """Reached minus holdout; null when a group is empty."""

    purchases_per_member: Decimal | None
    purchasing_rate: Decimal | None
    revenue_per_member: Decimal | None


class CampaignEffectOut(BaseModel):
    campaign_id: int
    window_start: dt.datetime = Field(description="When the campaign was sent")
    window_end: dt.datetime = Field(description="7 days later (excluded)")
    complete: bool = Field(description="Whether the window has ended")
    reached: GroupEffectOut
    holdout: GroupEffectOut
    difference: EffectDifferenceOut


class SurveySettingsIn(Strict):
    enabled: bool = Field(description="Whether the program asks its members (the link on "
                                      "the back of the card and on the card page)")
    period_days: int = Field(90, ge=1, le=3650,
                             description="One answer per member per this many days, from "
                                         "the answer: answering again within it changes "
                                         "the answer")
    bonus: int = Field(0, ge=0, le=1_000_000,
                       description="Action bonus for an answer, once per period (points, "
                                   "stamps in a stamp program, minor units of cashback); "
                                   "0: none")


class SurveySettingsOut(BaseModel):
    program_id: int
    enabled: bool
    period_days: int
    bonus: int


class NpsMonthOut(BaseModel):
    month: str = Field(description="YYYY-MM in the merchant's time zone, or the range "
                                   "`YYYY-MM..YYYY-MM` for the total")
    answers: int
    promoters: int = Field(description="Scores 9–10")
    passives: int = Field(description="Scores 7–8")
    detractors: int = Field(description="Scores 0–6")
    nps: Decimal | None = Field(description="% promoters − % detractors, −100 to 100, "
                                            "2 decimals; null without answers")


class NpsReport(BaseModel):
    months: list[NpsMonthOut]
    total: NpsMonthOut


class NpsAnswerOut(BaseModel):
    id: int
    program_id: int
    member_id: int
    score: int
    category: Literal["promoter", "passive", "detractor"]
    comment: str | None
    language: str
    answered_at: dt.datetime
    updated_at: dt.datetime = Field(description="Later than answered_at when changed")


class NpsAnswerList(BaseModel):
    items: list[NpsAnswerOut]
    next_cursor: str | None


class DailyRun(Strict):
    day: IsoDate | None = Field(None, description="The day to run for (default: today in the "
                                                  "merchant's time zone): today or one of the "
                                                  "7 days before, never a day to come (422)")


class DailyReport(BaseModel):
    day: dt.date
    expired: int = Field(description="Lots expired")
    reminded: int
    birthdays: int
    winbacks: int
    downgrades: int
    coupons_refreshed: int = Field(0, description="Cards whose coupon started or ended")
    coupons_granted: int = Field(
        0, description="Evergreen coupons given to members who entered their segment")


# --- the merchant and its store locations ---------------------------------------------


def _time_zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Moscow or "
                         "Asia/Vladivostok")
    return value


TimeZone = Annotated[str, Field(max_length=64, examples=["Europe/Moscow"]),
                     AfterValidator(_time_zone)]


class MerchantOut(BaseModel):
    id: int
    name: str
    time_zone: str = Field(description="IANA time zone. Birthdays, points expiry dates, "
                                       "win-back windows and the daily job count in its "
                                       "local date")


class MerchantUpdate(Strict):
    """A JSON Merge Patch (RFC 7396) of the merchant's settings: `null` puts `time_zone`
    back to the service's default (`WALLET_DEFAULT_TIME_ZONE`). The name is given when the
    merchant is created."""

    time_zone: TimeZone | None = None


Latitude = Annotated[float, Field(ge=-90, le=90, strict=True, examples=[55.7558])]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True, examples=[37.6173])]


class LocationCreate(Strict):
    """A store. Every card of the merchant's programs shows its stores (with the program's
    own `design.locations` first, 10 in all), so phones bring the card up near them."""

    name: Text200
    address: str = Field(min_length=1, max_length=500)
    latitude: Latitude
    longitude: Longitude
    time_zone: TimeZone | None = Field(None, description="null: the merchant's time zone")
    relevant_text: str | None = Field(
        None, max_length=200, description="What the Lock Screen says near the store (null: "
                                          "the card's own words, in the card's language)")


LocationUpdate = merge_patch_model(
    LocationCreate, ("name", "address", "latitude", "longitude", "time_zone", "relevant_text"),
    "LocationUpdate",
    "A JSON Merge Patch (RFC 7396) of a store location, checked as a new one is; `null` "
    "clears `time_zone` (back to the merchant's) and `relevant_text`.")


class LocationOut(BaseModel):
    id: int = Field(description="Stable: it keeps naming this store, also once deleted")
    name: str
    address: str
    latitude: float
    longitude: float
    time_zone: str | None = Field(description="As set; null: the merchant's time zone")
    effective_time_zone: str = Field(description="The store's time zone or the merchant's")
    relevant_text: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LocationList(BaseModel):
    items: list[LocationOut]


# --- personal data and wallet events ------------------------------------------------------


class WalletEventOut(BaseModel):
    id: int
    member_id: int
    wallet: Literal["apple", "google"]
    event: Literal["installed", "removed"] = Field(
        description="Apple: the card's first device registered, or its last one left; "
                    "Google: the customer saved or deleted the card")
    cause: Literal["registered", "unregistered", "token_invalid", "saved", "deleted"] = Field(
        description="What told the service: Apple's pass web service, an APNs answer that "
                    "the device's token is dead, or Google's callback")
    occurred_at: dt.datetime


class WalletEventList(BaseModel):
    items: list[WalletEventOut]
    next_cursor: str | None = None


class ExportedMember(BaseModel):
    id: int
    program_id: int
    name: str
    phone: str | None
    email: str | None
    birthday: dt.date | None
    external_id: str | None
    answers: dict[str, str | bool]
    source: str
    created_at: dt.datetime
    erased_at: dt.datetime | None


class ProcessingConsentOut(BaseModel):
    text: str | None = Field(description="The exact text accepted; null if none was recorded")
    accepted_at: dt.datetime | None
    withdrawn_at: dt.datetime | None


class ExportedConsents(BaseModel):
    data_processing: ProcessingConsentOut
    marketing: MarketingConsentOut


class ExportedCard(BaseModel):
    serial_number: str
    status: str
    balance: int
    tier: str | None
    lifetime_points: int
    lifetime_spend: Decimal
    stamps: int
    visits: int
    last_visit_at: dt.datetime | None
    referral_code: str | None
    message: LocalizedText | None
    version: int
    created_at: dt.datetime


class MemberExport(BaseModel):
    """Everything the service holds about one member (the right of access, 152-FZ art. 14,
    GDPR art. 15 and 20)."""

    exported_at: dt.datetime
    member: ExportedMember
    consents: ExportedConsents
    card: ExportedCard
    transactions: list[TransactionOut] = Field(description="The whole ledger, oldest first")
    coupons: list[MemberCoupon] = Field(description="Oldest first")
    registrations: int = Field(description="Apple devices registered for the card's updates")
    wallet_events: list[WalletEventOut]


# --- api keys ---------------------------------------------------------------------------


class ApiKeyCreate(Strict):
    name: str = Field("default", min_length=1, max_length=100)
    scope: Scope = Field(DEFAULT_SCOPE, strict=False, description=(
        "What the key may do: `admin` everything, `till` read, enroll and edit members and "
        "post their transactions, `read` only read. Default `till`; a key can only create "
        "keys whose scope its own covers (403 naming `scope`)"))


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scope: str = Field(description="`admin`, `till` or `read` (README, Permissions)")
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
    permission: str | None = Field(None, description="403: the permission the API key's scope "
                                                     "lacks")


# --- webhooks ---------------------------------------------------------------------------

#: The events a webhook endpoint can subscribe to (docs/webhooks.md shows each payload).
WEBHOOK_EVENTS = ("member.created", "member.updated", "member.closed", "transaction.created",
                  "tier.changed", "reward.redeemed", "coupon.redeemed", "card.installed",
                  "card.removed", "campaign.sent")
WebhookEventType = Literal["member.created", "member.updated", "member.closed",
                           "transaction.created", "tier.changed", "reward.redeemed",
                           "coupon.redeemed", "card.installed", "card.removed",
                           "campaign.sent"]


def _webhook_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("must be an absolute http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.fragment or port == 0 or not value.isascii() or any(c.isspace() for c in value):
        raise ValueError("must be a plain ASCII URL without spaces or a #fragment")
    return value


WebhookUrl = Annotated[str, Field(min_length=1, max_length=2000,
                                  examples=["https://crm.example.com/hooks/wallet"]),
                       AfterValidator(_webhook_url)]


class WebhookCreate(Strict):
    """A receiver of signed webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    `webhook-signature`; docs/webhooks.md)."""

    url: WebhookUrl = Field(description=(
        "Where events are POSTed: http or https. Addresses in private, loopback or "
        "link-local networks are refused unless the operator allows them "
        "(`WALLET_WEBHOOKS_ALLOW_PRIVATE`)"))
    events: list[WebhookEventType] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS),
                                           description="The event types to send")
    description: str | None = Field(None, max_length=200)
    enabled: bool = True


WebhookUpdate = merge_patch_model(
    WebhookCreate, ("url", "events", "description", "enabled"), "WebhookUpdate",
    "A JSON Merge Patch (RFC 7396) of a webhook endpoint; `null` clears `description`. "
    "`enabled: true` turns a disabled endpoint back on and clears its `disabled_reason`.")


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description=(
        "Why the service turned the endpoint off (a long run of failed deliveries), or null"))
    disabled_at: dt.datetime | None
    failing_since: dt.datetime | None = Field(description=(
        "When the current run of failed deliveries began; null after a success"))
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description=(
        "The signing secret (`whsec_…`), shown once; verify `webhook-signature` with it"))


class WebhookList(BaseModel):
    items: list[WebhookOut]


class WebhookDeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    message_id: str = Field(description="The `webhook-id` header: the same on every try and "
                                        "redelivery of the event")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    response_status: int | None = Field(description="The HTTP status of the last try")
    latency_ms: int | None = Field(description="How long the last try took")
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None = None


# --- member import (services.imports) ------------------------------------------------------


class ImportRejectedOut(BaseModel):
    row: int = Field(description="The row's number in the file; the header is row 1")
    field: str = Field(description="The field whose value was refused")
    reason: str


class ImportOut(BaseModel):
    program_id: int
    dry_run: bool = Field(description="Nothing was written; the counts say what would be")
    encoding: Literal["utf-8", "utf-8-sig", "windows-1251"] = Field(
        description="How the file was read: UTF-8, UTF-8 with a byte-order mark, or "
                    "Windows-1251")
    delimiter: str = Field(description="The delimiter found in the header line")
    columns: dict[str, str] = Field(description="The file's columns used, and their fields")
    ignored: list[str] = Field(description="The file's columns not used")
    rows: int = Field(description="Data rows in the file (empty rows are not counted)")
    imported: int = Field(description="Members added, each with a card")
    existing: int = Field(description="Rows whose phone was already enrolled in the program, "
                                      "left as they were (so a re-run adds nothing)")
    points: int = Field(description="Balance imported, in balance units")
    stamps: int = Field(description="Stamps imported")
    rejected: list[ImportRejectedOut] = Field(
        description="Rows not imported, in file order, each with the field and the reason")


# --- analytics (services.analytics; docs/analytics.md) -------------------------------------

AnalyticsFormat = Literal["json", "csv"]


_PROGRAM_FIELD = ("One program (default: all of the merchant's, which must count money in "
                  "one currency)")
_START_FIELD = "First local day of the period (default: 29 days before `end`)"
_END_FIELD = "Last local day of the period (default: today, or 29 days after `start`)"
_FORMAT_FIELD = "`csv` for a CSV file of the same numbers (or send `Accept: text/csv`)"


class AnalyticsProgramQuery(Strict):
    """A period of the merchant's local days and a program (numbers of members, not stores)."""

    program_id: Id | None = Field(None, description=_PROGRAM_FIELD)
    start: IsoDate | None = Field(None, description=_START_FIELD)
    end: IsoDate | None = Field(None, description=_END_FIELD)
    format: AnalyticsFormat = Field("json", description=_FORMAT_FIELD)


class AnalyticsQuery(AnalyticsProgramQuery):
    """A period of the merchant's local days, a program and a store to look at."""

    location_id: Id | None = Field(
        None, description="One store: purchases, revenue, points and redemptions posted "
                          "there; numbers that belong to members, not stores, are null")


class AnalyticsPeriod(BaseModel):
    program_ids: list[int]
    location_id: int | None
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    time_zone: str = Field(description="The merchant's time zone the days are counted in")
    currency: str | None = Field(description="The currency of money figures (minor units)")
    refreshed_at: dt.datetime | None = Field(
        description="When the worker last brought the numbers up to date (null: not yet)")


class AnalyticsMetric(BaseModel):
    key: str
    unit: Literal["count", "minor", "points", "ratio", "per_member"]
    value: int | float | None = Field(description="This period (null: not defined here)")
    previous: int | float | None = Field(description="The period of the same length before")
    change: int | float | None
    change_percent: float | None


class AnalyticsSummary(BaseModel):
    period: AnalyticsPeriod
    metrics: list[AnalyticsMetric]


class AnalyticsDayOut(BaseModel):
    day: dt.date
    new_members: int | None
    members_total: int | None
    purchases: int
    paid_purchases: int
    revenue_minor: int
    apple_installs: int | None
    apple_removals: int | None
    google_installs: int | None
    google_removals: int | None
    active_30: int | None
    active_90: int | None


class AnalyticsDaily(BaseModel):
    period: AnalyticsPeriod
    days: list[AnalyticsDayOut]


class AnalyticsCohortOut(BaseModel):
    month: dt.date = Field(description="First day of the enrollment month")
    members: int
    retention: list[float | None] = Field(
        description="Share of the cohort with a purchase in its month 0 (the month of "
                    "joining), 1, 2, … through the current month")
    ltv_minor: dict[str, int | None] = Field(
        description="Purchases less refunds per member, cumulative through month 1, 3, 6 "
                    "and 12 (month 1 is the month of joining); null until that month is over")


class AnalyticsCohorts(BaseModel):
    period: AnalyticsPeriod
    cohorts: list[AnalyticsCohortOut]


class AnalyticsProgramPoints(BaseModel):
    program_id: int
    name: str
    kind: str
    currency: str
    point_value_minor: float | None = Field(
        description="One balance unit's value in minor units (the program's `point_value`)")
    outstanding: int = Field(description="Balance units outstanding at the period's end")
    liability_minor: int | None
    issued: int
    redeemed: int
    expired: int
    redemption_rate: float | None
    breakage: float | None = Field(description="Expired ÷ issued in the period")
    breakage_to_date: float | None = Field(description="Expired ÷ issued since the start")


class AnalyticsPoints(BaseModel):
    period: AnalyticsPeriod
    programs: list[AnalyticsProgramPoints]


class AnalyticsItem(BaseModel):
    kind: Literal["reward", "coupon"]
    id: int
    name: str | None
    count: int


class AnalyticsPopularity(BaseModel):
    period: AnalyticsPeriod
    items: list[AnalyticsItem]


class AnalyticsTill(BaseModel):
    id: int | None = Field(description="The store's or staff user's id (null: entries that "
                                       "name none, such as the API's)")
    name: str | None
    purchases: int
    paid_purchases: int
    revenue_minor: int
    average_check_minor: int | None
    points_issued: int
    rewards_redeemed: int
    coupons_redeemed: int
    manual_entries: int


class AnalyticsTills(BaseModel):
    period: AnalyticsPeriod
    items: list[AnalyticsTill]


class AnalyticsTierCount(BaseModel):
    tier: str | None
    members: int


class AnalyticsTierMove(BaseModel):
    from_tier: str | None
    to_tier: str | None
    members: int


class AnalyticsTiers(BaseModel):
    period: AnalyticsPeriod
    as_of: dt.date | None = Field(description="The day of the distribution's snapshot")
    distribution: list[AnalyticsTierCount]
    movements: list[AnalyticsTierMove]
