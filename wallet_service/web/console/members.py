"""Members: search as you type, filters, the member page (the card as the customer sees it,
history with reasons, adjust, edit, close, erase, the card link as QR code).

Every change goes through the service the API uses (``services.members``,
``services.transactions``, ``services.personal_data``) and writes its audit entry in the same
transaction. Contact values in the audit log are masked (the log outlives an erasure)."""

from __future__ import annotations

import secrets
from http import HTTPStatus
from typing import Any

import segno
from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from ... import i18n
from ...errors import InsufficientBalance
from ...errors import InvalidInput
from ...errors import ResourceConflict
from ...models import LoyaltyProgram
from ...permissions import Permission
from ...services import audit
from ...services import ledger
from ...services import member_search
from ...services import members
from ...services import personal_data
from ...services import transactions
from .. import get_session
from .. import wallet
from ..enroll import brand
from ..enroll import card_face
from ..links import card_url
from . import mail
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section

#: The contact fields the console edits (``services.members.update_member`` takes them).
CONTACT_FIELDS = ("name", "phone", "email", "birthday")
#: Reasons longer than this are cut (the ledger keeps 500 characters).
REASON_MAX = 500
ADJUST_MAX = 1_000_000
#: What the page may say was done (``?done=``).
NOTICES = frozenset({"adjust_done", "edit_done", "edit_nothing", "close_done", "erase_done",
                     "mail_sent"})


# --- search -----------------------------------------------------------------------------


def _int_arg(args: MultiDict[str, str], name: str) -> int | None:
    value = args.get(name, "").strip()
    if not value or not value.lstrip("-").isdigit() or len(value) > 12:
        return None
    return int(value)


def _filter(args: MultiDict[str, str]) -> member_search.MemberFilter:
    return member_search.MemberFilter(
        text=args.get("q", "")[:100], tier=args.get("tier") or None,
        visited=args.get("visited") or None, balance_min=_int_arg(args, "balance_min"),
        balance_max=_int_arg(args, "balance_max"), status=args.get("status") or None)


@bp.get("/members", endpoint="members")
@console_page(Permission.READ)
def members_page() -> Response:
    """The search form and its results; an htmx request (search as you type) gets the
    results alone."""
    user = current_user()
    session = get_session()
    found = member_search.search_members(session, user.merchant_id, _filter(request.args))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results":
        return render("console/_member_results.html", title="members_title", found=found,
                      args=request.args)
    return render("console/members.html", title="members_title", found=found,
                  args=request.args,
                  tiers=member_search.tiers_in_use(session, user.merchant_id))


# --- the member page --------------------------------------------------------------------


@bp.get("/members/<int:member_id>")
@console_page(Permission.READ)
def member_page(member_id: int) -> Response:
    """One member: the card as the customer sees it, details, history, actions."""
    done = request.args.get("done")
    return _member_page(member_id, notice=done if done in NOTICES else None)


def _member_page(member_id: int, *, status: int = HTTPStatus.OK, notice: str | None = None,
                 errors: dict[str, str] | None = None,
                 values: MultiDict[str, str] | None = None) -> Response:
    user = current_user()
    section("members")
    session = get_session()
    member = members.get_member(session, user.merchant_id, member_id)
    card = member.card
    program = session.get_one(LoyaltyProgram, member.program_id)
    entries, currency = ledger.list_transactions(session, user.merchant_id, member_id,
                                                 limit=50)
    card_lang = user.lang if user.lang in (program.languages or []) else (
        (program.languages or [i18n.DEFAULT_LANGUAGE])[0])
    link = card_url(wallet().settings, card)
    qr = segno.make(link, error="m").svg_inline(
        scale=1, border=2, omitsize=True, dark="#000", light="#fff",
        title=f"{member.name}: {link}", svgclass="qr")
    return render(
        "console/member.html", title="member_title", status=status, member=member,
        card=card, program=program, entries=entries, currency=currency,
        face=card_face(session, card, program, card_lang),
        brand=brand(program, logo_url=None), card_t=lambda key, **v: i18n.t(card_lang, key, **v),
        card_lang=card_lang, card_link=link, link_qr=Markup(qr), notice=notice,
        errors=errors or {}, values=values or MultiDict(),
        adjust_key=f"console-{secrets.token_urlsafe(18)}", can_mail=mail.enabled(),
        reason_max=REASON_MAX)


