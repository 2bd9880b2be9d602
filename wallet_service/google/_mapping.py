"""Programs and cards as Google Wallet LoyaltyClass / LoyaltyObject JSON (spec §2).

Pure functions of frozen inputs: ``GoogleProgram`` (one per loyalty program, one LoyaltyClass)
and ``GoogleCard`` (one per member card, one LoyaltyObject). The dicts they return validate
against the Discovery schema in strict mode (§6.5).

Choices made here:

* **Tier per member: ``secondaryLoyaltyPoints``** with a localized "Level" label and the tier
  name as a string balance (§2.1.1 option b). ``rewardsTier`` exists only on the class, so it
  would show the same tier to every member; a text module would need ``classTemplateInfo`` to
  reach the card front, while ``secondaryLoyaltyPoints`` sits next to the points without one
  and is a single field to PATCH. Members without a tier show ``—`` (a PATCH cannot clear a
  field by leaving it out). Programs without tiers send no ``secondaryLoyaltyPoints``.
* **Closed cards: ``INACTIVE``** ("moved to the Expired passes section"); ``EXPIRED`` is what
  Google sets when ``validTimeInterval`` has passed (§2.2).
* **Class ``reviewStatus`` is always ``UNDER_REVIEW``**, on insert and on every update or
  patch (§2.1.2, §7.5).
* **Ids** contain no personal data (§2.2, §7.26): the class suffix comes from the program id,
  the object suffix from a SHA-256 of the card number, so a save link reveals neither the
  member nor the card number. An optional ``prefix`` (the deployment's namespace) comes
  first, so that two deployments on one issuer never share a class or an object.
* **Messages**: an object holds at most 10 (§2.6, §7.15); :func:`loyalty_message` builds
  one, :func:`kept_messages` the list a PATCH leaves before the next is added.
* Balances beyond int32 are sent as ``string`` (§2.3, §7.16).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "BALANCE_LABELS",
    "BARCODE_TYPES",
    "GoogleCard",
    "GoogleDetail",
    "GoogleMoney",
    "GoogleProgram",
    "GoogleStore",
    "MESSAGES_PER_OBJECT",
    "class_id",
    "kept_messages",
    "loyalty_class",
    "loyalty_message",
    "loyalty_object",
    "object_design",
    "object_id",
    "object_patch",
    "sanitize_suffix",
]

#: The service's barcode formats and Google's ``Barcode.type`` names (§2.3).
BARCODE_TYPES = {"qr": "QR_CODE", "pdf417": "PDF_417", "aztec": "AZTEC", "code128": "CODE_128"}
NO_TIER = "—"
#: Messages an object (or a class) holds at most (§1.8, §2.6).
MESSAGES_PER_OBJECT = 10
_INT32_MAX = 2**31 - 1
_ISSUER_ID = re.compile(r"\A[0-9]+\Z")
_PREFIX = re.compile(r"\A[A-Za-z0-9_-]{1,40}\Z")
_MESSAGE_FIELDS = ("id", "header", "body", "localizedHeader", "localizedBody",
                   "displayInterval", "messageType")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_COLOUR = re.compile(r"\A#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\Z")

#: Labels the service provides itself, per language (English for any other language).
_LABELS: dict[str, dict[str, str]] = {
    "account_id": {"en": "Card number", "ru": "Номер карты"},
    "account_name": {"en": "Member", "ru": "Участник"},
    "points": {"en": "Points", "ru": "Баллы"},
    "tier": {"en": "Level", "ru": "Уровень"},
    "stamps": {"en": "Stamps", "ru": "Штампы"},
    "cashback": {"en": "Cashback", "ru": "Кешбэк"},
    "discount": {"en": "Discount", "ru": "Скидка"},
    "card_page": {"en": "My card", "ru": "Моя карта"},
    "survey": {"en": "Rate us", "ru": "Оцените нас"},
    "website": {"en": "Website", "ru": "Сайт"},
    "phone": {"en": "Phone", "ru": "Телефон"},
    "rules": {"en": "Rules", "ru": "Правила"},
    "terms": {"en": "Terms", "ru": "Условия"},
    "logo": {"en": "{} logo", "ru": "Логотип {}"},
}

#: Text in one language for all (``str``) or per language (``{"ru": ..., "en": ...}``).
Text = str | Mapping[str, str]


@dataclass(frozen=True)
class GoogleStore:
    """A store location; becomes a ``merchantLocations`` entry (geofenced notices, §2.6)."""

    latitude: float
    longitude: float
    name: str = ""


@dataclass(frozen=True)
class GoogleProgram:
    """What the LoyaltyClass of a program shows (§2.1).

    ``languages``: BCP 47 tags, the first is the default (``("ru", "en")``). Image URLs must
    be public HTTPS (§2.4). ``points_label``/``rules``/``terms`` are ``Text``. ``tiers``:
    whether the program has tiers at all (then every card shows a tier line).
    ``callback_url``: the HTTPS save/delete callback endpoint (§4.1).
    """

    program_id: int | str
    name: Text
    merchant_name: Text
    logo_url: str
    background_color: str
    languages: Sequence[str] = ("ru", "en")
    logo_text: Text | None = None
    hero_url: str | None = None
    points_label: Text | None = None
    rules: Text | None = None
    terms: Text | None = None
    phone: str | None = None
    website: str | None = None
    stores: Sequence[GoogleStore] = ()
    barcode_format: str = "qr"
    tiers: bool = False
    country_code: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class GoogleMoney:
    """A money balance (cashback): ``amount`` in major units of ``currency`` (§2.3 Money)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class GoogleDetail:
    """A text module of the object (``textModulesData``, §2.3): a line about the card, such
    as the way to the next reward. ``module_id`` may hold letters, digits, ``_`` and ``-``
    only (§2.2)."""

    module_id: str
    header: Text
    body: Text


