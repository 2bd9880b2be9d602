"""``pass.json`` for a loyalty store card (§2), built from a template, a design and a card.

Labels and change messages are ``pass.strings`` keys, so Wallet shows them in the phone's
language (§1.5); so are texts a merchant gives per language (rules, terms) and, through
:func:`localize_fields`, the texts of fields the service adds per card. Numbers the server
writes as text (stamps, cashback share) are formatted with Babel in the card's locale; the
balance, the discount and dates stay numbers and dates with ``numberStyle``,
``currencyCode`` or ``dateStyle`` so Wallet formats them itself (§1.5, §2.5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale
from babel import UnknownLocaleError
from babel.numbers import format_decimal
from babel.numbers import format_percent
from babel.numbers import get_currency_precision

from ..errors import InvalidInput
from ._frozen import thaw
from .model import BARCODE_FORMATS
from .model import CardContent
from .model import Design
from .model import PassTemplate
from .model import check_field_counts
from .model import hex_to_rgb

FieldValue = dict[str, Any]


def build_pass_json(template: PassTemplate, design: Design, content: CardContent) -> dict[str, Any]:
    """Return the ``pass.json`` object for one member's store card (§2.1–§2.8).

    :raises InvalidInput: ``design.languages`` names a language the template lacks, or the
        card's locale is unknown.
    """
    locale = _locale(content.locale)
    check_languages(template, design)
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": content.pass_type_identifier,
        "serialNumber": content.serial_number,
        "teamIdentifier": content.team_identifier,
        "organizationName": design.organization_name,
        "description": design.description,
    }
    if design.logo_text:
        document["logoText"] = design.logo_text
    document.update(_colours(template, design))
    for key, value in template.pass_json.items():
        if key not in document and key not in ("storeCard", "formatVersion"):
            document[key] = thaw(value)
    document.update(_barcodes(design.barcode_format, content.card_number))
    if design.locations:
        document["locations"] = _locations(design)
    if content.web_service_url is not None:
        document["webServiceURL"] = content.web_service_url
        document["authenticationToken"] = content.authentication_token
    if content.voided:
        document["voided"] = True
    if content.expiration_date is not None:
        document["expirationDate"] = w3c_timestamp(content.expiration_date)
    document["storeCard"] = _store_card(template, design, content, locale)
    return document


def check_languages(template: PassTemplate, design: Design) -> tuple[str, ...]:
    """Return the languages to ship: ``design.languages`` or all of the template's.

    :raises InvalidInput: a language has no strings in the template.
    """
    missing = [lang for lang in design.languages if lang not in template.strings]
    if missing:
        raise InvalidInput(
            f"template {template.name!r} has no strings for {', '.join(missing)}; "
            f"available: {', '.join(template.languages)}",
            field="languages",
        )
    return tuple(design.languages) or template.languages


def w3c_timestamp(moment: dt.datetime) -> str:
    """Format an aware datetime as a W3C timestamp in UTC, ``2025-01-31T12:00:00Z`` (§2.13)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=64)
def _locale(code: str) -> Locale:
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise InvalidInput(f"unknown locale {code!r}", field="locale") from exc


def _colours(template: PassTemplate, design: Design) -> dict[str, str]:
    colours = {}
    for key, override in (
        ("backgroundColor", design.background_color),
        ("foregroundColor", design.foreground_color),
        ("labelColor", design.label_color),
    ):
        if override is not None:
            colours[key] = hex_to_rgb(override)
        elif key in template.pass_json:
            colours[key] = template.pass_json[key]
    return colours


def _barcodes(format_name: str, card_number: str) -> dict[str, Any]:
    """``barcodes`` plus the legacy ``barcode`` for iOS 8 (§2.3).

    Code 128 is shown neither on watchOS nor by the legacy key, so a QR code follows it.
    """

    def barcode(apple_format: str) -> dict[str, str]:
        return {
            "format": apple_format,
            "message": card_number,
            "messageEncoding": "iso-8859-1",
            "altText": card_number,
        }

    codes = [barcode(BARCODE_FORMATS[format_name])]
    if format_name == "code128":
        codes.append(barcode(BARCODE_FORMATS["qr"]))
    return {"barcodes": codes, "barcode": dict(codes[-1])}


def _locations(design: Design) -> list[dict[str, Any]]:
    """At most 10 locations, each with a Lock Screen text (§2.7)."""
    return [
        {
            "latitude": float(store.latitude),
            "longitude": float(store.longitude),
            "relevantText": store.relevant_text or "location.relevant",
        }
        for store in design.locations
    ]


