"""The console's words in Russian and English, one module per area of the console.

Each module of this package holds ``WORDS = {"key": {"ru": "…", "en": "…"}, …}`` (values are
``str.format`` templates) for its own pages; the registry loads every module it finds here,
so a new area adds a module and edits nothing else. A key defined twice is an error at load,
and a test checks that every key has both languages.

Plural words are dicts of CLDR plural forms instead of strings
(``{"ru": {"one": "{n} балл", "few": "{n} балла", "many": "{n} баллов", "other": "…"},
"en": {"one": "{n} point", "other": "{n} points"}}``), read with :func:`plural`. Dates and
numbers go through Babel (:func:`format_datetime`, :func:`format_number`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}

Words = Mapping[str, Mapping[str, Any]]

_REGISTRY: dict[str, Mapping[str, Any]] = {}
_ORIGIN: dict[str, str] = {}


def register(area: str, words: Words) -> None:
    """Add an area's words.

    :raises ValueError: a key another area (or this one) defined already.
    """
    for key, texts in words.items():
        if key in _REGISTRY and _ORIGIN[key] != area:
            raise ValueError(f"console word {key!r} of {area} is defined by {_ORIGIN[key]}")
        _REGISTRY[key] = texts
        _ORIGIN[key] = area


def _load() -> None:
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register(info.name, getattr(module, "WORDS", {}))


def all_words() -> Mapping[str, Mapping[str, Any]]:
    """Every registered key and its texts (for tests)."""
    return _REGISTRY


def t(lang: str, key: str, /, **values: object) -> str:
    """The text of ``key`` in ``lang`` with ``values`` filled in.

    :raises KeyError: an unknown key (a typo fails the page's test, not a user).
    """
    text = _REGISTRY[key][lang]
    if not isinstance(text, str):
        raise TypeError(f"console word {key!r} is plural; use plural()")
    return text.format(**values) if values else text


def plural(lang: str, key: str, number: int | Decimal, /, **values: object) -> str:
    """The plural form of ``key`` for ``number`` in ``lang``; ``{n}`` is the number as the
    language writes it."""
    forms = _REGISTRY[key][lang]
    form = Locale.parse(lang).plural_form(number)
    text = forms.get(form) or forms["other"]
    return str(text).format(n=format_number(lang, number), **values)


def format_number(lang: str, number: int | Decimal) -> str:
    """``number`` as ``lang`` writes it (``1 234`` in Russian, ``1,234`` in English)."""
    return format_decimal(number, locale=lang)


def format_datetime(lang: str, moment: dt.datetime | None, time_zone: str = "UTC") -> str:
    """``moment`` in the merchant's ``time_zone``, as ``lang`` writes a short date and time;
    empty for none."""
    if moment is None:
        return ""
    from zoneinfo import ZoneInfo

    return babel_format_datetime(moment.astimezone(ZoneInfo(time_zone)), "short", locale=lang)


def best_language(*candidates: str | None) -> str:
    """The first candidate that is a console language, else the default."""
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


_load()