#: The balance labels the mapping provides (``GoogleCard.balance_label``), by unit.
BALANCE_LABELS = ("points", "stamps", "cashback", "discount")


@dataclass(frozen=True)
class GoogleCard:
    """What a member's LoyaltyObject shows (§2.2). ``serial`` is the 13-digit card number;
    ``status`` ``"active"`` or ``"closed"``; ``card_url`` the member's card page.
    ``stores``: the object's ``merchantLocations`` (at most 10, §1.8; geofenced "nearby"
    notices, §2.6); an empty list clears them, None leaves the object's as they are.

    ``balance`` is what the card holds in its program's unit: points (``int``), a text such
    as ``"3 / 6"`` stamps or ``"10 %"`` (``str``), or money (:class:`GoogleMoney`);
    ``balance_label`` names it (one of :data:`BALANCE_LABELS`; ``points`` takes the
    program's ``points_label``). ``details`` become the object's text modules."""

    serial: str
    member_name: str
    balance: int | str | GoogleMoney
    status: str = "active"
    tier: str | None = None
    card_url: str | None = None
    stores: Sequence[GoogleStore] | None = None
    #: The member's NPS survey page, linked under the card page when the program asks.
    survey_url: str | None = None
    balance_label: str = "points"
    details: Sequence[GoogleDetail] = ()


def sanitize_suffix(text: str) -> str:
    """Replace every character Google does not allow in an id suffix with ``_`` (§7.3).

    ASCII only: Python's ``\\w`` would let ``é`` or ``王`` through.
    """
    return _UNSAFE.sub("_", text)


def _issuer(issuer_id: str | int) -> str:
    issuer = str(issuer_id)
    if not _ISSUER_ID.match(issuer):
        raise InvalidInput(f"Google issuer id {issuer!r} must be all digits (spec §7.2)",
                           field="issuer_id")
    return issuer


def _namespace(issuer_id: str | int, prefix: str | None) -> str:
    """``<issuer id>.``, or ``<issuer id>.<prefix>.`` for a deployment with a namespace."""
    if prefix is None:
        return f"{_issuer(issuer_id)}."
    if not _PREFIX.match(prefix):
        raise InvalidInput(f"id prefix {prefix!r} must be 1 to 40 letters, digits, _ or - "
                           "(spec §7.3)", field="id_prefix")
    return f"{_issuer(issuer_id)}.{prefix}."