@bp.post("/members/<int:member_id>/adjust")
@console_page(Permission.TRANSACTIONS_WRITE)
def adjust(member_id: int) -> ResponseReturnValue:
    """A manual adjustment with a required reason (``adjust`` in the ledger, and the audit
    log). The form's own idempotency key makes a double submit post once."""
    user = current_user()
    form = request.form
    reason = " ".join(form.get("reason", "").split())[:REASON_MAX]
    raw = form.get("points", "").strip().replace(" ", "").replace("+", "")
    errors = {}
    points = int(raw) if raw.lstrip("-").isdigit() and len(raw) < 9 else None
    if points is None or points == 0 or abs(points) > ADJUST_MAX:
        errors["points"] = "adjust_points_invalid"
    if not reason:
        errors["reason"] = "adjust_reason_required"
    key = form.get("idempotency_key", "")
    if not key.startswith("console-") or len(key) > 64:
        key = f"console-{secrets.token_urlsafe(18)}"
    if errors:
        return _member_page(member_id, status=HTTPStatus.UNPROCESSABLE_ENTITY, errors=errors,
                            values=form)
    session = get_session()
    members.get_member(session, user.merchant_id, member_id)  # 404 before anything else
    assert points is not None
    try:
        posted = transactions.post_transaction(
            session, user.merchant_id, member_id,
            transactions.Operation(type="adjust", points=points, reason=reason),
            idempotency_key=key, actor=ledger.Actor(staff_user_id=user.id))
    except InsufficientBalance:
        session.rollback()
        return _member_page(member_id, status=HTTPStatus.CONFLICT,
                            errors={"points": "adjust_balance_low"}, values=form)
    except ResourceConflict:
        session.rollback()
        return _member_page(member_id, status=HTTPStatus.CONFLICT,
                            errors={"points": "adjust_card_closed"}, values=form)
    except InvalidInput:
        session.rollback()
        return _member_page(member_id, status=HTTPStatus.UNPROCESSABLE_ENTITY,
                            errors={"points": "adjust_points_invalid"}, values=form)
    if not posted.replayed:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="member.adjust", target=f"member:{member_id}",
                     changes={"points": points, "reason": reason,
                              "balance": [posted.entry.balance_after - posted.entry.points,
                                          posted.entry.balance_after]})
    session.commit()
    return _after(member_id, "adjust_done")


@bp.post("/members/<int:member_id>/edit")
@console_page(Permission.MEMBERS_WRITE)
def edit(member_id: int) -> ResponseReturnValue:
    """Change contact data, checked as the API checks it (the phone normalized to E.164, a
    phone of another member refused)."""
    user = current_user()
    session = get_session()
    member = members.get_member(session, user.merchant_id, member_id)
    form = request.form
    patch: dict[str, Any] = {}
    for name in CONTACT_FIELDS:
        if name not in form:
            continue
        value = form.get(name, "").strip()
        current = getattr(member, name)
        shown = "" if current is None else str(current)
        if name == "phone" and value and current is not None:
            try:
                same = members.normalize_phone(value, wallet().settings.default_region)
            except InvalidInput:
                same = None
            if same == current:
                continue
        if value != shown:
            patch[name] = value or None
    if not patch:
        return _after(member_id, "edit_nothing")
    before = {name: getattr(member, name) for name in patch}
    try:
        members.update_member(session, user.merchant_id, member_id, patch,
                              default_region=wallet().settings.default_region)
    except ResourceConflict as exc:
        session.rollback()
        field = exc.field if exc.field in CONTACT_FIELDS else "name"
        word = "edit_taken" if field == "phone" else "edit_erased"
        return _member_page(member_id, status=HTTPStatus.CONFLICT, errors={field: word},
                            values=form)
    except InvalidInput as exc:
        session.rollback()
        field = (exc.field or "name").split(".")[0]
        return _member_page(member_id, status=HTTPStatus.UNPROCESSABLE_ENTITY,
                            errors={field if field in CONTACT_FIELDS else "name":
                                    "edit_invalid"}, values=form)
    after = members.get_member(session, user.merchant_id, member_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="member.edit", target=f"member:{member_id}",
                 changes={name: [mask(name, before[name]), mask(name, getattr(after, name))]
                          for name in patch})
    session.commit()
    return _after(member_id, "edit_done")


