"""Messages: compose a campaign to all members or a segment, see how many cards it reaches
and how many phones it wakes before sending (``services.campaign_planning.reach``), send it
now (``services.campaigns.send_campaign``, as the API) or at a local time in the merchant's
time zone (the worker sends it), and the history with reach. Only members who accept
marketing messages are reached; a holdout may be kept to measure the effect."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from ...errors import InvalidInput
from ...models import LoyaltyProgram
from ...permissions import Permission
from ...services import audit
from ...services import campaign_planning
from ...services import campaigns
from ...services import programs
from .. import get_session
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import error_page
from .frame import render

TEXT_MAX = 1000


def _segment(form: MultiDict[str, str]) -> tuple[campaigns.Segment, dict[str, str]]:
    errors: dict[str, str] = {}
    if form.get("audience", "all") == "all":
        return campaigns.Segment(), errors
    values: dict[str, Any] = {}
    tier = form.get("tier", "").strip()
    if tier:
        values["tier"] = tier[:60]
    for name, low, high in (("inactive_days", 1, 3650), ("birthday_month", 1, 12)):
        raw = form.get(name, "").strip()
        if raw:
            if not raw.isdigit() or not low <= int(raw) <= high:
                errors[name] = f"messages_{name}_invalid"
            else:
                values[name] = int(raw)
    return campaigns.Segment(**values), errors


def _holdout(form: MultiDict[str, str], errors: dict[str, str]) -> int:
    raw = form.get("holdout_percent", "0").strip() or "0"
    if not raw.isdigit() or int(raw) > campaigns.MAX_HOLDOUT_PERCENT:
        errors["holdout_percent"] = "messages_holdout_invalid"
        return 0
    return int(raw)


def _text(form: MultiDict[str, str], program: LoyaltyProgram,
          errors: dict[str, str]) -> str | dict[str, str]:
    texts = {lang: " ".join(form.get(f"text_{lang}", "").split())[:TEXT_MAX]
             for lang in program.languages}
    texts = {lang: text for lang, text in texts.items() if text}
    if not texts:
        errors[f"text_{program.languages[0]}"] = "messages_text_required"
        return ""
    return texts


def _program(form: MultiDict[str, str]) -> LoyaltyProgram | None:
    user = current_user()
    found = programs.list_programs(get_session(), user.merchant_id)
    raw = form.get("program_id", "")
    for program in found:
        if str(program.id) == raw:
            return program
    return found[0] if found else None


def _page(program: LoyaltyProgram | None, values: MultiDict[str, str],
          errors: dict[str, str], status: int = HTTPStatus.OK,
          reach: campaign_planning.Reach | None = None, notice: str | None = None) -> Response:
    user = current_user()
    session = get_session()
    return render("console/messages.html", title="messages_title", status=status,
                  program=program, values=values, errors=errors, reach=reach, notice=notice,
                  programmes=programs.list_programs(session, user.merchant_id),
                  history=campaigns.recent_campaigns(session, user.merchant_id),
                  scheduled=campaign_planning.list_scheduled(session, user.merchant_id,
                                                             ("scheduled", "failed")),
                  max_holdout=campaigns.MAX_HOLDOUT_PERCENT, time_zone=user.time_zone)


@bp.get("/messages", endpoint="messages")
@console_page(Permission.SETTINGS)
def messages_page() -> Response:
    program = _program(request.args)
    notice = request.args.get("done")
    return _page(program, MultiDict({"audience": "all", "when": "now", "holdout_percent": "0"}),
                 {}, notice=notice if notice in ("messages_sent", "messages_scheduled",
                                                 "messages_cancelled") else None)


@bp.post("/messages/reach")
@console_page(Permission.SETTINGS)
def messages_reach() -> Response:
    """How many cards the campaign as composed reaches and wakes (htmx, as the form
    changes)."""
    program = _program(request.form)
    if program is None:
        return error_page(HTTPStatus.NOT_FOUND)
    segment, errors = _segment(request.form)
    holdout = _holdout(request.form, errors)
    reach = None if errors else campaign_planning.reach(
        get_session(), current_user().merchant_id, program.id, segment, holdout)
    return render("console/_messages_reach.html", title="messages_title", reach=reach,
                  errors=errors)


@bp.post("/messages")
@console_page(Permission.SETTINGS)
def messages_send() -> ResponseReturnValue:
    """Send the campaign now or schedule it for a local time (the merchant's time zone)."""
    user = current_user()
    form = request.form
    program = _program(form)
    if program is None:
        return error_page(HTTPStatus.NOT_FOUND)
    segment, errors = _segment(form)
    holdout = _holdout(form, errors)
    text = _text(form, program, errors)
    local = None
    if form.get("when") == "later":
        try:
            local = dt.datetime.strptime(form.get("send_at", ""), "%Y-%m-%dT%H:%M")
        except ValueError:
            errors["send_at"] = "messages_send_at_invalid"
    session = get_session()
    if errors:
        return _page(program, form, errors, HTTPStatus.UNPROCESSABLE_ENTITY)
    try:
        if local is None:
            campaign = campaigns.send_campaign(session, user.merchant_id, program.id, text,
                                               segment, holdout)
            target, done = f"campaign:{campaign.id}", "messages_sent"
            changes = {"reached": campaign.reached, "held_out": campaign.held_out}
        else:
            row = campaign_planning.schedule(session, user.merchant_id, program.id, text,
                                             segment, holdout, local, user.time_zone,
                                             created_by=user.id)
            target, done = f"scheduled_campaign:{row.id}", "messages_scheduled"
            changes = {"send_at": row.local_time, "time_zone": row.time_zone}
    except InvalidInput as exc:
        session.rollback()
        field = exc.field or "form"
        name = {"send_at": "send_at", "holdout_percent": "holdout_percent"}.get(
            field, f"text_{program.languages[0]}")
        return _page(program, form, {name: str(exc)}, HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="campaign.send" if local is None else "campaign.schedule",
                 target=target, changes={"segment": segment.as_json(),
                                         "holdout_percent": holdout, **changes})
    session.commit()
    return redirect(url_for("console.messages", program_id=program.id, done=done),
                    HTTPStatus.SEE_OTHER)


@bp.post("/messages/scheduled/<int:scheduled_id>/cancel")
@console_page(Permission.SETTINGS)
def messages_cancel(scheduled_id: int) -> ResponseReturnValue:
    user = current_user()
    session = get_session()
    row = campaign_planning.cancel(session, user.merchant_id, scheduled_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="campaign.cancel", target=f"scheduled_campaign:{row.id}")
    session.commit()
    return redirect(url_for("console.messages", done="messages_cancelled"), HTTPStatus.SEE_OTHER)