def class_id(issuer_id: str | int, program_id: int | str, *, prefix: str | None = None) -> str:
    """``<issuer id>.program-<program id>``, the LoyaltyClass id of a program (§2.1.1);
    ``<issuer id>.<prefix>.program-<program id>`` in the namespace ``prefix``."""
    return f"{_namespace(issuer_id, prefix)}program-{sanitize_suffix(str(program_id))}"


def object_id(issuer_id: str | int, serial: str, *, salt: str = "",
              prefix: str | None = None) -> str:
    """``<issuer id>.card-<hash>``, the LoyaltyObject id of a card (§2.2);
    ``<issuer id>.<prefix>.card-<hash>`` in the namespace ``prefix``.

    The suffix is the first 32 hex digits of SHA-256 over ``salt`` and the card number, so
    the id (visible in save links and callbacks) does not reveal the card number. With a
    secret ``salt`` it cannot be brute-forced either; the salt must then never change.
    """
    digest = hashlib.sha256(f"{salt}\0{serial}".encode()).hexdigest()[:32]
    return f"{_namespace(issuer_id, prefix)}card-{digest}"


def _lang_value(text: Text, language: str) -> str:
    if isinstance(text, str):
        return text
    if language in text:
        return text[language]
    return next(iter(text.values()))


def localized(text: Text, languages: Sequence[str]) -> dict[str, Any]:
    """A ``LocalizedString``: default in the first language, a translation per language."""
    return {
        "defaultValue": {"language": languages[0], "value": _lang_value(text, languages[0])},
        "translatedValues": [{"language": lang, "value": _lang_value(text, lang)}
                             for lang in languages],
    }


def _label(key: str, languages: Sequence[str], *args: str) -> dict[str, str]:
    return {lang: _LABELS[key].get(lang.split("-")[0], _LABELS[key]["en"]).format(*args)
            for lang in languages}


def _languages(program: GoogleProgram) -> Sequence[str]:
    if not program.languages:
        raise InvalidInput("a program needs at least one language", field="languages")
    return tuple(program.languages)


def _https(url: str, name: str) -> str:
    if not url.startswith("https://"):
        raise InvalidInput(f"{name} must be a public https:// URL (spec §2.4)", field=name)
    return url


def _image(url: str, description: Text, languages: Sequence[str], name: str) -> dict[str, Any]:
    return {"sourceUri": {"uri": _https(url, name)},
            "contentDescription": localized(description, languages)}


def _text_module(module_id: str, header: Text, body: Text,
                 languages: Sequence[str]) -> dict[str, Any]:
    lang = languages[0]
    return {"id": module_id, "header": _lang_value(header, lang), "body": _lang_value(body, lang),
            "localizedHeader": localized(header, languages),
            "localizedBody": localized(body, languages)}


def _uri(uri: str, uri_id: str, description: Text, languages: Sequence[str]) -> dict[str, Any]:
    return {"uri": uri, "id": uri_id, "description": _lang_value(description, languages[0]),
            "localizedDescription": localized(description, languages)}