def mask(field: str, value: Any) -> Any:
    """A contact value as the audit log keeps it: enough to recognise, not to contact."""
    if value is None:
        return None
    text = str(value)
    if field == "phone":
        return text[:-7] + "*****" + text[-2:] if len(text) > 8 else "***"
    if field == "email":
        name, _, domain = text.partition("@")
        return f"{name[:1]}***@{domain}"
    if field == "birthday":
        return "****-" + text[5:] if len(text) == 10 else "***"
    return text  # the name: the log must say whose card changed


@bp.post("/members/<int:member_id>/close")
@console_page(Permission.MEMBERS_ERASE)
def close(member_id: int) -> ResponseReturnValue:
    """Close the card: void on the phone, no more transactions."""
    user = current_user()
    session = get_session()
    members.close_card(session, user.merchant_id, member_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="member.close", target=f"member:{member_id}")
    session.commit()
    return _after(member_id, "close_done")


@bp.post("/members/<int:member_id>/erase")
@console_page(Permission.MEMBERS_ERASE)
def erase(member_id: int) -> ResponseReturnValue:
    """Erase the member's personal data (after the confirmation box is ticked)."""
    user = current_user()
    if request.form.get("confirm") != "yes":
        return _member_page(member_id, status=HTTPStatus.UNPROCESSABLE_ENTITY,
                            errors={"erase": "erase_confirm_required"})
    session = get_session()
    personal_data.erase_member(session, user.merchant_id, member_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="member.erase", target=f"member:{member_id}")
    session.commit()
    return _after(member_id, "erase_done")


@bp.post("/members/<int:member_id>/send-link")
@console_page(Permission.MEMBERS_WRITE)
def send_link(member_id: int) -> ResponseReturnValue:
    """E-mail the member their card link (when outgoing mail is configured)."""
    user = current_user()
    session = get_session()
    member = members.get_member(session, user.merchant_id, member_id)
    if not mail.enabled() or not member.email:
        return _member_page(member_id, status=HTTPStatus.CONFLICT,
                            errors={"mail": "mail_unavailable"})
    program = session.get_one(LoyaltyProgram, member.program_id)
    link = card_url(wallet().settings, member.card)
    lang = user.lang if user.lang in (program.languages or []) else (
        (program.languages or [i18n.DEFAULT_LANGUAGE])[0])
    sent = mail.send(member.email, "mail_card_subject", "mail_card_body", lang=lang,
                     program=program.name, name=member.name, link=link)
    if not sent:
        return _member_page(member_id, status=HTTPStatus.BAD_GATEWAY,
                            errors={"mail": "mail_failed"})
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="member.send_link", target=f"member:{member_id}")
    session.commit()
    return _after(member_id, "mail_sent")


def _after(member_id: int, notice: str) -> Response:
    """Back to the member page (303), saying what was done."""
    return redirect(url_for("console.member_page", member_id=member_id, done=notice),
                    HTTPStatus.SEE_OTHER)
