"""A programme's coupons in the console: the list (given to how many cards, used by how many,
valid when), a new coupon (a title per language of the programme, what it gives, who gets
it, its validity) and changing or ending one.

Every change goes through the service functions the API's coupon operations use
(``services.rewards.create_coupon``, ``update_coupon``, ``retire_coupon``) with the API's
models (``CouponCreate``; the update is the API's merge patch), so an error names the field
the API would name and the page shows it next to that field. Times are typed in the
merchant's time zone. Each change writes its audit entry in the same transaction."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from ...errors import InvalidInput
from ...models import Coupon
from ...models import LoyaltyProgram
from ...permissions import Permission
from ...schemas import CouponCreate
from ...services import audit
from ...services import campaigns
from ...services import programs
from ...services import rewards
from ...validation import validate
from .. import get_session
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section
from .programme import SECTIONS

#: The form's time format (``<input type="datetime-local">``), in the merchant's time zone.
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _program(program_id: int) -> LoyaltyProgram:
    section("programme")
    return programs.get_program(get_session(), current_user().merchant_id, program_id)


def _tiers(program: LoyaltyProgram) -> list[str]:
    return [t["name"] for t in (program.rules or {}).get("tiers") or ()]


def local_input(moment: dt.datetime | None, time_zone: str) -> str:
    """``moment`` as the form shows it: the merchant's local time, to the minute."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(time_zone)).strftime(LOCAL_FORMAT)


def state(coupon: Coupon, now: dt.datetime) -> str:
    """``ended`` (retired), ``expired`` (past its end), ``later`` (not started) or
    ``active``."""
    def aware(moment: dt.datetime) -> dt.datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    if coupon.retired_at is not None:
        return "ended"
    if coupon.valid_until is not None and aware(coupon.valid_until) <= now:
        return "expired"
    if coupon.valid_from is not None and aware(coupon.valid_from) > now:
        return "later"
    return "active"


def _moment(raw: str, time_zone: str) -> str | None:
    """A local time typed in the form, as the API's RFC 3339 text with the merchant's
    offset; ``None`` when empty.

    :raises ValueError: not a date and time.
    """
    raw = raw.strip()
    if not raw:
        return None
    local = dt.datetime.fromisoformat(raw)
    if local.tzinfo is not None:
        raise ValueError(raw)
    return local.replace(tzinfo=ZoneInfo(time_zone)).isoformat()


def _title(program: LoyaltyProgram, form: MultiDict[str, str]) -> str | dict[str, str]:
    """The title per language of the programme (only those typed); one text when the
    programme speaks one language."""
    texts = {code: form.get(f"title_{code}", "").strip() for code in program.languages}
    given = {code: text for code, text in texts.items() if text}
    if len(program.languages) == 1 or not given:
        return next(iter(given.values()), "")
    return given


def _form_field(program: LoyaltyProgram, field: str) -> str:
    """The form field an API error names: ``title.en`` → ``title_en``, ``segment.tier`` →
    ``tier``; a title error without a language goes to the first language's field."""
    head, _, rest = field.partition(".")
    if head == "title":
        code = rest if rest in program.languages else program.languages[0]
        return f"title_{code}"
    if head == "segment":
        return "tier"
    if head in ("description", "valid_from", "valid_until"):
        return head
    return "form"


def _times(form: MultiDict[str, str], names: tuple[str, ...], time_zone: str
           ) -> tuple[dict[str, str | None], dict[str, str]]:
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = _moment(form.get(name, ""), time_zone)
        except ValueError:
            errors[name] = "coupon_not_a_time"
    return values, errors