def loyalty_class(issuer_id: str | int, program: GoogleProgram, *,
                  prefix: str | None = None) -> dict[str, Any]:
    """The LoyaltyClass JSON of a program, for insert and for every update/patch (§2.1, §2.5).

    ``reviewStatus`` is ``UNDER_REVIEW`` always (§2.1.2). PATCH replaces arrays whole, so
    sending this whole dict as the patch keeps text modules, links and locations consistent.
    ``prefix``: the namespace of the ids (:func:`class_id`).
    """
    languages = _languages(program)
    if not _COLOUR.match(program.background_color):
        raise InvalidInput("background colour must be #rrggbb (spec §2.1.1)",
                           field="background_color")
    if len(program.stores) > 10:
        raise InvalidInput("Google Wallet shows at most 10 store locations (spec §1.8)",
                           field="stores")
    if program.barcode_format not in BARCODE_TYPES:
        raise InvalidInput(f"barcode format must be one of {sorted(BARCODE_TYPES)}",
                           field="barcode_format")
    lang = languages[0]
    logo_text = program.logo_text or _label("logo", languages, _lang_value(program.merchant_name,
                                                                            lang))
    payload: dict[str, Any] = {
        "id": class_id(issuer_id, program.program_id, prefix=prefix),
        "issuerName": _lang_value(program.merchant_name, lang),
        "localizedIssuerName": localized(program.merchant_name, languages),
        "programName": _lang_value(program.name, lang),
        "localizedProgramName": localized(program.name, languages),
        "programLogo": _image(program.logo_url, logo_text, languages, "logo_url"),
        "hexBackgroundColor": program.background_color.lower(),
        "reviewStatus": "UNDER_REVIEW",
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
        "accountIdLabel": _label("account_id", languages)[lang],
        "localizedAccountIdLabel": localized(_label("account_id", languages), languages),
        "accountNameLabel": _label("account_name", languages)[lang],
        "localizedAccountNameLabel": localized(_label("account_name", languages), languages),
    }
    if program.hero_url:
        payload["heroImage"] = _image(program.hero_url, program.name, languages, "hero_url")
    if program.country_code:
        payload["countryCode"] = program.country_code
    modules = []
    if program.rules:
        modules.append(_text_module("rules", _label("rules", languages), program.rules,
                                    languages))
    if program.terms:
        modules.append(_text_module("terms", _label("terms", languages), program.terms,
                                    languages))
    if modules:
        payload["textModulesData"] = modules
    uris = []
    if program.website:
        uris.append(_uri(program.website, "website", _label("website", languages), languages))
    if program.phone:
        phone = re.sub(r"[^0-9+]", "", program.phone)
        uris.append(_uri(f"tel:{phone}", "phone", _label("phone", languages), languages))
    if uris:
        payload["linksModuleData"] = {"uris": uris}
    if program.stores:
        payload["merchantLocations"] = _merchant_locations(program.stores)
    if program.callback_url:
        payload["callbackOptions"] = {"url": _https(program.callback_url, "callback_url")}
    return payload


def _merchant_locations(stores: Sequence[GoogleStore]) -> list[dict[str, float]]:
    return [{"latitude": float(s.latitude), "longitude": float(s.longitude)} for s in stores]


def _balance(balance: int | str | GoogleMoney) -> dict[str, Any]:
    """A ``LoyaltyPointsBalance``: exactly one of int (int32), string or money (§2.3)."""
    if isinstance(balance, GoogleMoney):
        micros = int(balance.amount * 1_000_000)
        return {"money": {"currencyCode": balance.currency, "micros": str(micros)}}
    if isinstance(balance, str):
        return {"string": balance}
    if -_INT32_MAX - 1 <= balance <= _INT32_MAX:
        return {"int": balance}
    return {"string": str(balance)}


def _points(program: GoogleProgram, card: GoogleCard) -> dict[str, Any]:
    languages = _languages(program)
    if card.balance_label not in BALANCE_LABELS:
        raise InvalidInput(f"balance label must be one of {', '.join(BALANCE_LABELS)}",
                           field="balance_label")
    label: Text = _label(card.balance_label, languages)
    if card.balance_label == "points" and program.points_label:
        label = program.points_label
    return {"label": _lang_value(label, languages[0]),
            "localizedLabel": localized(label, languages),
            "balance": _balance(card.balance)}


def _tier(program: GoogleProgram, card: GoogleCard) -> dict[str, Any]:
    languages = _languages(program)
    label = _label("tier", languages)
    return {"label": label[languages[0]], "localizedLabel": localized(label, languages),
            "balance": {"string": card.tier or NO_TIER}}


def _state(card: GoogleCard) -> str:
    if card.status not in ("active", "closed"):
        raise InvalidInput("card status must be active or closed", field="status")
    return "ACTIVE" if card.status == "active" else "INACTIVE"


def loyalty_object(issuer_id: str | int, program: GoogleProgram, card: GoogleCard, *,
                   salt: str = "", prefix: str | None = None) -> dict[str, Any]:
    """The LoyaltyObject JSON of a card, for insert (and the patch half of an upsert) (§2.2).

    ``salt`` and ``prefix`` as for ``object_id`` (``prefix`` for the class id too).
    """
    return {
        "id": object_id(issuer_id, card.serial, salt=salt, prefix=prefix),
        "classId": class_id(issuer_id, program.program_id, prefix=prefix),
        **object_patch(program, card),
        "accountId": card.serial,
        **object_design(program, card),
    }


