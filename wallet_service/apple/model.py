"""Inputs to pass building: frozen dataclasses the service fills from its own models.

- :class:`PassTemplate`: a built-in design (base ``pass.json``, images, label strings), loaded
  once per process by ``wallet_service.apple.assets.load_template``.
- :class:`Design`: a loyalty program's overrides (texts, colours, images, stores, barcode).
- :class:`CardContent`: one member's values (serial, balance, tier, ...).

Every value is checked when the object is made, so an invalid object cannot exist; problems
raise :class:`~wallet_service.errors.InvalidInput` naming the field (or
:class:`~wallet_service.errors.ConfigurationError` for a broken built-in template).
Section numbers (§) refer to the Apple Wallet spec the package implements.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..errors import InvalidInput
from ._frozen import FrozenMap
from ._frozen import freeze

#: Barcode formats a program may choose (§2.3), mapped to Apple's names.
BARCODE_FORMATS: Mapping[str, str] = FrozenMap(
    {
        "qr": "PKBarcodeFormatQR",
        "pdf417": "PKBarcodeFormatPDF417",
        "aztec": "PKBarcodeFormatAztec",
        "code128": "PKBarcodeFormatCode128",
    }
)

#: Image kinds a store card supports (§1.4).
IMAGE_KINDS: tuple[str, ...] = ("icon", "logo", "strip")

#: Resolution suffixes of every image file (§1.4: provide @1x, @2x and @3x).
SCALES: tuple[tuple[int, str], ...] = ((1, ""), (2, "@2x"), (3, "@3x"))

#: File names an image override may use, e.g. ``logo@2x.png``.
IMAGE_FILENAMES: frozenset[str] = frozenset(
    f"{kind}{suffix}.png" for kind in IMAGE_KINDS for _, suffix in SCALES
)

#: The most relevant locations a pass may carry (§2.7).
MAX_LOCATIONS = 10

#: Where a front field of a template takes its value from (see ``content.py``).
FIELD_SOURCES: frozenset[str] = frozenset(
    {"points", "bonus", "tier", "member", "stamps", "stamps_left", "rewards", "cashback",
     "discount", "card", "expires"}
)

#: Program kinds a card may name (``CardContent.kind``): what its balance counts.
CARD_KINDS: frozenset[str] = frozenset({"points", "stamps", "cashback", "discount"})

#: Keys of the back fields the builder adds; front fields may not reuse them (§2.5).
BACK_FIELD_KEYS: tuple[str, ...] = (
    "rules",
    "terms",
    "card_page",
    "phone",
    "website",
    "email",
    "expires_on",
)

#: Label strings every template's ``pass.strings`` must define, in every language.
REQUIRED_STRINGS: frozenset[str] = frozenset(
    {
        "rules.label",
        "terms.label",
        "card_page.label",
        "phone.label",
        "website.label",
        "email.label",
        "expires.label",
        "location.relevant",
    }
)

_LAYOUT_AREAS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields")
_FIELD_SPEC_KEYS = frozenset({"key", "label", "changeMessage", "source", "textAlignment"})
_TEXT_ALIGNMENTS = frozenset(
    {
        "PKTextAlignmentLeft",
        "PKTextAlignmentCenter",
        "PKTextAlignmentRight",
        "PKTextAlignmentNatural",
    }
)
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_RGB_COLOUR = re.compile(r"^rgb\((\d{1,3}), (\d{1,3}), (\d{1,3})\)$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PASS_TYPE_ID = re.compile(r"^pass\.[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_TEAM_ID = re.compile(r"^[A-Z0-9]{10}$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- template


@dataclass(frozen=True)
class TemplateFile:
    """A file shipped with a template, with its SHA-1 (the manifest digest, §1.2)."""

    data: bytes
    sha1: str = ""

    def __post_init__(self) -> None:
        if not self.sha1:
            object.__setattr__(self, "sha1", hashlib.sha1(self.data).hexdigest())


@dataclass(frozen=True)
class PassTemplate:
    """A built-in store-card design.

    ``pass_json`` is the base ``pass.json`` fragment: ``formatVersion``, default colours and a
    ``storeCard`` layout whose fields name a ``key``, a ``label`` string key, an optional
    ``changeMessage`` string key and an optional ``source`` (defaults to ``key``; one of
    :data:`FIELD_SOURCES`). ``images`` maps file names (``icon.png``, ``strip@3x.png``, ...)
    to files. ``strings`` maps a language (``"en"``) to its label strings (§1.5).

    :raises ConfigurationError: the template breaks a rule of §2.5 or §1.5.
    """

    name: str
    pass_json: Mapping[str, Any]
    images: Mapping[str, TemplateFile]
    strings: Mapping[str, Mapping[str, str]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pass_json", freeze(self.pass_json))
        object.__setattr__(self, "images", FrozenMap(self.images))
        object.__setattr__(
            self, "strings", FrozenMap({k: FrozenMap(v) for k, v in self.strings.items()})
        )
        _check_template(self)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the template has strings for, in file order."""
        return tuple(self.strings)


