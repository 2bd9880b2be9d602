"""The words of the customer-facing pages (sign-up, card, posters), in Russian and English.

Every string a customer reads on those pages lives here, so a translation is one edit and a
missing one fails a test rather than a customer. Values are ``str.format`` templates; plural
words go through :func:`plural`, which follows the CLDR rules of the language.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency
from babel.numbers import format_decimal
from babel.numbers import get_currency_symbol

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}

STRINGS: dict[str, dict[str, str]] = {
    # --- shared --------------------------------------------------------------------------
    "switch_language": {"ru": "Язык", "en": "Language"},
    "skip_to_content": {"ru": "К содержанию", "en": "Skip to content"},
    "not_found_title": {"ru": "Страница не найдена", "en": "Page not found"},
    "not_found_text": {
        "ru": "Проверьте ссылку или отсканируйте QR-код ещё раз.",
        "en": "Check the link or scan the QR code again.",
    },
    "too_many_title": {"ru": "Слишком много попыток", "en": "Too many attempts"},
    "too_many_text": {
        "ru": "Подождите минуту и попробуйте ещё раз.",
        "en": "Please wait a minute and try again.",
    },
    # --- join page -----------------------------------------------------------------------
    "join_title": {"ru": "Карта «{program}»", "en": "{program} card"},
    "join_heading": {"ru": "Получите карту за минуту", "en": "Get your card in a minute"},
    "join_intro": {
        "ru": "Заполните короткую форму — и добавьте карту в Apple Wallet или Google Wallet.",
        "en": "Fill in this short form, then add the card to Apple Wallet or Google Wallet.",
    },
    "required_note": {"ru": "Поля со звёздочкой (*) обязательны.",
                      "en": "Fields marked with an asterisk (*) are required."},
    "optional": {"ru": "необязательно", "en": "optional"},
    "field_name": {"ru": "Имя", "en": "Name"},
    "field_phone": {"ru": "Телефон", "en": "Phone"},
    "hint_phone": {"ru": "Например, +7 912 345-67-89", "en": "For example, +7 912 345-67-89"},
    "field_email": {"ru": "Электронная почта", "en": "E-mail"},
    "field_birthday": {"ru": "День рождения", "en": "Birthday"},
    "yes": {"ru": "Да", "en": "Yes"},
    "no": {"ru": "Нет", "en": "No"},
    "choose": {"ru": "Выберите…", "en": "Choose…"},
    "submit": {"ru": "Получить карту", "en": "Get my card"},
    "privacy_note": {"ru": "Ваши данные передаются программе «{program}».",
                     "en": "Your details go to {program}."},
    "errors_summary": {
        "ru": "Проверьте поля, отмеченные ниже.",
        "en": "Please check the fields marked below.",
    },
    # field errors
    "error_required": {"ru": "Заполните это поле.", "en": "Please fill in this field."},
    "error_choose": {"ru": "Выберите один из вариантов.",
                     "en": "Please choose one of the options."},
    "error_too_long": {"ru": "Слишком длинно: не больше {limit} символов.",
                       "en": "Too long: at most {limit} characters."},
    "error_phone": {
        "ru": "Проверьте номер. Например: +7 912 345-67-89.",
        "en": "Please check the number. For example: +7 912 345-67-89.",
    },
    "error_email": {"ru": "Проверьте адрес. Например: name@example.com.",
                    "en": "Please check the address. For example: name@example.com."},
    "error_date": {"ru": "Укажите дату в формате ГГГГ-ММ-ДД.",
                   "en": "Please enter a date as YYYY-MM-DD."},
    "error_birthday": {"ru": "Укажите настоящую дату рождения.",
                       "en": "Please enter your real date of birth."},
    "error_consent": {
        "ru": "Без вашего согласия мы не можем выпустить карту.",
        "en": "We need your consent to issue the card.",
    },
    "error_invalid": {"ru": "Проверьте это поле.", "en": "Please check this field."},
    "error_expired": {
        "ru": "Страница устарела. Проверьте данные и отправьте форму ещё раз.",
        "en": "This page has expired. Please check your details and send the form again.",
    },
    # a phone that is already enrolled: say where to get the card, never show it
    "enrolled_title": {"ru": "Похоже, вы уже участвуете",
                       "en": "Looks like you are already a member"},
    "enrolled_text": {
        "ru": "Этот номер телефона уже есть в программе. Чтобы карту не получил кто-то "
              "другой, мы не показываем её на этой странице.",
        "en": "This phone number is already in the program. So that nobody else can take "
              "your card, we do not show it on this page.",
    },
    "enrolled_till": {
        "ru": "Подойдите к кассе: сотрудник найдёт вашу карту по номеру телефона и поможет "
              "добавить её в телефон.",
        "en": "Please ask at the till: staff will find your card by your phone number and "
              "help you add it to your phone.",
    },
    "back_to_form": {"ru": "Вернуться к форме", "en": "Back to the form"},
    # --- card page -----------------------------------------------------------------------
    "card_title": {"ru": "Ваша карта «{program}»", "en": "Your {program} card"},
    "card_heading": {"ru": "Ваша карта", "en": "Your card"},
    "card_hello": {"ru": "{name}, карта готова!", "en": "{name}, your card is ready!"},
    "add_to_phone": {"ru": "Добавьте карту в телефон — баланс будет обновляться сам.",
                     "en": "Add the card to your phone and the balance will update by itself."},
    "add_apple": {"ru": "Добавить в Apple Wallet", "en": "Add to Apple Wallet"},
    "add_google": {"ru": "Добавить в Google Wallet", "en": "Add to Google Wallet"},
    "card_closed": {"ru": "Эта карта закрыта.", "en": "This card is closed."},
    "balance": {"ru": "Баланс", "en": "Balance"},
    "tier": {"ru": "Уровень", "en": "Tier"},
    "no_tier": {"ru": "пока нет", "en": "none yet"},
    "progress_points": {"ru": "До уровня «{tier}» осталось {points}.",
                        "en": "{points} to go until {tier}."},
    "progress_visits": {"ru": "До уровня «{tier}» осталось {visits}.",
                        "en": "{visits} to go until {tier}."},
    "progress_spend": {"ru": "До уровня «{tier}» осталось потратить {amount}.",
                       "en": "Spend {amount} more to reach {tier}."},
    "progress_label": {"ru": "Прогресс до следующего уровня", "en": "Progress to the next tier"},
    "top_tier": {"ru": "У вас максимальный уровень.", "en": "You have reached the top tier."},
    "card_number": {"ru": "Номер карты", "en": "Card number"},
    "card_qr_alt": {"ru": "QR-код с номером карты {number}",
                    "en": "QR code with card number {number}"},
    "no_wallet": {
        "ru": "Нет приложения Wallet? Покажите этот код на кассе или назовите номер карты.",
        "en": "No wallet app? Show this code at the till or tell them the card number.",
    },
    "keep_private": {
        "ru": "Сохраните эту страницу в закладках и не пересылайте ссылку: это ваша личная карта.",
        "en": "Bookmark this page and do not share the link: it is your personal card.",
    },
    "rules": {"ru": "Правила программы", "en": "Program rules"},
    "earning": {"ru": "{points} за каждые {amount}.", "en": "{points} for every {amount} spent."},
    "tiers": {"ru": "Уровни", "en": "Tiers"},
    "tier_from_points": {"ru": "от {points}", "en": "from {points}"},
    "tier_from_spend": {"ru": "от {amount} покупок", "en": "from {amount} spent"},
    "tier_multiplier": {"ru": "начисление ×{multiplier}", "en": "earns ×{multiplier}"},
    "terms": {"ru": "Условия", "en": "Terms"},
    "contact": {"ru": "Контакты", "en": "Contact"},
    # --- posters -------------------------------------------------------------------------
    "poster_title": {"ru": "Плакат «{program}»", "en": "{program} poster"},
    "poster_heading": {"ru": "Бонусная карта — в вашем телефоне",
                       "en": "Your loyalty card, on your phone"},
    "poster_step_scan": {"ru": "Наведите камеру телефона на QR-код",
                         "en": "Point your phone's camera at the QR code"},
    "poster_step_form": {"ru": "Заполните короткую форму", "en": "Fill in a short form"},
    "poster_step_add": {"ru": "Добавьте карту в Apple Wallet или Google Wallet",
                        "en": "Add the card to Apple Wallet or Google Wallet"},
    "poster_fast": {"ru": "Меньше минуты, без скачивания приложений",
                    "en": "Under a minute, no app to download"},
    "poster_or_open": {"ru": "или откройте", "en": "or open"},
    "poster_size_a6": {"ru": "A6 — на стол", "en": "A6 — table card"},
    "poster_size_a4": {"ru": "A4 — плакат", "en": "A4 — poster"},
    "poster_print_hint": {
        "ru": "Печатайте в масштабе 100 % и без полей.",
        "en": "Print at 100 % scale with no margins.",
    },
}

# Plural words, by CLDR plural category of the language.
PLURALS: dict[str, dict[str, dict[str, str]]] = {
    "point": {
        "ru": {"one": "балл", "few": "балла", "many": "баллов", "other": "балла"},
        "en": {"one": "point", "other": "points"},
    },
    "visit": {
        "ru": {"one": "визит", "few": "визита", "many": "визитов", "other": "визита"},
        "en": {"one": "visit", "other": "visits"},
    },
}


def t(lang: str, key: str, /, **values: object) -> str:
    """The string ``key`` in ``lang`` (English when missing), with ``values`` filled in."""
    texts = STRINGS[key]
    text = texts.get(lang) or texts["en"]
    return text.format(**values) if values else text


def plural(lang: str, word: str, number: int | Decimal) -> str:
    """``number`` followed by ``word`` in the right plural form (``"5 баллов"``)."""
    return f"{format_number(lang, number)}\u00a0{plural_word(lang, word, number)}"


def plural_word(lang: str, word: str, number: int | Decimal) -> str:
    """``word`` in the plural form that goes with ``number`` (``"баллов"`` for 5)."""
    forms = PLURALS[word].get(lang) or PLURALS[word]["en"]
    category = Locale.parse(lang).plural_form(number)
    return forms.get(category, forms["other"])


def format_number(lang: str, number: int | Decimal) -> str:
    return str(format_decimal(number, locale=lang))


def format_money(lang: str, amount: Decimal, currency: str) -> str:
    """``1 500 ₽`` / ``1,500 RUB`` / ``$1,500``: whole amounts without decimals; the ISO code
    after the number where the language has no symbol of its own for the currency."""
    whole = amount == amount.to_integral_value()
    digits = "#,##0" if whole else "#,##0.00"
    pattern: str | None = None
    if lang == "ru" or get_currency_symbol(currency, locale=lang) == currency:
        pattern = f"{digits}\u00a0¤¤" if lang != "ru" else f"{digits}\u00a0¤"
    elif whole:
        pattern = "¤#,##0"
    return str(format_currency(amount, currency, format=pattern, locale=lang,
                               currency_digits=pattern is None))


def best_language(requested: str | None, remembered: str | None,
                  accepted: Iterable[str], available: Iterable[str]) -> str:
    """The language to show: the one asked for on the page, then the remembered one, then
    the browser's first acceptable one, then the first available."""
    options = [lang for lang in available if lang in LANGUAGES] or list(LANGUAGES)
    for candidate in (requested, remembered):
        if candidate in options:
            return candidate
    for candidate in accepted:
        base = candidate.split("-")[0].split("_")[0].lower()
        if base in options:
            return base
    return options[0]


def localized(texts: dict[str, str] | None, lang: str) -> str:
    """One text of a ``{"ru": ..., "en": ...}`` mapping: ``lang``'s, else any other."""
    if not texts:
        return ""
    return texts.get(lang) or next(iter(texts.values()))