def object_design(program: GoogleProgram, card: GoogleCard) -> dict[str, Any]:
    """What the program's design decides on each object: the ``barcode`` (its format) and
    the ``linksModuleData`` (the card page). A class PATCH does not reach them, so a design
    change patches every object with these too (§1.4: object fields are per object)."""
    if program.barcode_format not in BARCODE_TYPES:
        raise InvalidInput(f"barcode format must be one of {sorted(BARCODE_TYPES)}",
                           field="barcode_format")
    payload: dict[str, Any] = {
        "barcode": {"type": BARCODE_TYPES[program.barcode_format], "value": card.serial,
                    "alternateText": card.serial},
    }
    languages = _languages(program)
    uris = []
    if card.card_url:
        uris.append(_uri(_https(card.card_url, "card_url"), "card",
                         _label("card_page", languages), languages))
    if card.survey_url:
        uris.append(_uri(_https(card.survey_url, "survey_url"), "survey",
                         _label("survey", languages), languages))
    if uris:
        payload["linksModuleData"] = {"uris": uris}
    return payload


def object_patch(program: GoogleProgram, card: GoogleCard, *,
                 notify: bool = False) -> dict[str, Any]:
    """The PATCH body after a points, tier, name, status or store change of a card (§1.4,
    §2.6).

    ``loyaltyPoints``, ``secondaryLoyaltyPoints`` (programs with tiers), ``accountName``,
    ``state``, the card's ``textModulesData`` when it has details and, when the card gives
    them, ``merchantLocations`` (arrays are sent whole, since PATCH replaces arrays whole);
    nothing else, so the links stay as they are. ``notify=True`` adds
    ``notifyPreference: NOTIFY_ON_UPDATE`` (ephemeral, per request); the caller decides it from
    its 3-per-24-hours budget (§2.6).
    """
    payload: dict[str, Any] = {
        "state": _state(card),
        "accountName": card.member_name,
        "loyaltyPoints": _points(program, card),
    }
    if program.tiers:
        payload["secondaryLoyaltyPoints"] = _tier(program, card)
    if card.details:
        languages = _languages(program)
        payload["textModulesData"] = [_text_module(d.module_id, d.header, d.body, languages)
                                      for d in card.details]
    if card.stores is not None:
        if len(card.stores) > 10:
            raise InvalidInput("Google Wallet shows at most 10 store locations (spec §1.8)",
                               field="stores")
        payload["merchantLocations"] = _merchant_locations(card.stores)
    if notify:
        payload["notifyPreference"] = "NOTIFY_ON_UPDATE"
    return payload


def loyalty_message(header: Text, body: Text, *, notify: bool,
                    message_id: str) -> dict[str, Any]:
    """A ``Message`` (§2.3): ``TEXT_AND_NOTIFY`` when ``notify`` (a push, on the 3-per-24-hours
    budget), else ``TEXT``. ``header`` and ``body`` are one text or one per language, the
    first language the default (LocalizedString)."""
    message: dict[str, Any] = {"id": message_id, "header": _first(header),
                               "body": _first(body),
                               "messageType": "TEXT_AND_NOTIFY" if notify else "TEXT"}
    for name, text in (("localizedHeader", header), ("localizedBody", body)):
        if not isinstance(text, str) and text:
            message[name] = localized(text, list(text))
    return message


def kept_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The messages an object keeps so that one more fits: the newest
    ``MESSAGES_PER_OBJECT - 1`` (§2.6: ``addMessage`` appends, and an object holds 10), as a
    PATCH sends them back: only the fields a message is written with, each as ``TEXT`` (a
    PATCH must not notify again), without the ``kind`` Google adds to what it returns."""
    newest = list(messages)[-(MESSAGES_PER_OBJECT - 1):]
    return [{**{k: _without_kind(m[k]) for k in _MESSAGE_FIELDS if k in m},
             "messageType": "TEXT"} for m in newest]


def _first(text: Text) -> str:
    """The text in the default (first) language."""
    return text if isinstance(text, str) else next(iter(text.values()))


def _without_kind(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_kind(v) for k, v in value.items() if k != "kind"}
    if isinstance(value, list):
        return [_without_kind(v) for v in value]
    return value