def _check_template(template: PassTemplate) -> None:
    where = f"template {template.name!r}"
    base = template.pass_json
    if base.get("formatVersion") != 1:
        raise ConfigurationError(f"{where}: formatVersion must be the number 1 (§2.1)")
    layout = base.get("storeCard")
    if not isinstance(layout, Mapping):
        raise ConfigurationError(f"{where}: needs a storeCard layout (§2.1)")
    for colour_key in ("backgroundColor", "foregroundColor", "labelColor"):
        if colour_key in base and not is_rgb_colour(base[colour_key]):
            raise ConfigurationError(f"{where}: {colour_key} must be rgb(r, g, b) (§2.4)")
    if "icon.png" not in template.images or "icon@2x.png" not in template.images:
        raise ConfigurationError(f"{where}: icon.png and icon@2x.png are required (§1.4)")
    unknown_files = set(template.images) - IMAGE_FILENAMES
    if unknown_files:
        raise ConfigurationError(f"{where}: unexpected image files {sorted(unknown_files)}")
    if not template.strings:
        raise ConfigurationError(f"{where}: needs at least one .lproj/pass.strings (§1.5)")
    key_sets = {lang: frozenset(s) for lang, s in template.strings.items()}
    first = next(iter(key_sets.values()))
    for lang, keys in key_sets.items():
        if keys != first:
            raise ConfigurationError(
                f"{where}: {lang}.lproj/pass.strings has different keys "
                f"{sorted(keys ^ first)} (every pass.strings needs the same keys, §1.5)"
            )
        if not lang or not _LANGUAGE.match(lang):
            raise ConfigurationError(f"{where}: bad language folder {lang!r}")
    missing = REQUIRED_STRINGS - first
    if missing:
        raise ConfigurationError(f"{where}: pass.strings lacks {sorted(missing)}")
    _check_layout(where, layout, first)


def _check_layout(where: str, layout: Mapping[str, Any], string_keys: frozenset[str]) -> None:
    extra = set(layout) - set(_LAYOUT_AREAS)
    if extra:
        raise ConfigurationError(f"{where}: storeCard may only hold {_LAYOUT_AREAS}, not {extra}")
    counts = {area: len(layout.get(area, ())) for area in _LAYOUT_AREAS}
    check_field_counts(counts, ConfigurationError, where)
    seen: set[str] = set(BACK_FIELD_KEYS)
    for area in _LAYOUT_AREAS:
        for spec in layout.get(area, ()):
            if set(spec) - _FIELD_SPEC_KEYS or "key" not in spec or "label" not in spec:
                raise ConfigurationError(f"{where}: bad field {dict(spec)!r} in {area}")
            key = spec["key"]
            if key in seen:
                raise ConfigurationError(f"{where}: field key {key!r} is not unique (§2.5)")
            seen.add(key)
            if spec.get("source", key) not in FIELD_SOURCES:
                raise ConfigurationError(f"{where}: field {key!r} has an unknown source")
            for ref in ("label", "changeMessage"):
                if ref in spec and spec[ref] not in string_keys:
                    raise ConfigurationError(
                        f"{where}: field {key!r} {ref} {spec[ref]!r} is not in pass.strings"
                    )
            if spec.get("textAlignment", "PKTextAlignmentNatural") not in _TEXT_ALIGNMENTS:
                raise ConfigurationError(f"{where}: field {key!r} has a bad textAlignment")


