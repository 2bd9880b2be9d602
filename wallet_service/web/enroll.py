"""The customer's pages: the sign-up form behind the poster's QR code (``/join/<token>``) and
the member's card page (``/c/<token>``) with the wallet buttons, the "Add to Google
Wallet" link behind its button (``/c/<token>/google``) and the NPS survey
(``/c/<token>/survey``).

Plain HTML forms, no JavaScript: the page must work on any phone in under a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from http import HTTPStatus
from typing import Any

import segno
from flask import Blueprint
from flask import Response
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from .. import i18n
from .. import rules
from .. import urls
from ..apple.assets import load_template
from ..db import utcnow
from ..errors import ConfigurationError
from ..errors import InvalidInput
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..google import GoogleWalletError
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import ProgramImage
from ..ratelimit import RateLimiter
from ..schemas import DEFAULT_CONSENT
from ..schemas import MemberCreate
from ..services import google as google_cards
from ..services import nps
from ..services.ledger import tier_totals
from ..services.members import NewMember
from ..services.members import enroll_member
from ..services.members import marketing_consent_text
from ..services.members import normalize_phone
from ..validation import EMAIL
from . import get_session
from . import wallet
from .csrf import csrf_token
from .csrf import csrf_valid
from .links import apple_pass_url
from .links import card_url
from .links import google_save_url

bp = Blueprint("enroll", __name__)
log = logging.getLogger(__name__)

LANG_COOKIE = "lang"
LANG_COOKIE_AGE = 365 * 24 * 3600

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_RGB = re.compile(r"^rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$")
_ANDROID = re.compile(r"\bAndroid\b", re.IGNORECASE)
_FALLBACK_COLORS = {"bg": "#182c52", "fg": "#ffffff", "accent": "#dead28"}
# The lengths ``MemberCreate.referral_code`` accepts.
REFERRAL_CODE_MIN, REFERRAL_CODE_MAX = 4, 16
#: What the page says to wait before tapping "Add to Google Wallet" again when Google did
#: not answer.
GOOGLE_RETRY_SECONDS = 60
# The message for a field the service refused (the form checks the rest itself).
_SERVICE_ERRORS = {"phone": "error_phone", "referral_code": "error_referral"}


# --- pages ------------------------------------------------------------------------------


@bp.get("/join/<join_token>")
def join_page(join_token: str) -> Response:
    """The sign-up form of a program."""
    if (limited := _limited("pages")) is not None:
        return limited
    program = _program_by_token(join_token)
    if program is None:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    lang = _language(program.languages)
    values: MultiDict[str, str] = MultiDict()
    # A member's share link (``?ref=CODE``) fills in their referral code.
    ref = (request.args.get("ref") or "").strip()[:REFERRAL_CODE_MAX]
    if ref:
        values["referral_code"] = ref
    return _join_form(program, lang, values=values, errors={})


@bp.post("/join/<join_token>")
def join_submit(join_token: str) -> ResponseReturnValue:
    """Enroll the customer and send them (303) to their card page."""
    if (limited := _limited("join")) is not None:
        return limited
    program = _program_by_token(join_token)
    if program is None:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    available = _languages(program)
    posted_lang = request.form.get("lang", "")
    lang = posted_lang if posted_lang in available else _language(program.languages)
    if not csrf_valid():
        return _join_form(program, lang, values=request.form,
                          errors={"form": i18n.t(lang, "error_expired")},
                          status=HTTPStatus.BAD_REQUEST)
    settings = wallet().settings
    data, errors = read_join_form(request.form, program.enrollment or {}, lang,
                                  settings.default_region)
    if data is None:
        return _join_form(program, lang, values=request.form, errors=errors,
                          status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    try:
        member = enroll_member(session, program.merchant_id, program.id, data,
                               default_region=settings.default_region, source="join_page")
    except ResourceConflict:
        # Never hand the existing card to whoever typed the number: send them to the till.
        session.rollback()
        return message_page("enrolled", HTTPStatus.CONFLICT, lang=lang, program=program,
                            back=url_for("enroll.join_page", join_token=join_token))
    except InvalidInput as exc:
        session.rollback()
        field = _form_field(exc.field)
        return _join_form(program, lang, values=request.form,
                          errors={field: i18n.t(lang, _SERVICE_ERRORS.get(field,
                                                                          "error_invalid"))},
                          status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session.commit()
    return redirect(card_url(settings, member.card), HTTPStatus.SEE_OTHER)


@bp.get("/join/<join_token>/logo.png")
def program_logo(join_token: str) -> Response:
    """The program's logo (the sharpest size uploaded, else the template's), for the sign-up
    and card pages and for Google Wallet, which fetches images by URL."""
    program = _program_by_token(join_token)
    if program is None:
        return Response(status=HTTPStatus.NOT_FOUND)
    data = logo_bytes(program.id)
    if data is None:
        # No upload: the template's logo (Google Wallet needs a logo URL for every program).
        from ..apple.assets import load_template

        data = load_template(program.template).images["logo@3x.png"].data
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/join/<join_token>/google-logo.png")
def google_logo(join_token: str) -> Response:
    """The program's logo as its Google Wallet class shows it: square, 660 px, on the
    program's colour (google-wallet spec §2.4). Google fetches it by URL, which names the
    program's revision, so it may be kept long."""
    if not wallet().google.enabled:
        return Response(status=HTTPStatus.NOT_FOUND)
    program = _program_by_token(join_token)
    if program is None:
        return Response(status=HTTPStatus.NOT_FOUND)
    data = google_cards.google_logo(get_session(), wallet().google, program)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/c/<download_token>/google")