def _store_card(
    template: PassTemplate, design: Design, content: CardContent, locale: Locale
) -> dict[str, list[FieldValue]]:
    """Fill the template's front layout, then add the back fields (§2.5)."""
    layout = template.pass_json["storeCard"]
    store_card: dict[str, list[FieldValue]] = {}
    for area in ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields"):
        fields = []
        for spec in layout.get(area, ()):
            value = _SOURCES[spec.get("source", spec["key"])](design, content, locale)
            if value is None:
                continue
            item: FieldValue = {"key": spec["key"], "label": spec["label"]}
            item.update(value)
            if "changeMessage" in spec:
                item["changeMessage"] = spec["changeMessage"]
            if "textAlignment" in spec:
                item["textAlignment"] = spec["textAlignment"]
            fields.append(item)
        if fields:
            store_card[area] = fields
    check_field_counts({k: len(v) for k, v in store_card.items()}, InvalidInput)
    store_card["backFields"] = _back_fields(design, content, locale)
    return store_card


#: ``pass.strings`` keys of the design's texts given per language (§1.5).
TEXT_KEYS = {"rules_text": "rules.text", "terms_text": "terms.text"}


def _text(design: Design, name: str) -> str | None:
    """The design's text as a field value: the text itself, or its ``pass.strings`` key
    when it is given per language."""
    value = getattr(design, name)
    if isinstance(value, Mapping):
        return TEXT_KEYS[name]
    return value  # type: ignore[no-any-return]


def _back_fields(design: Design, content: CardContent, locale: Locale) -> list[FieldValue]:
    """Rules, terms, the card page and the issuer's contact (Apple asks for it, §2.5)."""
    fields: list[FieldValue] = []
    if design.rules_text:
        fields.append({"key": "rules", "label": "rules.label",
                       "value": _text(design, "rules_text")})
    if content.expiration_date is not None:
        fields.append(
            {
                "key": "expires_on",
                "label": "expires.label",
                "value": w3c_timestamp(content.expiration_date),
                "dateStyle": "PKDateStyleLong",
                "timeStyle": "PKDateStyleNone",
            }
        )
    if content.card_url:
        fields.append(_link("card_page", "card_page.label", content.card_url, "Link"))
    contact = design.contact
    if contact.phone:
        fields.append(_link("phone", "phone.label", contact.phone, "PhoneNumber"))
    if contact.website:
        fields.append(_link("website", "website.label", contact.website, "Link"))
    if contact.email:
        fields.append(_link("email", "email.label", contact.email, "Link"))
    if design.terms_text:
        fields.append({"key": "terms", "label": "terms.label",
                       "value": _text(design, "terms_text")})
    return fields


def _link(key: str, label: str, value: str, detector: str) -> FieldValue:
    return {
        "key": key,
        "label": label,
        "value": value,
        "dataDetectorTypes": [f"PKDataDetectorType{detector}"],
    }


# Front-field values by source. None drops the field (e.g. no tier yet).