def check_field_counts(
    counts: Mapping[str, int], error: type[Exception], where: str = "pass"
) -> None:
    """Enforce the store-card front limits of §2.5: 3 header, 1 primary, 4 secondary+auxiliary.

    :raises error: a limit is exceeded.
    """
    if counts.get("headerFields", 0) > 3:
        raise error(f"{where}: a store card shows at most 3 header fields (§2.5)")
    if counts.get("primaryFields", 0) > 1:
        raise error(f"{where}: a store card has at most 1 primary field (§2.5)")
    if counts.get("secondaryFields", 0) + counts.get("auxiliaryFields", 0) > 4:
        raise error(f"{where}: a store card shows at most 4 secondary and auxiliary fields (§2.5)")


# --------------------------------------------------------------------------- design


@dataclass(frozen=True)
class StoreLocation:
    """A store where the pass becomes relevant on the Lock Screen (§2.7)."""

    latitude: float
    longitude: float
    relevant_text: str | None = None


@dataclass(frozen=True)
class MerchantContact:
    """Issuer contact shown on the back of the pass (Apple asks for it, §2.5)."""

    phone: str | None = None
    website: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Design:
    """A loyalty program's look and texts, overriding its template.

    Colours are ``"#rrggbb"``. ``images`` maps file names from :data:`IMAGE_FILENAMES` to PNG
    bytes made by :func:`wallet_service.apple.images.prepare_image`; any file of a kind
    replaces all of the template's files of that kind. Only the first
    :data:`MAX_LOCATIONS` locations are kept. ``languages`` picks the template's ``.lproj``
    folders to ship (empty: all). ``currency_code`` (ISO 4217) shows a cashback bonus
    balance as money. ``points_label`` renames the points unit in every language.
    ``rules_text`` and ``terms_text`` are one text for every language, or a mapping of
    language to text that the pass shows through ``pass.strings`` (§1.5).

    :raises InvalidInput: a value is malformed; ``field`` names it.
    """

    organization_name: str
    description: str
    logo_text: str | None = None
    background_color: str | None = None
    foreground_color: str | None = None
    label_color: str | None = None
    images: Mapping[str, bytes] = field(default_factory=FrozenMap)
    rules_text: str | Mapping[str, str] | None = None
    terms_text: str | Mapping[str, str] | None = None
    contact: MerchantContact = field(default_factory=MerchantContact)
    locations: Sequence[StoreLocation] = ()
    barcode_format: str = "qr"
    languages: Sequence[str] = ()
    currency_code: str | None = None
    points_label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", FrozenMap(self.images))
        object.__setattr__(self, "locations", tuple(self.locations)[:MAX_LOCATIONS])
        object.__setattr__(self, "languages", tuple(self.languages))
        _require_text(self.organization_name, "organization_name")
        _require_text(self.description, "description")
        for name in ("rules_text", "terms_text"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                if not value:
                    raise InvalidInput(f"{name} needs a text in at least one language",
                                       field=name)
                for language, text in value.items():
                    _require_text(text, f"{name}.{language}")
                object.__setattr__(self, name, FrozenMap(value))
        for name in ("background_color", "foreground_color", "label_color"):
            value = getattr(self, name)
            if value is not None and not _HEX_COLOUR.match(value):
                raise InvalidInput(f"{name} must be a colour like #1a2b3c", field=name)
        for filename, data in self.images.items():
            if filename not in IMAGE_FILENAMES:
                raise InvalidInput(
                    f"{filename!r} is not a store-card image name; use one of "
                    f"{', '.join(sorted(IMAGE_FILENAMES))}",
                    field="images",
                )
            if not isinstance(data, bytes) or not data.startswith(_PNG_SIGNATURE):
                raise InvalidInput(f"{filename} must be PNG bytes (§1.4)", field="images")
        for kind in IMAGE_KINDS:
            present = {n for n in self.images if n.split("@")[0].removesuffix(".png") == kind}
            if present and len(present) != len(SCALES):
                raise InvalidInput(
                    f"{kind} needs all of @1x, @2x and @3x (§1.4); use prepare_image()",
                    field="images",
                )
        for index, location in enumerate(self.locations):
            _check_location(location, f"locations[{index}]")
        if self.barcode_format not in BARCODE_FORMATS:
            raise InvalidInput(
                f"barcode_format must be one of {', '.join(BARCODE_FORMATS)}",
                field="barcode_format",
            )
        for language in self.languages:
            if not isinstance(language, str) or not _LANGUAGE.match(language):
                raise InvalidInput(f"{language!r} is not a language code", field="languages")
        if self.currency_code is not None and not _CURRENCY.match(self.currency_code):
            raise InvalidInput("currency_code must be an ISO 4217 code", field="currency_code")
        if self.points_label is not None:
            _require_text(self.points_label, "points_label")
        if self.contact.website is not None:
            _check_web_url(self.contact.website, "contact.website")
        if self.contact.email is not None and "@" not in self.contact.email:
            raise InvalidInput("contact e-mail must contain @", field="contact.email")


def _check_location(location: StoreLocation, where: str) -> None:
    for name, limit in (("latitude", 90), ("longitude", 180)):
        value = getattr(location, name)
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InvalidInput(f"{name} must be a number", field=f"{where}.{name}")
        if not -limit <= value <= limit:
            raise InvalidInput(f"{name} must be within ±{limit}", field=f"{where}.{name}")


# --------------------------------------------------------------------------- card content


@dataclass(frozen=True)
class CardContent:
    """One member's card: identity, web-service keys and the values shown on the pass.

    ``web_service_url`` is the base URL the device appends ``/v1/...`` to (§2.2); it and
    ``authentication_token`` (≥ 16 characters) come together or not at all. ``balance`` is in
    points, or, for a cashback program with ``Design.currency_code``, in minor units of that
    currency (kopecks, cents). ``locale`` (``"ru"``, ``"en_US"``) formats the numbers and dates
    the server writes as text.

    ``kind`` (one of :data:`CARD_KINDS`) says what the balance counts, so a field only shows
    what the card has: ``points`` (the balance), ``bonus`` (cashback money, or points), the
    stamps and ``rewards_ready`` (stamps), ``discount_percent``. Without a kind every
    field the template names shows the values given.

    :raises InvalidInput: a value is malformed; ``field`` names it.
    """

    serial_number: str
    pass_type_identifier: str
    team_identifier: str
    member_name: str
    card_number: str
    balance: int = 0
    authentication_token: str | None = None
    web_service_url: str | None = None
    tier: str | None = None
    stamps: int | None = None
    stamps_goal: int | None = None
    rewards_ready: int | None = None
    cashback_percent: Decimal | int | float | None = None
    discount_percent: Decimal | int | float | None = None
    kind: str | None = None
    card_url: str | None = None
    voided: bool = False
    expiration_date: dt.datetime | None = None
    locale: str = "en"

    def __post_init__(self) -> None:
        _require_text(self.serial_number, "serial_number")
        _require_text(self.member_name, "member_name")
        if not _PASS_TYPE_ID.match(self.pass_type_identifier):
            raise InvalidInput(
                "pass_type_identifier must look like pass.com.example.loyalty (§2.1)",
                field="pass_type_identifier",
            )
        if not _TEAM_ID.match(self.team_identifier):
            raise InvalidInput(
                "team_identifier must be the 10-character Apple Team ID (§2.1)",
                field="team_identifier",
            )
        _require_text(self.card_number, "card_number")
        try:
            self.card_number.encode("iso-8859-1")
        except UnicodeEncodeError:
            raise InvalidInput(
                "card_number must use Latin-1 characters (barcode messageEncoding, §2.3)",
                field="card_number",
            ) from None
        for name in ("balance", "stamps", "stamps_goal", "rewards_ready"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput(f"{name} must be a whole number", field=name)
        if (self.stamps is None) != (self.stamps_goal is None):
            raise InvalidInput("stamps and stamps_goal come together", field="stamps_goal")
        if self.stamps is not None and (self.stamps < 0 or self.stamps_goal < 1):  # type: ignore[operator]
            raise InvalidInput("stamps must be ≥ 0 and stamps_goal ≥ 1", field="stamps")
        for name in ("cashback_percent", "discount_percent"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise InvalidInput(f"{name} must be between 0 and 100", field=name)
        if self.kind is not None and self.kind not in CARD_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(sorted(CARD_KINDS))}",
                               field="kind")
        _check_web_service(self.web_service_url, self.authentication_token)
        if self.card_url is not None:
            _check_web_url(self.card_url, "card_url")
        if self.expiration_date is not None and self.expiration_date.utcoffset() is None:
            raise InvalidInput(
                "expiration_date needs a time zone (W3C dates, §2.13)", field="expiration_date"
            )
        if not self.locale or not re.match(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$", self.locale):
            raise InvalidInput(f"{self.locale!r} is not a locale", field="locale")


def _check_web_service(url: str | None, token: str | None) -> None:
    """§2.2: URL and token together; token ≥ 16 chars; HTTPS except for local development."""
    if (url is None) != (token is None):
        raise InvalidInput(
            "web_service_url and authentication_token come together (§2.2)",
            field="authentication_token" if token is None else "web_service_url",
        )
    if url is None or token is None:
        return
    if len(token) < 16:
        raise InvalidInput(
            "authentication_token must be at least 16 characters (§2.2)",
            field="authentication_token",
        )
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_development_host(parts.hostname or ""):
        raise InvalidInput(
            "web_service_url must use https:// (http:// is allowed only for a development "
            "host such as localhost, §2.2)",
            field="web_service_url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "web_service_url must be an absolute https:// URL", field="web_service_url"
        )
    if parts.query or parts.fragment:
        raise InvalidInput(
            "web_service_url must not have a query or fragment", field="web_service_url"
        )
    if parts.path.rstrip("/").endswith("/v1"):
        raise InvalidInput(
            "web_service_url is the base URL: the device appends /v1 itself (§2.2)",
            field="web_service_url",
        )


def is_development_host(host: str) -> bool:
    """Whether plain HTTP is acceptable for ``host``: loopback, private LAN, ``.localhost``."""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _check_web_url(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{name} must be an absolute http(s):// URL", field=name)


def _require_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must not be empty", field=name)


def is_rgb_colour(value: Any) -> bool:
    """Whether ``value`` is an Apple colour string ``rgb(r, g, b)`` with 0–255 parts (§2.4)."""
    match = _RGB_COLOUR.match(value) if isinstance(value, str) else None
    return bool(match) and all(0 <= int(part) <= 255 for part in match.groups())  # type: ignore[union-attr]


def hex_to_rgb(value: str) -> str:
    """Convert ``"#1a2b3c"`` to Apple's ``"rgb(26, 43, 60)"`` (§2.4)."""
    r, g, b = (int(value[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