def add_to_google(download_token: str) -> Response:
    """The card page's "Add to Google Wallet" link: the card's Google object is inserted
    now if it is not yet (reading the card never does), then 303 to Google's save URL
    (google-wallet spec §3.3). 503 with ``Retry-After`` and a page saying to try again
    when Google does not answer; 404 for an unknown or closed card, or while Google
    Wallet is off."""
    if (limited := _limited("pages")) is not None:
        return limited
    google = wallet().google
    session = get_session()
    card = session.scalar(
        select(LoyaltyCard).where(LoyaltyCard.download_token == download_token)
    )
    if card is None or card.status != "active" or not google.enabled:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    try:
        target = google_cards.save_link(session, google, card)
    except (GoogleWalletError, InvalidInput) as exc:
        session.rollback()
        # InvalidInput: what the program or the settings give Google is refused by its
        # rules (an http:// WALLET_PUBLIC_URL, spec §2.4): the customer still gets a page.
        log.log(logging.WARNING if isinstance(exc, GoogleWalletError) else logging.ERROR,
                "Google Wallet object of card %s not ready: %s", card.id, exc)
        program = session.get_one(LoyaltyProgram, card.program_id)
        response = message_page("google_unavailable", HTTPStatus.SERVICE_UNAVAILABLE,
                                program=program, back=request.path)
        response.headers["Retry-After"] = str(GOOGLE_RETRY_SECONDS)
        return response
    session.commit()
    response = redirect(target, HTTPStatus.SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/c/<download_token>")
def card_page(download_token: str) -> Response:
    """The member's card: wallet buttons, balance, tier, the card number as QR code and text,
    and the program's rules. The link is as private as the pass download link."""
    if (limited := _limited("pages")) is not None:
        return limited
    session = get_session()
    card = session.scalar(
        select(LoyaltyCard).where(LoyaltyCard.download_token == download_token)
    )
    if card is None:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    program = session.get_one(LoyaltyProgram, card.program_id)
    member = session.get_one(Member, card.member_id)
    lang = _language(program.languages)
    tr = partial(i18n.t, lang)
    settings = wallet().settings
    buttons = []
    if card.status == "active":
        buttons.append({"kind": "apple", "url": apple_pass_url(settings, card),
                        "label": tr("add_apple")})
        google = google_save_url(settings, card)
        if google is not None:
            buttons.append({"kind": "google", "url": google, "label": tr("add_google")})
        if _ANDROID.search(request.headers.get("User-Agent", "")):
            buttons.reverse()
    context: dict[str, Any] = {
        "member": member,
        "buttons": buttons,
        **card_face(session, card, program, lang),
        "rules": program_rules(program, lang),
        "referral": referral(program, card, settings.public_url, lang),
        "survey": (url_for("enroll.survey_page", download_token=card.download_token)
                   if card.status == "active" and nps.SurveySettings.of(program).enabled
                   else None),
    }
    response = _render("enroll/card.html", program, lang, **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def card_face(session: Any, card: LoyaltyCard, program: LoyaltyProgram,
              lang: str) -> dict[str, Any]:
    """What the face of the card shows (``enroll/_card_face.html``): the balance as the card's
    kind counts it, what comes next, the tier bar, and the card number as QR code and text.
    The card page and the console's member page both show it from here."""
    number = card.serial_number
    qr = segno.make(number, error="m").svg_inline(
        scale=1, border=4, omitsize=True, dark="#000", light="#fff",
        title=i18n.t(lang, "card_qr_alt", number=number), svgclass="qr")
    totals = tier_totals(session, card, program.rules or {}, utcnow().date())
    shown = rules.standing(program.kind, program.rules or {}, program.currency, card, totals)
    words = i18n.standing_words(lang, shown, (program.design or {}).get("points_label"))
    return {
        "card": card,
        "balance_label": words.label,
        "balance": words.value,
        "balance_unit": words.unit,
        # What comes next for the card's kind; the way to the next tier has its own bar.
        "standing": [{"id": line_id, "text": text} for line_id, _, text in words.lines
                     if line_id != "next_tier"],
        "progress": tier_progress(card, shown.tier_progress, program.currency, lang),
        "stamp_debt": (i18n.t(lang, "stamp_debt",
                              stamps=i18n.plural(lang, "stamp", card.stamp_debt))
                       if card.stamp_debt else None),
        "qr": Markup(qr),
        "card_number": " ".join(number[i:i + 4] for i in range(0, len(number), 4)),
    }


# --- the NPS survey ---------------------------------------------------------------------


@bp.get("/c/<download_token>/survey")
def survey_page(download_token: str) -> Response:
    """The survey: "How likely are you to recommend us?" 0–10 and a comment, with the
    member's answer of the period filled in when they gave one (answering again changes
    it, ``services.nps``). 404 for an unknown or closed card or a program that does not
    ask."""
    if (limited := _limited("pages")) is not None:
        return limited
    found = _survey_card(download_token)
    if found is None:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    card, program = found
    lang = _language(program.languages)
    answer = nps.period_answer(get_session(), card.id, nps.SurveySettings.of(program),
                               utcnow())
    values: dict[str, str] = {}
    if answer is not None:
        values = {"score": str(answer.score), "comment": answer.comment or ""}
    return _survey_form(card, program, lang, values=values, errors={}, answer=answer)


@bp.post("/c/<download_token>/survey")
def survey_submit(download_token: str) -> Response:
    """Record the answer and thank the member (saying what bonus it credited); the form
    again with a message per field (422) when the score is missing or the comment too
    long, or when the form's CSRF token is not the visitor's (400)."""
    if (limited := _limited("join")) is not None:
        return limited
    found = _survey_card(download_token)
    if found is None:
        return message_page("not_found", HTTPStatus.NOT_FOUND)
    card, program = found
    posted_lang = request.form.get("lang", "")
    lang = posted_lang if posted_lang in _languages(program) else _language(program.languages)
    values = {"score": (request.form.get("score") or "").strip(),
              "comment": (request.form.get("comment") or "").strip()}
    if not csrf_valid():
        return _survey_form(card, program, lang, values=values,
                            errors={"form": i18n.t(lang, "error_expired")},
                            status=HTTPStatus.BAD_REQUEST)
    errors = {}
    if not (values["score"].isdigit() and 0 <= int(values["score"]) <= 10):
        errors["score"] = i18n.t(lang, "error_score")
    if len(values["comment"]) > nps.MAX_COMMENT:
        errors["comment"] = i18n.t(lang, "error_too_long", limit=nps.MAX_COMMENT)
    if errors:
        return _survey_form(card, program, lang, values=values, errors=errors,
                            status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    try:
        answered = nps.answer_survey(session, card.id, int(values["score"]),
                                     values["comment"], lang)
    except ResourceNotFound:
        session.rollback()
        return message_page("not_found", HTTPStatus.NOT_FOUND, lang=lang, program=program)
    session.commit()
    bonus = _bonus_words(program, lang, answered.bonus) if answered.bonus else None
    response = _render("enroll/survey.html", program, lang, done=True, bonus=bonus,
                       card_link=url_for("enroll.card_page", download_token=download_token))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _survey_card(download_token: str) -> tuple[LoyaltyCard, LoyaltyProgram] | None:
    """The active card of ``download_token`` and its program, when the program asks."""
    if len(download_token) > 64:
        return None
    session = get_session()
    card = session.scalar(
        select(LoyaltyCard).where(LoyaltyCard.download_token == download_token))
    if card is None or card.status != "active":
        return None
    program = session.get_one(LoyaltyProgram, card.program_id)
    if not nps.SurveySettings.of(program).enabled:
        return None
    return card, program


def _bonus_words(program: LoyaltyProgram, lang: str, amount: int) -> str:
    """A bonus in the program's balance unit: stamps, cashback money or points."""
    if program.kind == "stamps":
        return i18n.plural(lang, "stamp", amount)
    if program.kind == "cashback":
        return i18n.format_money(lang, Decimal(amount) / rules.minor_units(program.currency),
                                 program.currency)
    return _points_word(lang, amount)


def _survey_form(card: LoyaltyCard, program: LoyaltyProgram, lang: str, *,
                 values: dict[str, str], errors: dict[str, str],
                 answer: Any = None, status: int = HTTPStatus.OK) -> Response:
    settings = nps.SurveySettings.of(program)
    answered = None
    if answer is not None:
        answered = i18n.t(lang, "survey_answered", date=answer.answered_at.date().isoformat(),
                          until=nps.next_answer_from(answer, settings).date().isoformat())
    bonus = (i18n.t(lang, "survey_bonus", bonus=_bonus_words(program, lang, settings.bonus))
             if settings.bonus and program.kind != "discount" else None)
    response = _render(
        "enroll/survey.html", program, lang, status=status, done=False, values=values,
        errors=errors, answered=answered, bonus=bonus, csrf_token=csrf_token(),
        max_comment=nps.MAX_COMMENT,
        action=url_for("enroll.survey_submit", download_token=card.download_token),
        card_link=url_for("enroll.card_page", download_token=card.download_token))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


# --- the sign-up form -------------------------------------------------------------------


def read_join_form(form: MultiDict[str, str], enrollment: dict[str, Any], lang: str,
                   default_region: str) -> tuple[NewMember | None, dict[str, str]]:
    """The member to enroll from the posted form, or None and a message per form field."""
    tr = partial(i18n.t, lang)
    errors: dict[str, str] = {}
    values = {k: (form.get(k) or "").strip()
              for k in ("name", "phone", "email", "birthday", "referral_code")}

    if not values["name"]:
        errors["name"] = tr("error_required")
    elif len(values["name"]) > 200:
        errors["name"] = tr("error_too_long", limit=200)
    if not values["phone"]:
        errors["phone"] = tr("error_required")
    else:
        try:
            normalize_phone(values["phone"][:40], default_region)
        except InvalidInput:
            errors["phone"] = tr("error_phone")
    if values["email"] and (len(values["email"]) > 254 or not EMAIL.match(values["email"])):
        errors["email"] = tr("error_email")
    if values["referral_code"] and not (
            REFERRAL_CODE_MIN <= len(values["referral_code"]) <= REFERRAL_CODE_MAX):
        errors["referral_code"] = tr("error_referral")
    birthday: dt.date | None = None
    if values["birthday"]:
        try:
            birthday = dt.date.fromisoformat(values["birthday"])
        except ValueError:
            errors["birthday"] = tr("error_date")
        else:
            if not dt.date(1900, 1, 1) <= birthday <= dt.date.today():
                errors["birthday"] = tr("error_birthday")

    answers: dict[str, str | bool] = {}
    for question in enrollment.get("questions", []):
        name = f"q_{question['key']}"
        value = (form.get(name) or "").strip()
        answer, error = _read_answer(question, value, tr)
        if error:
            errors[name] = error
        elif answer is not None:
            answers[question["key"]] = answer

    if form.get("consent") != "yes":
        errors["consent"] = tr("error_consent")
    # Separate from the consent to processing, never required, never ticked in advance.
    marketing = form.get("marketing_consent") == "yes"
    if errors:
        return None, errors
    try:
        data = MemberCreate.model_validate({
            "name": values["name"], "phone": values["phone"], "email": values["email"] or None,
            "birthday": birthday, "consent_text": consent_text(enrollment, lang),
            "referral_code": values["referral_code"] or None,
            "answers": answers, "marketing_consent": marketing,
            "marketing_consent_text": (marketing_consent_text(enrollment, lang)
                                       if marketing else None),
        })
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            field = _form_field(".".join(str(p) for p in err["loc"]))
            errors.setdefault(field, tr("error_invalid"))
        return None, errors
    return NewMember(**data.model_dump()), {}


def _read_answer(question: dict[str, Any], value: str,
                 tr: Callable[..., str]) -> tuple[str | bool | None, str | None]:
    """One questionnaire answer as the service takes it, or an error message."""
    kind = question["type"]
    if not value:
        if question.get("required"):
            return None, tr("error_choose" if kind in ("choice", "yesno") else "error_required")
        return None, None
    if kind == "yesno":
        if value not in ("yes", "no"):
            return None, tr("error_choose")
        return value == "yes", None
    if kind == "choice":
        if value not in question.get("options", []):
            return None, tr("error_choose")
        return value, None
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat(), None
        except ValueError:
            return None, tr("error_date")
    if len(value) > 500:
        return None, tr("error_too_long", limit=500)
    return value, None


def consent_text(enrollment: dict[str, Any], lang: str) -> str:
    """The consent exactly as the form shows it in ``lang``."""
    return i18n.localized(enrollment.get("consent_text") or DEFAULT_CONSENT, lang)


def _form_field(field: str | None) -> str:
    """The form field of a service or model error (``answers.size`` → ``q_size``)."""
    if not field:
        return "form"
    if field.startswith("answers."):
        return "q_" + field.removeprefix("answers.")
    return field.split(".")[0]


def _join_form(program: LoyaltyProgram, lang: str, *, values: MultiDict[str, str],
               errors: dict[str, str], status: int = HTTPStatus.OK) -> Response:
    enrollment = program.enrollment or {}
    yes_no = [("yes", i18n.t(lang, "yes")), ("no", i18n.t(lang, "no"))]
    questions = [
        {**q, "name": f"q_{q['key']}", "text": i18n.localized(q.get("label"), lang),
         "choices": yes_no if q["type"] == "yesno" else [(o, o) for o in q.get("options", [])]}
        for q in enrollment.get("questions", [])
    ]
    response = _render(
        "enroll/join.html", program, lang, status=status,
        values=values, errors=errors, questions=questions,
        consent=consent_text(enrollment, lang),
        marketing_consent=marketing_consent_text(enrollment, lang), csrf_token=csrf_token(),
        perks=program_rules(program, lang)["earning"],
        action=url_for("enroll.join_submit", join_token=program.join_token),
        today=dt.date.today().isoformat(),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the card page ----------------------------------------------------------------------


def tier_progress(card: LoyaltyCard, progress: rules.TierProgress | None, currency: str,
                  lang: str) -> dict[str, Any] | None:
    """The card's tier and how far the next one is, or None for a program without tiers
    (``progress`` is the card's standing's, :func:`wallet_service.rules.standing` over the
    tier basis of :func:`wallet_service.services.ledger.tier_totals`, as on the pass)."""
    if progress is None:
        return None
    return {"tier": card.tier or i18n.t(lang, "no_tier"), "next": progress.next_tier,
            "text": i18n.tier_progress_text(lang, progress, currency),
            "percent": 100 if progress.next_tier is None else progress.percent}


def referral(program: LoyaltyProgram, card: LoyaltyCard, public_url: str,
             lang: str) -> dict[str, Any] | None:
    """The member's referral code, the share link that fills it in on the sign-up page, and
    what inviting a friend earns; None for a closed card."""
    if card.status != "active" or not card.referral_code:
        return None
    bonuses = (program.rules or {}).get("bonuses") or {}
    you, friend = bool(bonuses.get("referrer")), bool(bonuses.get("referred"))
    bonus = ("referral_bonus_both" if you and friend else "referral_bonus_you" if you
             else "referral_bonus_friend" if friend else None)
    return {
        "code": card.referral_code,
        "url": urls.referral_url(public_url, program.join_token, card.referral_code),
        "bonus": i18n.t(lang, bonus) if bonus else None,
    }


def program_rules(program: LoyaltyProgram, lang: str) -> dict[str, Any]:
    """What the card page says about how the program works: what it gives for its kind,
    the merchant's rules and terms in ``lang``, the tiers and the contact."""
    rules = program.rules or {}
    design = program.design or {}
    tiers = []
    basis = rules.get("tier_basis") or "lifetime_points"
    for tier in rules.get("tiers") or []:
        threshold = Decimal(str(tier["threshold"]))
        if basis == "lifetime_spend":
            start = i18n.t(lang, "tier_from_spend",
                           amount=i18n.format_money(lang, threshold, program.currency))
        elif basis == "visits":
            start = i18n.t(lang, "tier_from_visits",
                           visits=i18n.plural(lang, "visit", int(threshold)))
        else:
            start = i18n.t(lang, "tier_from_points", points=_points_word(lang, int(threshold)))
        tiers.append({"name": tier["name"], "start": start,
                      "extras": _tier_extras(program.kind, tier, lang)})
    contact = {k: v for k, v in (design.get("contact") or {}).items() if v}
    if contact.get("phone"):
        contact["tel"] = re.sub(r"[^\d+]", "", contact["phone"])
    return {
        "earning": perks(program, lang),
        "text": i18n.localized(design.get("rules_text"), lang) or None,
        "tiers": tiers,
        "terms": i18n.localized(design.get("terms_text"), lang) or None,
        "contact": contact,
    }


def perks(program: LoyaltyProgram, lang: str) -> list[str]:
    """What the program gives, for its kind: points per amount spent; stamps towards a
    reward; a share of every purchase back as cashback; a discount (the range its tiers
    give)."""
    rules = program.rules or {}
    if program.kind == "stamps":
        stamp_rule = rules.get("stamps") or {}
        per_purchase = i18n.plural(lang, "stamp", int(stamp_rule.get("per_purchase", 1)))
        lines = [i18n.t(lang, "perk_stamps",
                        stamps=i18n.plural(lang, "stamp", int(stamp_rule.get("goal", 1))),
                        reward=i18n.localized(stamp_rule.get("reward"), lang))]
        if stamp_rule.get("min_amount") is not None:
            lines.append(i18n.t(lang, "perk_stamp_purchase_from", stamps=per_purchase,
                                amount=i18n.format_money(
                                    lang, Decimal(str(stamp_rule["min_amount"])),
                                    program.currency)))
        else:
            lines.append(i18n.t(lang, "perk_stamp_purchase", stamps=per_purchase))
        return lines
    if program.kind == "cashback":
        share = Decimal(str((rules.get("cashback") or {}).get("percent", 0)))
        return [i18n.t(lang, "perk_cashback", percent=i18n.format_percent(lang, share))]
    if program.kind == "discount":
        shares = sorted(Decimal(str(t["discount_percent"])) for t in rules.get("tiers") or ()
                        if t.get("discount_percent") is not None)
        if not shares:
            return []
        if shares[0] == shares[-1]:
            return [i18n.t(lang, "perk_discount",
                           percent=i18n.format_percent(lang, shares[0]))]
        return [i18n.t(lang, "perk_discount_range", low=i18n.format_percent(lang, shares[0]),
                       high=i18n.format_percent(lang, shares[-1]))]
    earning = rules.get("earning") or {}
    if not earning:
        return []
    return [i18n.t(lang, "earning", points=_points_word(lang, int(earning["points"])),
                   amount=i18n.format_money(lang, Decimal(str(earning["per_amount"])),
                                            program.currency))]


def _tier_extras(kind: str, tier: dict[str, Any], lang: str) -> list[str]:
    """What a tier gives besides its name: the points multiplier (points programs), the
    cashback share or the discount."""
    extras = []
    multiplier = Decimal(str(tier.get("multiplier", "1"))).normalize()
    if kind == "points" and multiplier != 1:
        extras.append(i18n.t(lang, "tier_multiplier",
                             multiplier=i18n.format_number(lang, multiplier)))
    if kind == "cashback" and tier.get("cashback_percent") is not None:
        extras.append(i18n.t(lang, "tier_cashback", percent=i18n.format_percent(
            lang, Decimal(str(tier["cashback_percent"])))))
    if tier.get("discount_percent") is not None:
        extras.append(i18n.t(lang, "tier_discount", percent=i18n.format_percent(
            lang, Decimal(str(tier["discount_percent"])))))
    return extras


def _points_word(lang: str, number: int) -> str:
    return i18n.plural(lang, "point", number)


# --- shared -----------------------------------------------------------------------------


def _program_by_token(join_token: str) -> LoyaltyProgram | None:
    if len(join_token) > 32:
        return None
    program: LoyaltyProgram | None = get_session().scalar(
        select(LoyaltyProgram).where(LoyaltyProgram.join_token == join_token)
    )
    return program


def _logo_filename(program_id: int) -> str | None:
    names = set(get_session().scalars(
        select(ProgramImage.filename).where(ProgramImage.program_id == program_id,
                                            ProgramImage.kind == "logo")
    ))
    for name in ("logo@2x.png", "logo@3x.png", "logo.png"):
        if name in names:
            return name
    return None


def logo_bytes(program_id: int) -> bytes | None:
    name = _logo_filename(program_id)
    if name is None:
        return None
    data: bytes | None = get_session().scalar(
        select(ProgramImage.data).where(ProgramImage.program_id == program_id,
                                        ProgramImage.filename == name)
    )
    return data


def brand(program: LoyaltyProgram, *, logo_url: str | None) -> dict[str, Any]:
    """The program's colours (as the pass shows them), name and logo, for the page header."""
    design = program.design or {}
    try:
        base = load_template(program.template).pass_json
    except (InvalidInput, ConfigurationError):
        base = {}
    colors = {}
    for key, field, template_key in (("bg", "background_color", "backgroundColor"),
                                     ("fg", "foreground_color", "foregroundColor"),
                                     ("accent", "label_color", "labelColor")):
        colors[key] = (css_color(design.get(field)) or css_color(base.get(template_key))
                       or _FALLBACK_COLORS[key])
    return {
        **colors,
        "title": design.get("logo_text") or program.name,
        "name": program.name,
        "description": design.get("description"),
        "logo_url": logo_url,
    }


def css_color(value: Any) -> str | None:
    """``#rrggbb`` from a design colour (``#rrggbb`` or ``rgb(r, g, b)``), else None."""
    if not isinstance(value, str):
        return None
    if _HEX.match(value):
        return value.lower()
    match = _RGB.match(value)
    if match and all(int(c) <= 255 for c in match.groups()):
        return "#" + "".join(f"{int(c):02x}" for c in match.groups())
    return None


def _languages(program: LoyaltyProgram) -> list[str]:
    return [lang for lang in program.languages or [] if lang in i18n.LANGUAGES] or list(
        i18n.LANGUAGES)


def _language(program_languages: list[str] | None) -> str:
    available = [lang for lang in program_languages or [] if lang in i18n.LANGUAGES]
    return i18n.best_language(
        request.args.get("lang"), request.cookies.get(LANG_COOKIE),
        [value for value, _quality in request.accept_languages], available,
    )


def _render(template: str, program: LoyaltyProgram | None, lang: str, *,
            status: int = HTTPStatus.OK, **context: Any) -> Response:
    languages = _languages(program) if program is not None else list(i18n.LANGUAGES)
    logo = None
    if program is not None and _logo_filename(program.id) is not None:
        logo = url_for("enroll.program_logo", join_token=program.join_token)
    html = render_template(
        template, lang=lang, t=partial(i18n.t, lang), program=program,
        brand=brand(program, logo_url=logo) if program is not None else None,
        languages=[(code, i18n.LANGUAGE_NAMES[code]) for code in languages if code != lang],
        **context,
    )
    response = make_response(html, status)
    requested = request.args.get("lang")
    if requested == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE, samesite="Lax",
                            httponly=True, secure=request.is_secure)
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


def message_page(kind: str, status: int, *, lang: str | None = None,
             program: LoyaltyProgram | None = None, back: str | None = None) -> Response:
    """A short page saying what happened: ``not_found``, ``too_many``, ``enrolled`` (with a
    link ``back`` to the form) or ``google_unavailable`` (with a link ``back`` to try
    again)."""
    if lang is None:
        lang = _language(program.languages if program is not None else None)
    response = _render("enroll/message.html", program, lang, status=status, kind=kind,
                       back=back)
    response.headers["Cache-Control"] = "no-store"
    return response


def _limited(name: str) -> Response | None:
    limiter: RateLimiter = getattr(wallet().limiters, name)
    wait = limiter.allow(request.remote_addr or "?")
    if not wait:
        return None
    response = message_page("too_many", HTTPStatus.TOO_MANY_REQUESTS)
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response
