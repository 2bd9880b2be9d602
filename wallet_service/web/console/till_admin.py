"""The till's console section (``/console/till``), for the owner and managers: the stores'
till devices (revoke one), the staff's PINs (set or reset; never shown back), the limits
per staff user and by default, and the unusual-activity feed per staff user and store
(spec: /work/shared/product/cockpit.md, "The till flow"). Every change is audited."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...db import utcnow
from ...errors import ValidationFailed
from ...permissions import Permission
from ...services import accounts
from ...services import audit
from ...services import till
from ...services.locations import list_locations
from .. import get_session
from . import frame
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render

# Limits and PINs are the owner's and managers' (the till's fraud controls), not staff's.
frame.nav_item("till", "console.till", "nav_till", Permission.SETTINGS)

#: The activity feed's periods: name → days.
PERIODS = {"day": 1, "week": 7, "month": 30}
_MAX_LIMIT = 10**12
_DONE = ("till_done_revoked", "till_done_pin", "till_done_limits")


def _page(*, errors: dict[str, dict[str, str]] | None = None,
          values: dict[str, dict[str, str]] | None = None, done: str | None = None,
          status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    session = get_session()
    period = request.args.get("period", "week")
    if period not in PERIODS:
        period = "week"
    everyone = accounts.list_users(session, user.merchant_id)
    users = [u for u in everyone if not u.disabled_at]
    emails = {u.id: u.email for u in everyone}
    locations = {loc.id: loc.name for loc in list_locations(session, user.merchant_id)}
    since = utcnow() - dt.timedelta(days=PERIODS[period])
    activity = till.activity(session, user.merchant_id, since)
    events = [e for e in till.recent_events(session, user.merchant_id,
                                            kinds=("limit", "undo", "manual", "pin_locked"),
                                            limit=30) if e.created_at >= since]
    devices = till.list_devices(session, user.merchant_id)
    return render("console/till_admin.html", title="till_admin_title", status=status,
                  users=users, emails=emails, locations=locations, devices=devices,
                  pins=till.users_with_pin(session, user.merchant_id),
                  limits=till.own_limits(session, user.merchant_id),
                  limit_names=till.LIMIT_NAMES, activity=activity, events=events,
                  periods=list(PERIODS), period=period, errors=errors or {},
                  values=values or {}, done=done)


@bp.get("/till", endpoint="till")
@console_page(Permission.SETTINGS)
def till_page() -> Response:
    """Devices, PINs, limits and the activity feed."""
    done = request.args.get("done")
    return _page(done=done if done in _DONE else None)


def _back(done: str) -> Response:
    return redirect(url_for("console.till", done=done), HTTPStatus.SEE_OTHER)


@bp.post("/till/devices/<int:device_id>/revoke")
@console_page(Permission.SETTINGS)
def till_revoke(device_id: int) -> ResponseReturnValue:
    """The device is no longer a till (its token stops working)."""
    user = current_user()
    session = get_session()
    till.revoke_device(session, user.merchant_id, device_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="till.device_revoked", target=f"till_device:{device_id}")
    session.commit()
    return _back("till_done_revoked")


@bp.post("/till/staff/<int:user_id>/pin")
@console_page(Permission.SETTINGS)
def till_pin(user_id: int) -> ResponseReturnValue:
    """Set or reset the user's till PIN (it clears a lock)."""
    user = current_user()
    session = get_session()
    had = user_id in till.users_with_pin(session, user.merchant_id)
    try:
        till.set_pin(session, user.merchant_id, user_id, request.form.get("pin", "").strip())
    except ValidationFailed:
        session.rollback()
        return _page(errors={f"pin-{user_id}": {"pin": "till_pin_invalid"}},
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="till.pin_reset" if had else "till.pin_set", target=f"user:{user_id}",
                 changes={"pin": [None, "set"]})
    session.commit()
    return _back("till_done_pin")


@bp.post("/till/limits")
@console_page(Permission.SETTINGS)
def till_default_limits() -> ResponseReturnValue:
    """The limits of every staff user without limits of their own."""
    return _save_limits(None)


@bp.post("/till/staff/<int:user_id>/limits")
@console_page(Permission.SETTINGS)
def till_staff_limits(user_id: int) -> ResponseReturnValue:
    """The user's own limits, or (``clear``) back to the default."""
    return _save_limits(user_id)


def _save_limits(user_id: int | None) -> ResponseReturnValue:
    user = current_user()
    session = get_session()
    form_key = "limits-default" if user_id is None else f"limits-{user_id}"
    target = "till_limits:default" if user_id is None else f"user:{user_id}"
    before = till.own_limits(session, user.merchant_id).get(user_id)
    if user_id is not None and request.form.get("clear") == "yes":
        till.clear_limits(session, user.merchant_id, user_id)
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="till.limits_cleared", target=target,
                     changes=_changes(before, None))
        session.commit()
        return _back("till_done_limits")
    values, errors = _parse_limits()
    if errors:
        return _page(errors={form_key: errors}, values={form_key: values},
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    limits = till.Limits(**{name: (int(v) if v else None) for name, v in values.items()})
    try:
        till.set_limits(session, user.merchant_id, user_id, limits)
    except ValidationFailed as exc:
        session.rollback()
        return _page(errors={form_key: {exc.field or "": "till_limit_invalid"}},
                     values={form_key: values}, status=HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="till.limits_set", target=target, changes=_changes(before, limits))
    session.commit()
    return _back("till_done_limits")


def _parse_limits() -> tuple[dict[str, str], dict[str, str]]:
    """The form's limits as typed, and the word naming what is wrong with each bad one: a
    whole number from 0, or empty for no limit."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in till.LIMIT_NAMES:
        text = request.form.get(name, "").strip().replace(" ", "")
        values[name] = text
        if text and not (text.isascii() and text.isdigit() and int(text) <= _MAX_LIMIT):
            errors[name] = "till_limit_invalid"
    return values, errors


def _changes(before: till.Limits | None, after: till.Limits | None) -> dict[str, Any]:
    old = before or till.Limits()
    new = after or till.Limits()
    return {name: [getattr(old, name), getattr(new, name)] for name in till.LIMIT_NAMES
            if getattr(old, name) != getattr(new, name)}