def _points(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    if content.kind not in (None, "points"):
        return None  # a stamp, cashback or discount card has no points
    return {"value": content.balance, "numberStyle": "PKNumberStyleDecimal"}


def _bonus(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    """Cashback as money (the balance is in minor units of ``currency_code``); points on a
    points card."""
    if content.kind == "points" or (content.kind is None and design.currency_code is None):
        return _points(design, content, locale)
    if content.kind not in (None, "cashback") or design.currency_code is None:
        return None
    digits = get_currency_precision(design.currency_code)
    amount = Decimal(content.balance).scaleb(-digits)
    number = int(amount) if amount == amount.to_integral_value() else float(amount)
    return {"value": number, "currencyCode": design.currency_code}


def _tier(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    return {"value": content.tier} if content.tier else None


def _member(design: Design, content: CardContent, locale: Locale) -> FieldValue:
    return {"value": content.member_name}


def _stamps(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    if content.stamps is None or content.stamps_goal is None:
        return None
    have = format_decimal(min(content.stamps, content.stamps_goal), locale=locale)
    goal = format_decimal(content.stamps_goal, locale=locale)
    return {"value": f"{have} / {goal}"}


def _stamps_left(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    if content.stamps is None or content.stamps_goal is None:
        return None
    return {"value": format_decimal(max(content.stamps_goal - content.stamps, 0), locale=locale)}


def _rewards(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    """Rewards ready to claim (stamp cards)."""
    if content.rewards_ready is None:
        return None
    return {"value": content.rewards_ready, "numberStyle": "PKNumberStyleDecimal"}


def _discount(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    """The card's discount, a number Wallet writes as a percentage in the phone's language."""
    if content.discount_percent is None:
        return None
    share = Decimal(str(content.discount_percent)) / 100
    number = int(share) if share == share.to_integral_value() else float(share)
    return {"value": number, "numberStyle": "PKNumberStylePercent"}


def _cashback(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    if content.cashback_percent is None:
        return None
    share = Decimal(str(content.cashback_percent)) / 100
    return {"value": format_percent(share, locale=locale, decimal_quantization=False)}


def _card(design: Design, content: CardContent, locale: Locale) -> FieldValue:
    return {"value": content.card_number}


def _expires(design: Design, content: CardContent, locale: Locale) -> FieldValue | None:
    if content.expiration_date is None:
        return None
    return {
        "value": w3c_timestamp(content.expiration_date),
        "dateStyle": "PKDateStyleMedium",
        "timeStyle": "PKDateStyleNone",
    }


_SOURCES: Mapping[str, Callable[[Design, CardContent, Locale], FieldValue | None]] = {
    "points": _points,
    "bonus": _bonus,
    "tier": _tier,
    "member": _member,
    "stamps": _stamps,
    "stamps_left": _stamps_left,
    "rewards": _rewards,
    "cashback": _cashback,
    "discount": _discount,
    "card": _card,
    "expires": _expires,
}


def localized_strings(template: PassTemplate, design: Design) -> dict[str, dict[str, str]]:
    """The ``pass.strings`` content per shipped language, with the design's renamed points unit
    and its texts given per language.

    A custom ``points_label`` replaces the unit's labels in every language, and its change
    messages become ``"<label>: %@"`` so they stay grammatical (§2.6: always keep ``%@``).
    A text given per language gets its key in every file (each needs the same keys, §1.5):
    a language without its own text shows the first language's.
    """
    result = {}
    languages = check_languages(template, design)
    for language in languages:
        strings = dict(template.strings[language])
        for name, key in TEXT_KEYS.items():
            value = getattr(design, name)
            if isinstance(value, Mapping):
                strings[key] = _in_language(value, language, languages)
        if design.points_label:
            for key in ("points.label", "points.short", "bonus.label"):
                if key in strings:
                    strings[key] = design.points_label
            for key in ("points.change", "bonus.change"):
                if key in strings:
                    strings[key] = f"{design.points_label}: %@"
        result[language] = strings
    return result


def _in_language(texts: Mapping[str, str], language: str, languages: Sequence[str]) -> str:
    """The text for ``language``, else the first shipped language's, else any."""
    for candidate in (language, *languages):
        if texts.get(candidate):
            return texts[candidate]
    return next(iter(texts.values()))


def localize_fields(
    per_language: Mapping[str, Sequence[FieldValue]], prefix: str = "card"
) -> tuple[list[FieldValue], dict[str, dict[str, str]]]:
    """Fields the service writes in every language, as one set of fields and the
    ``pass.strings`` entries that make Wallet show each language's text (§1.5).

    ``per_language`` maps each shipped language to the same fields (by ``key``) written in
    it; the first language's fields are the ones kept. A ``label`` or text ``value`` that
    differs between languages becomes the key ``<prefix>.<field key>.<label|value>``, with
    every language's text in the strings; a text that reads the same in every language stays
    as it is. Every language gets every key (§1.5: the same keys in each file).
    """
    languages = list(per_language)
    if not languages:
        return [], {}
    by_key = {lang: {f["key"]: f for f in per_language[lang]} for lang in languages}
    strings: dict[str, dict[str, str]] = {lang: {} for lang in languages}
    fields: list[FieldValue] = []
    for field in per_language[languages[0]]:
        out = dict(field)
        for attribute in ("label", "value"):
            texts = {lang: by_key[lang].get(field["key"], field).get(attribute)
                     for lang in languages}
            if not all(isinstance(t, str) for t in texts.values()):
                continue
            if len(set(texts.values())) == 1:
                continue
            key = f"{prefix}.{field['key']}.{attribute}"
            out[attribute] = key
            for lang, text in texts.items():
                strings[lang][key] = text
        fields.append(out)
    return fields, strings