def _page(program: LoyaltyProgram, errors: dict[str, str] | None = None,
          values: MultiDict[str, str] | None = None,
          status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    session = get_session()
    found = rewards.list_coupons(session, user.merchant_id, program.id)
    now = dt.datetime.now(dt.UTC)
    rows = [(c, *rewards.coupon_counts(session, c.id), state(c, now)) for c in found]
    return render("console/programme_coupons.html", title="coupons_title", status=status,
                  program=program, rows=rows, tiers=_tiers(program), sections=SECTIONS,
                  errors=errors or {}, values=values or MultiDict(), coupon=None)


@bp.get("/programme/<int:program_id>/coupons")
@console_page(Permission.SETTINGS)
def programme_coupons(program_id: int) -> Response:
    return _page(_program(program_id))


@bp.post("/programme/<int:program_id>/coupons")
@console_page(Permission.SETTINGS)
def programme_coupon_create(program_id: int) -> ResponseReturnValue:
    """A new coupon (``services.rewards.create_coupon`` with the API's ``CouponCreate``):
    every card of its segment shows it while it is valid and unused."""
    user = current_user()
    form = request.form
    program = _program(program_id)
    times, errors = _times(form, ("valid_from", "valid_until"), user.time_zone)
    if errors:
        return _page(program, errors, form, HTTPStatus.UNPROCESSABLE_ENTITY)
    tier = form.get("tier", "").strip()
    body: dict[str, Any] = {
        "title": _title(program, form),
        "description": form.get("description", "").strip() or None,
        "segment": {"tier": tier} if tier else {},
        "evergreen": form.get("evergreen") == "yes", **times}
    session = get_session()
    try:
        data = validate(CouponCreate, {k: v for k, v in body.items() if v is not None})
        coupon, granted = rewards.create_coupon(
            session, user.merchant_id, program.id, rewards.NewCoupon(
                title=data.title, description=data.description,
                segment=campaigns.Segment(tier=data.segment.tier),
                valid_from=data.valid_from, valid_until=data.valid_until,
                evergreen=data.evergreen))
    except InvalidInput as exc:
        session.rollback()
        program = _program(program_id)
        return _page(program, {_form_field(program, exc.field or ""): str(exc)}, form,
                     HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="programme.coupon", target=f"coupon:{coupon.id}",
                 changes={**body, "granted": granted})
    session.commit()
    return redirect(url_for("console.programme_coupons", program_id=program.id,
                            done="coupon_created"), HTTPStatus.SEE_OTHER)


def _coupon(program: LoyaltyProgram, coupon_id: int) -> Coupon:
    return rewards.get_coupon(get_session(), current_user().merchant_id, program.id,
                              coupon_id)


def _edit_page(program: LoyaltyProgram, coupon: Coupon,
               errors: dict[str, str] | None = None,
               values: MultiDict[str, str] | None = None,
               status: int = HTTPStatus.OK) -> Response:
    time_zone = current_user().time_zone
    if values is None:
        title = coupon.title
        shown = {f"title_{code}": (title if isinstance(title, str) else title.get(code, ""))
                 for code in program.languages[:1 if isinstance(title, str) else None]}
        values = MultiDict({**shown, "description": coupon.description or "",
                            "valid_until": local_input(coupon.valid_until, time_zone)})
    granted, used = rewards.coupon_counts(get_session(), coupon.id)
    return render("console/programme_coupons.html", title="coupon_change", status=status,
                  program=program, coupon=coupon, granted=granted, used=used,
                  tiers=_tiers(program), sections=SECTIONS, errors=errors or {},
                  values=values, rows=[])


@bp.get("/programme/<int:program_id>/coupons/<int:coupon_id>")
@console_page(Permission.SETTINGS)
def programme_coupon(program_id: int, coupon_id: int) -> Response:
    program = _program(program_id)
    return _edit_page(program, _coupon(program, coupon_id))


@bp.post("/programme/<int:program_id>/coupons/<int:coupon_id>")
@console_page(Permission.SETTINGS)
def programme_coupon_save(program_id: int, coupon_id: int) -> ResponseReturnValue:
    """Change the title, what it gives or the end (the API's merge patch through
    ``services.rewards.update_coupon``); the cards that show it are updated."""
    user = current_user()
    form = request.form
    program = _program(program_id)
    coupon = _coupon(program, coupon_id)
    times, errors = _times(form, ("valid_until",), user.time_zone)
    if errors:
        return _edit_page(program, coupon, errors, form, HTTPStatus.UNPROCESSABLE_ENTITY)
    patch: dict[str, Any] = {"title": _title(program, form),
                             "description": form.get("description", "").strip() or None,
                             **times}
    before = {"title": coupon.title, "description": coupon.description,
              "valid_until": coupon.valid_until.isoformat() if coupon.valid_until else None}
    session = get_session()
    try:
        rewards.update_coupon(session, user.merchant_id, program.id, coupon.id, patch)
    except InvalidInput as exc:
        session.rollback()
        program = _program(program_id)
        return _edit_page(program, _coupon(program, coupon_id),
                          {_form_field(program, exc.field or ""): str(exc)}, form,
                          HTTPStatus.UNPROCESSABLE_ENTITY)
    after = {"title": coupon.title, "description": coupon.description,
             "valid_until": coupon.valid_until.isoformat() if coupon.valid_until else None}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="programme.coupon_change", target=f"coupon:{coupon.id}",
                     changes=changes)
    session.commit()
    return redirect(url_for("console.programme_coupons", program_id=program.id,
                            done="coupon_saved"), HTTPStatus.SEE_OTHER)


@bp.post("/programme/<int:program_id>/coupons/<int:coupon_id>/end")
@console_page(Permission.SETTINGS)
def programme_coupon_end(program_id: int, coupon_id: int) -> ResponseReturnValue:
    """End the coupon now (``services.rewards.retire_coupon``, as the API's retire): it
    leaves every card and can no longer be used."""
    user = current_user()
    program = _program(program_id)
    session = get_session()
    coupon = _coupon(program, coupon_id)
    if coupon.retired_at is None:
        rewards.retire_coupon(session, user.merchant_id, program.id, coupon.id)
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="programme.coupon_end", target=f"coupon:{coupon.id}",
                     changes={"retired": [False, True]})
        session.commit()
    return redirect(url_for("console.programme_coupons", program_id=program.id,
                            done="coupon_ended"), HTTPStatus.SEE_OTHER)
