"""The words of the customer-facing pages (sign-up, card, posters), in Russian and English,
the expiry reminder the card itself shows, and what a card holds for its program's kind
(:func:`standing_words`, for the card page and the Google card). A merchant's own texts are
one text or one per language (:func:`localized`, :func:`program_text`).

Every string a customer reads on those pages lives here, so a translation is one edit and a
missing one fails a test rather than a customer. Values are ``str.format`` templates; plural
words go through :func:`plural`, which follows the CLDR rules of the language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from babel.numbers import format_decimal
from babel.numbers import format_percent as babel_format_percent
from babel.numbers import get_currency_symbol

from .errors import ValidationFailed
from .rules import NextDiscount
from .rules import Standing
from .rules import TierProgress

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
    # the "Add to Google Wallet" link, when Google does not answer at that moment
    "google_unavailable_title": {"ru": "Google Wallet сейчас не отвечает",
                                 "en": "Google Wallet is not answering right now"},
    "google_unavailable_text": {
        "ru": "Карта никуда не делась. Попробуйте добавить её ещё раз через минуту.",
        "en": "Your card is safe. Please try adding it again in a minute.",
    },
    "try_again": {"ru": "Попробовать ещё раз", "en": "Try again"},
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
    "field_referral": {"ru": "Код приглашения", "en": "Referral code"},
    "hint_referral": {"ru": "Если вас пригласил друг, введите его код.",
                      "en": "If a friend invited you, enter their code."},
    "yes": {"ru": "Да", "en": "Yes"},
    "no": {"ru": "Нет", "en": "No"},
    "choose": {"ru": "Выберите…", "en": "Choose…"},
    "submit": {"ru": "Получить карту", "en": "Get my card"},
    "privacy_note": {"ru": "Ваши данные передаются программе «{program}».",
                     "en": "Your details go to {program}."},
    # the separate, optional marketing consent (the program may replace the text)
    "marketing_consent": {
        "ru": "Я согласен(на) получать рекламные сообщения и предложения программы, в том "
              "числе уведомления на карте в Apple Wallet и Google Wallet.",
        "en": "I agree to receive marketing messages and offers from the program, including "
              "notifications on the card in Apple Wallet and Google Wallet.",
    },
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
    "error_referral": {
        "ru": "Такого кода нет. Проверьте его или оставьте поле пустым.",
        "en": "We do not know this code. Please check it or leave the field empty.",
    },
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
    "stamp_debt": {
        "ru": "Долг по штампам после возврата: {stamps}. Следующие штампы сначала погасят его.",
        "en": "{stamps} owed for a refunded purchase: the next stamps pay this off first.",
    },
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
    # inviting friends: the member's referral code and the link that carries it
    "referral_heading": {"ru": "Пригласите друга", "en": "Invite a friend"},
    "referral_text": {
        "ru": "Отправьте другу ссылку или назовите код: он введёт его, когда будет получать "
              "карту.",
        "en": "Send a friend the link or tell them your code: they enter it when they get "
              "their card.",
    },
    "referral_bonus_both": {"ru": "После первой покупки друга бонус получите вы оба.",
                            "en": "After your friend's first purchase, you both get a bonus."},
    "referral_bonus_you": {"ru": "После первой покупки друга вы получите бонус.",
                           "en": "After your friend's first purchase, you get a bonus."},
    "referral_bonus_friend": {"ru": "Друг получит бонус за первую покупку.",
                              "en": "Your friend gets a bonus on their first purchase."},
    "referral_code": {"ru": "Ваш код", "en": "Your code"},
    "referral_link": {"ru": "Ссылка для друга", "en": "Link for a friend"},
    "rules": {"ru": "Правила программы", "en": "Program rules"},
    "earning": {"ru": "{points} за каждые {amount}.", "en": "{points} for every {amount} spent."},
    "tiers": {"ru": "Уровни", "en": "Tiers"},
    "tier_from_points": {"ru": "от {points}", "en": "from {points}"},
    "tier_from_spend": {"ru": "от {amount} покупок", "en": "from {amount} spent"},
    "tier_multiplier": {"ru": "начисление ×{multiplier}", "en": "earns ×{multiplier}"},
    "terms": {"ru": "Условия", "en": "Terms"},
    "contact": {"ru": "Контакты", "en": "Contact"},
    # --- what the program gives and what the card holds, per program kind ----------------
    "perk_stamps": {"ru": "Соберите {stamps} — и получите {reward}.",
                    "en": "Collect {stamps} and get {reward}."},
    "perk_stamp_purchase": {"ru": "{stamps} за каждую покупку.",
                            "en": "{stamps} for every purchase."},
    "perk_stamp_purchase_from": {"ru": "{stamps} за каждую покупку от {amount}.",
                                 "en": "{stamps} for every purchase from {amount}."},
    "perk_cashback": {"ru": "Кешбэк {percent} с каждой покупки — оплачивайте им покупки.",
                      "en": "{percent} of every purchase back as cashback to pay with."},
    "perk_discount": {"ru": "Скидка {percent} на покупки.", "en": "{percent} off your purchases."},
    "perk_discount_range": {
        "ru": "Скидка от {low} до {high}: чем больше покупок, тем она выше.",
        "en": "A discount from {low} up to {high}: the more you buy, the higher it gets.",
    },
    "stamps_collected": {"ru": "Штампы", "en": "Stamps"},
    "stamps_left": {"ru": "Ещё {stamps} — и {reward}.", "en": "{stamps} more to {reward}."},
    "rewards_ready": {"ru": "Готово к получению: {count} × {reward}.",
                      "en": "Ready to claim: {count} × {reward}."},
    "cashback_balance": {"ru": "Кешбэк на счёте", "en": "Cashback balance"},
    "cashback_share": {"ru": "Кешбэк {percent} с каждой покупки.",
                       "en": "{percent} of every purchase comes back."},
    "your_discount": {"ru": "Ваша скидка", "en": "Your discount"},
    "next_discount_spend": {"ru": "Скидка {percent} — после покупок ещё на {amount}.",
                            "en": "{percent} off after spending {amount} more."},
    "next_discount_points": {"ru": "Скидка {percent} — ещё {points}.",
                             "en": "{percent} off with {points} more."},
    "next_discount_visits": {"ru": "Скидка {percent} — ещё {visits}.",
                             "en": "{percent} off after {visits} more."},
    "top_discount": {"ru": "У вас максимальная скидка.", "en": "You have the highest discount."},
    "tier_from_visits": {"ru": "от {visits}", "en": "from {visits}"},
    "tier_discount": {"ru": "скидка {percent}", "en": "{percent} off"},
    "tier_cashback": {"ru": "кешбэк {percent}", "en": "cashback {percent}"},
    # headings of those lines where a card shows them apart (the Google card's modules)
    "heading_next_reward": {"ru": "До подарка", "en": "Next reward"},
    "heading_rewards": {"ru": "Подарки", "en": "Rewards"},
    "heading_cashback": {"ru": "Кешбэк", "en": "Cashback"},
    "heading_next_discount": {"ru": "Следующая скидка", "en": "Next discount"},
    "heading_next_tier": {"ru": "Следующий уровень", "en": "Next level"},
    # --- the card itself (the pass, the Google object, the API) ---------------------------
    # The date leads in Russian: its long form ends in "г.", which a full stop would double.
    "expiry_reminder": {"ru": "{date} {expire} {points}. Успейте потратить!",
                        "en": "{points} {expire} on {date}. Don't miss out!"},
    # the message a new tier sends to the Google card (its tier field does not notify)
    "google_tier_header": {"ru": "Новый уровень", "en": "New level"},
    "google_tier_body": {"ru": "Ваш уровень теперь «{tier}».",
                         "en": "Your level is now {tier}."},
    # --- the NPS survey ------------------------------------------------------------------
    "survey_title": {"ru": "Ваше мнение о «{program}»", "en": "Your opinion of {program}"},
    "survey_question": {
        "ru": "Насколько вероятно, что вы порекомендуете нас другу или коллеге?",
        "en": "How likely are you to recommend us to a friend or colleague?",
    },
    "survey_scale_hint": {"ru": "0 — точно нет, 10 — обязательно порекомендую",
                          "en": "0 — not at all likely, 10 — extremely likely"},
    "survey_comment": {"ru": "Что нам сделать лучше?",
                       "en": "What could we do better?"},
    "survey_submit": {"ru": "Отправить", "en": "Send"},
    "survey_bonus": {"ru": "За ответ начислим бонус: {bonus}.",
                     "en": "Answering earns a bonus: {bonus}."},
    "survey_answered": {
        "ru": "Вы уже ответили {date}. Ответ можно изменить до {until}.",
        "en": "You answered on {date}. You can change your answer until {until}.",
    },
    "survey_thanks_title": {"ru": "Спасибо за ответ!", "en": "Thank you for answering!"},
    "survey_thanks_text": {"ru": "Ваше мнение помогает нам становиться лучше.",
                           "en": "Your opinion helps us get better."},
    "survey_bonus_credited": {"ru": "Начислено: {bonus}.", "en": "Credited: {bonus}."},
    "survey_back_to_card": {"ru": "К карте", "en": "Back to the card"},
    "survey_link": {"ru": "Оцените нас: 1 вопрос", "en": "Rate us: one question"},
    "error_score": {"ru": "Выберите оценку от 0 до 10.", "en": "Choose a score from 0 to 10."},
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
    # The verb agrees with the number of points: "сгорит 1 балл", "сгорят 5 баллов".
    "expire": {
        "ru": {"one": "сгорит", "few": "сгорят", "many": "сгорят", "other": "сгорят"},
        "en": {"one": "expires", "other": "expire"},
    },
    "stamp": {
        "ru": {"one": "штамп", "few": "штампа", "many": "штампов", "other": "штампа"},
        "en": {"one": "stamp", "other": "stamps"},
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


def expiry_reminder(lang: str, points: int, expires_on: dt.date) -> str:
    """The reminder a card shows of ``points`` that expire on ``expires_on``."""
    return t(lang, "expiry_reminder", points=plural(lang, "point", points),
             expire=plural_word(lang, "expire", points),
             date=format_date(expires_on, "long", locale=lang))


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


def localized(texts: str | Mapping[str, str] | None, lang: str) -> str:
    """One text of a ``{"ru": ..., "en": ...}`` mapping: ``lang``'s, else any other; a plain
    string is the same in every language."""
    if not texts:
        return ""
    if isinstance(texts, str):
        return texts
    return texts.get(lang) or next(iter(texts.values()))


def text_languages_error(value: str | Mapping[str, str] | None,
                         languages: Iterable[str]) -> str | None:
    """Why a merchant's text does not fit a program in ``languages`` (it names a language
    the program does not have), or None when it fits; one text fits every program."""
    if not isinstance(value, Mapping):
        return None
    languages = list(languages)
    extra = [language for language in value if language not in languages]
    if extra:
        return f"the program is in {', '.join(languages)}, not in {', '.join(extra)}"
    return None


def program_text(value: str | Mapping[str, str], languages: Iterable[str],
                 field: str) -> str | dict[str, str]:
    """A merchant's text for a program in ``languages``: one text as it is, texts per
    language in the program's order (the first is the one kept where a single text is
    needed).

    :raises ValidationFailed: the texts name a language the program does not have.
    """
    if isinstance(value, str):
        return value
    languages = list(languages)
    problem = text_languages_error(value, languages)
    if problem is not None:
        raise ValidationFailed(f"{field}: {problem}", field=field)
    return {language: value[language] for language in languages if language in value}


def format_percent(lang: str, percent: Decimal) -> str:
    """``12,5 %`` / ``12.5%``: a percentage (``12.5`` for 12.5 %) as the language writes it."""
    return str(babel_format_percent(percent / 100, locale=lang, decimal_quantization=False))


# --- what a card holds, in words --------------------------------------------------------------


@dataclass(frozen=True)
class StandingWords:
    """How a card's standing (:func:`wallet_service.rules.standing`) reads in one language:
    its main figure (``value``, with ``unit`` after it and ``label`` above it) and the lines
    about what comes next, as ``(id, heading, text)``."""

    label: str
    value: str
    unit: str
    lines: tuple[tuple[str, str, str], ...]


def standing_words(lang: str, standing: Standing,
                   points_label: str | None = None) -> StandingWords:
    """The card's standing in ``lang``: points; stamps as ``3 / 6`` with the stamps still
    missing and the rewards ready; cashback as money (``515 ₽``, ``515 RUB``) with the share
    a purchase returns; the discount with the next one. The way to the next tier (programs
    with tiers) is the last line."""
    lines: list[tuple[str, str, str]] = []
    reward = localized(standing.reward, lang)
    if standing.stamps is not None and standing.stamps_goal is not None:
        label, unit = t(lang, "stamps_collected"), ""
        value = (f"{format_number(lang, min(standing.stamps, standing.stamps_goal))} / "
                 f"{format_number(lang, standing.stamps_goal)}")
        lines.append(("next_reward", t(lang, "heading_next_reward"), t(
            lang, "stamps_left", stamps=plural(lang, "stamp", standing.stamps_left or 0),
            reward=reward)))
        if standing.rewards_ready:
            lines.append(("rewards", t(lang, "heading_rewards"), t(
                lang, "rewards_ready", count=format_number(lang, standing.rewards_ready),
                reward=reward)))
    elif standing.cashback is not None:
        label, unit = t(lang, "cashback_balance"), ""
        value = format_money(lang, standing.cashback, standing.currency)
        if standing.cashback_percent is not None:
            lines.append(("cashback", t(lang, "heading_cashback"), t(
                lang, "cashback_share", percent=format_percent(lang, standing.cashback_percent))))
    elif standing.kind == "discount":
        label, unit = t(lang, "your_discount"), ""
        value = format_percent(lang, standing.discount_percent or Decimal(0))
    else:
        label, value = t(lang, "balance"), format_number(lang, standing.points or 0)
        unit = points_label or plural_word(lang, "point", standing.points or 0)
    upcoming = standing.next_discount
    if upcoming is not None:
        lines.append(("next_discount", t(lang, "heading_next_discount"),
                      _next_discount(lang, upcoming, standing.currency)))
    elif standing.kind == "discount" and standing.tier_progress is not None:
        lines.append(("next_discount", t(lang, "heading_next_discount"),
                      t(lang, "top_discount")))
    if standing.tier_progress is not None:
        lines.append(("next_tier", t(lang, "heading_next_tier"),
                      tier_progress_text(lang, standing.tier_progress, standing.currency)))
    return StandingWords(label, value, unit, tuple(lines))


def _next_discount(lang: str, upcoming: NextDiscount, currency: str) -> str:
    percent = format_percent(lang, upcoming.percent)
    if upcoming.basis == "lifetime_spend":
        return t(lang, "next_discount_spend", percent=percent,
                 amount=format_money(lang, upcoming.left, currency))
    if upcoming.basis == "visits":
        return t(lang, "next_discount_visits", percent=percent,
                 visits=plural(lang, "visit", int(upcoming.left)))
    return t(lang, "next_discount_points", percent=percent,
             points=plural(lang, "point", int(upcoming.left)))


def tier_progress_text(lang: str, progress: TierProgress, currency: str) -> str:
    """The way to the next tier in words: what is left in the tier basis's unit, or that
    the card is at the top."""
    if progress.next_tier is None:
        return t(lang, "top_tier")
    if progress.basis == "lifetime_spend":
        return t(lang, "progress_spend", tier=progress.next_tier,
                 amount=format_money(lang, progress.left, currency))
    if progress.basis == "visits":
        return t(lang, "progress_visits", tier=progress.next_tier,
                 visits=plural(lang, "visit", int(progress.left)))
    return t(lang, "progress_points", tier=progress.next_tier,
             points=plural(lang, "point", int(progress.left)))
