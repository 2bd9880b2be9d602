"""The programme section: a one-minute start (the wizard), the merchant's programmes, each
programme's page (join link, QR code, poster, enrolling a member) and its settings pages.

Every change goes through the services the API uses (``services.programs`` with the API's
merge patch and validation, ``services.members``, ``services.transactions``,
``services.rewards``, ``services.locations``, ``services.merchants``), so an error names the
same field the API would, and the page shows it next to that field. Each change writes its
audit entry in the same transaction."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from ... import urls
from ...apple import prepare_image
from ...errors import InvalidInput
from ...errors import ResourceConflict
from ...errors import WalletError
from ...models import LoyaltyProgram
from ...permissions import Permission
from ...schemas import DEFAULT_CONSENT
from ...schemas import LocationCreate
from ...schemas import ProgramCreate
from ...schemas import RewardCreate
from ...services import audit
from ...services import ledger
from ...services import locations
from ...services import members
from ...services import merchants
from ...services import programs
from ...services import rewards
from ...services import transactions
from ...validation import validate
from .. import get_session
from .. import wallet
from ..posters import join_qr
from ..posters import render_poster
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import error_page
from .frame import render
from .frame import section

KINDS = ("stamps", "points", "cashback", "discount")
#: The wizard's colours: a dark card with light text reads well on every phone.
DEFAULT_BACKGROUND = "#3c2a21"
DEFAULT_FOREGROUND = "#ffffff"


def kind_defaults(kind: str, lang: str) -> dict[str, Any]:
    """The rules a new programme of ``kind`` starts with (the wizard's "sensible defaults";
    the settings pages change them later): points 10 per 100, six stamps for a free coffee,
    5 % cashback, a discount of 5 % growing to 10 % after 10,000 spent."""
    ru = lang == "ru"
    if kind == "stamps":
        return {"stamps": {"goal": 6, "reward": {"ru": "бесплатный кофе", "en": "a free coffee"},
                           "per_purchase": 1, "max_per_window": 1, "window_minutes": 60}}
    if kind == "cashback":
        return {"cashback": {"percent": "5", "max_redeem_percent": "50"}}
    if kind == "discount":
        return {"tier_basis": "lifetime_spend",
                "tiers": [{"name": "Базовый" if ru else "Base", "threshold": "0",
                           "discount_percent": "5"},
                          {"name": "Серебро" if ru else "Silver", "threshold": "10000",
                           "discount_percent": "10"}]}
    return {"earning": {"points": 10, "per_amount": "100"}, "bonuses": {"welcome": 50}}


def _field_of(exc: WalletError) -> str:
    return exc.field or "form"


def _message(exc: WalletError) -> str:
    return str(exc)


# --- the section ------------------------------------------------------------------------


@bp.get("/programme", endpoint="programme")
@console_page(Permission.SETTINGS)
def programme_page() -> ResponseReturnValue:
    """The merchant's programmes; with none yet, the wizard."""
    user = current_user()
    found = programs.list_programs(get_session(), user.merchant_id)
    if not found:
        return _wizard()
    return render("console/programme_list.html", title="programme_title", programmes=found)


@bp.get("/programme/new")
@console_page(Permission.SETTINGS)
def programme_new() -> Response:
    return _wizard()


def _wizard(errors: dict[str, str] | None = None, values: MultiDict[str, str] | None = None,
            status: int = HTTPStatus.OK) -> Response:
    section("programme")
    return render("console/programme_wizard.html", title="wizard_title", status=status,
                  kinds=KINDS, errors=errors or {}, values=values or MultiDict(),
                  default_background=DEFAULT_BACKGROUND, default_foreground=DEFAULT_FOREGROUND)


@bp.post("/programme/new")
@console_page(Permission.SETTINGS)
def programme_create() -> ResponseReturnValue:
    """Create the programme through the service the API uses, with the kind's defaults,
    and its logo when one is sent; then its page with the poster and the join link."""
    user = current_user()
    form = request.form
    kind = form.get("kind", "")
    name = " ".join(form.get("name", "").split())
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = "wizard_kind_required"
    if not name:
        errors["name"] = "wizard_name_required"
    if errors:
        return _wizard(errors, form, HTTPStatus.UNPROCESSABLE_ENTITY)
    document: dict[str, Any] = {
        "name": name[:200], "kind": kind, "languages": [user.lang] + [
            code for code in ("ru", "en") if code != user.lang],
        "design": {"background_color": form.get("background_color") or DEFAULT_BACKGROUND,
                   "foreground_color": form.get("foreground_color") or DEFAULT_FOREGROUND,
                   "logo_text": name[:40]},
        **kind_defaults(kind, user.lang)}
    session = get_session()
    try:
        data = validate(ProgramCreate, document)
        logo = request.files.get("logo")
        files = prepare_image("logo", logo.read()) if logo and logo.filename else None
        program = programs.create_program(session, user.merchant_id, data)
        if files:
            programs.set_program_image(session, user.merchant_id, program.id, "logo", files)
    except InvalidInput as exc:
        session.rollback()
        field = _field_of(exc).split(".")[-1]
        return _wizard({field if field in ("name", "logo") else "form": _message(exc)}, form,
                       HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="programme.create", target=f"program:{program.id}",
                 changes={"name": name, "kind": kind})
    session.commit()
    return redirect(url_for("console.programme_detail", program_id=program.id, created=1),
                    HTTPStatus.SEE_OTHER)


def _program(program_id: int) -> LoyaltyProgram:
    section("programme")
    return programs.get_program(get_session(), current_user().merchant_id, program_id)


@bp.get("/programme/<int:program_id>")
@console_page(Permission.SETTINGS)
def programme_detail(program_id: int) -> Response:
    return _detail(program_id)


def _detail(program_id: int, *, errors: dict[str, str] | None = None,
            values: MultiDict[str, str] | None = None, status: int = HTTPStatus.OK,
            enrolled: int | None = None) -> Response:
    program = _program(program_id)
    join = urls.join_url(wallet().settings.public_url, program.join_token)
    qr = join_qr(join).svg_inline(scale=1, border=4, omitsize=True, dark="#000",
                                  light="#fff", title=join, svgclass="qr")
    return render("console/programme.html", title="programme_title", status=status,
                  program=program, join_url=join, join_qr=Markup(qr),
                  created=request.args.get("created") == "1", errors=errors or {},
                  values=values or MultiDict(), enrolled=enrolled or request.args.get(
                      "enrolled", type=int), sections=SECTIONS)


@bp.get("/programme/<int:program_id>/poster")
@console_page(Permission.SETTINGS)
def programme_poster(program_id: int) -> Response:
    """The printable poster (``web.posters``), as a file to save and print."""
    program = _program(program_id)
    size = request.args.get("size", "a4")
    html = render_poster(program, size if size in ("a4", "a6") else "a4", current_user().lang)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="poster-{program.id}-{size}.html"')
    return response


@bp.post("/programme/<int:program_id>/enroll")
@console_page(Permission.MEMBERS_WRITE)
def programme_enroll(program_id: int) -> ResponseReturnValue:
    """Enroll a customer at the counter (``services.members.enroll_member``, as the API)."""
    user = current_user()
    form = request.form
    session = get_session()
    program = programs.get_program(session, user.merchant_id, program_id)
    name = " ".join(form.get("member_name", "").split())
    phone = form.get("member_phone", "").strip()
    errors = {}
    if not name:
        errors["member_name"] = "enroll_name_required"
    if not phone:
        errors["member_phone"] = "enroll_phone_required"
    if errors:
        return _detail(program_id, errors=errors, values=form,
                       status=HTTPStatus.UNPROCESSABLE_ENTITY)
    consent = (program.enrollment or {}).get("consent_text") or DEFAULT_CONSENT
    try:
        member = members.enroll_member(
            session, user.merchant_id, program.id,
            members.NewMember(name=name[:200], phone=phone,
                              email=form.get("member_email", "").strip() or None,
                              consent_text=consent.get(user.lang) or next(iter(consent.values())),
                              marketing_consent=form.get("member_marketing") == "yes"),
            default_region=wallet().settings.default_region, source="console")
    except (InvalidInput, ResourceConflict) as exc:
        session.rollback()
        field = "member_phone" if (exc.field or "").endswith("phone") else "member_name"
        return _detail(program_id, errors={field: str(exc)}, values=form,
                       status=HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="member.enroll", target=f"member:{member.id}",
                 changes={"program_id": program.id})
    session.commit()
    return redirect(url_for("console.member_page", member_id=member.id), HTTPStatus.SEE_OTHER)


@bp.post("/members/<int:member_id>/stamp")
@console_page(Permission.TRANSACTIONS_WRITE)
def member_stamp(member_id: int) -> ResponseReturnValue:
    """"+1 stamp" on the member page: a purchase that earns the programme's stamps, posted
    as the API's ``stamps`` operation posts it (the form's key makes a double submit post
    once)."""
    user = current_user()
    session = get_session()
    members.get_member(session, user.merchant_id, member_id)
    key = request.form.get("idempotency_key", "")
    if not key.startswith("console-") or len(key) > 64:
        key = f"console-{secrets.token_urlsafe(18)}"
    try:
        posted = transactions.post_stamps(
            session, user.merchant_id, member_id, 1, None,
            idempotency_key=key, actor=ledger.Actor(staff_user_id=user.id))
    except (InvalidInput, ResourceConflict):
        session.rollback()
        return redirect(url_for("console.member_page", member_id=member_id),
                        HTTPStatus.SEE_OTHER)
    if not posted.replayed:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="member.stamp", target=f"member:{member_id}",
                     changes={"stamps": posted.entry.stamps})
    session.commit()
    return redirect(url_for("console.member_page", member_id=member_id, done="adjust_done"),
                    HTTPStatus.SEE_OTHER)


# --- settings pages -----------------------------------------------------------------------

#: The settings pages of a programme: each edits part of the programme document through the
#: API's merge patch. A field is ``(form name, document path, type)``; ``json`` fields take
#: a JSON value (lists and maps: tiers, questions, categories).
SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "earning": [("earning.points", "earning.points", "int"),
                ("earning.per_amount", "earning.per_amount", "text"),
                ("point_value", "point_value", "text")],
    "tiers": [("tier_basis", "tier_basis", "choice:lifetime_points,lifetime_spend,visits"),
              ("tier_window_days", "tier_window_days", "int"),
              ("tiers", "tiers", "json")],
    "stamps": [("stamps.goal", "stamps.goal", "int"),
               ("stamps.reward", "stamps.reward", "json"),
               ("stamps.per_purchase", "stamps.per_purchase", "int"),
               ("stamps.min_amount", "stamps.min_amount", "text"),
               ("stamps.max_per_window", "stamps.max_per_window", "int"),
               ("stamps.window_minutes", "stamps.window_minutes", "int")],
    "cashback": [("cashback.percent", "cashback.percent", "text"),
                 ("cashback.max_redeem_percent", "cashback.max_redeem_percent", "text"),
                 ("cashback.categories", "cashback.categories", "json")],
    "exclusions": [("excluded.skus", "excluded.skus", "json"),
                   ("excluded.categories", "excluded.categories", "json")],
    "expiry": [("points_validity_days", "points_validity_days", "int"),
               ("expiry_reminder_days", "expiry_reminder_days", "int")],
    "bonuses": [("bonuses.welcome", "bonuses.welcome", "int"),
                ("bonuses.birthday", "bonuses.birthday", "int"),
                ("bonuses.referrer", "bonuses.referrer", "int"),
                ("bonuses.referred", "bonuses.referred", "int"),
                ("bonuses.winback", "bonuses.winback", "int"),
                ("bonuses.winback_after_days", "bonuses.winback_after_days", "int"),
                ("bonuses.actions", "bonuses.actions", "json")],
    "signup": [("enrollment.consent_text", "enrollment.consent_text", "json"),
               ("enrollment.marketing_consent_text", "enrollment.marketing_consent_text",
                "json"),
               ("enrollment.questions", "enrollment.questions", "json")],
}


def _get(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def section_values(program: LoyaltyProgram, name: str) -> MultiDict[str, str]:
    document = programs.program_document(program).model_dump(mode="json")
    return MultiDict({form_name: _shown(_get(document, path), kind)
                      for form_name, path, kind in SECTIONS[name]})


def section_patch(name: str, form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merge patch the form of section ``name`` asks for, and the fields it could not
    read (a number that is not one, JSON that does not parse)."""
    patch: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for form_name, path, kind in SECTIONS[name]:
        raw = form.get(form_name, "").strip()
        value: Any
        if not raw:
            value = None
        elif kind == "int":
            if not raw.lstrip("-").isdigit() or len(raw) > 12:
                errors[form_name] = "settings_not_a_number"
                continue
            value = int(raw)
        elif kind == "json":
            try:
                value = json.loads(raw, parse_float=Decimal)
            except ValueError:
                errors[form_name] = "settings_bad_json"
                continue
            value = _plain(value)
        else:
            value = raw
        target = patch
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return patch, errors


def _plain(value: Any) -> Any:
    """JSON read with exact decimals, back to what the API's JSON reader gives."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _error_field(name: str, field: str) -> str:
    """The form field an API error names (the longest form field its path starts with)."""
    best = "form"
    for form_name, path, _kind in SECTIONS[name]:
        if (field == path or field.startswith(path + ".") or field.startswith(path + "[")
                or path.startswith(field + ".")) and (best == "form" or len(path) > len(best)):
            best = form_name
    return best


def _settings_page(program: LoyaltyProgram, name: str, values: MultiDict[str, str],
                   errors: dict[str, str], status: int = HTTPStatus.OK,
                   saved: bool = False) -> Response:
    return render("console/programme_settings.html", title=f"settings_{name}_title",
                  status=status, program=program, name=name, fields=SECTIONS[name],
                  values=values, errors=errors, saved=saved, sections=SECTIONS)


@bp.get("/programme/<int:program_id>/settings/<name>")
@console_page(Permission.SETTINGS)
def programme_settings(program_id: int, name: str) -> Response:
    if name not in SECTIONS:
        return programme_not_found()
    program = _program(program_id)
    return _settings_page(program, name, section_values(program, name), {},
                          saved=request.args.get("saved") == "1")


def programme_not_found() -> Response:
    return error_page(HTTPStatus.NOT_FOUND)


@bp.post("/programme/<int:program_id>/settings/<name>")
@console_page(Permission.SETTINGS)
def programme_settings_save(program_id: int, name: str) -> ResponseReturnValue:
    """Save one settings page: the API's merge patch, validated as the API validates it;
    an error is shown next to the field it names."""
    if name not in SECTIONS:
        return programme_not_found()
    user = current_user()
    program = _program(program_id)
    patch, errors = section_patch(name, request.form)
    if errors:
        return _settings_page(program, name, request.form, errors,
                              HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    before = programs.program_document(program).model_dump(mode="json")
    try:
        programs.update_program(session, user.merchant_id, program.id, patch)
    except InvalidInput as exc:
        session.rollback()
        program = _program(program_id)
        return _settings_page(program, name, request.form,
                              {_error_field(name, exc.field or ""): str(exc)},
                              HTTPStatus.UNPROCESSABLE_ENTITY)
    after = programs.program_document(program).model_dump(mode="json")
    changes = {path: [_get(before, path), _get(after, path)]
               for _f, path, _k in SECTIONS[name] if _get(before, path) != _get(after, path)}
    if changes:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action=f"programme.{name}", target=f"program:{program.id}",
                     changes=changes)
    session.commit()
    return redirect(url_for("console.programme_settings", program_id=program.id, name=name,
                            saved=1), HTTPStatus.SEE_OTHER)


# --- rewards, coupons, locations, time zone ---------------------------------------------


@bp.get("/programme/<int:program_id>/rewards")
@console_page(Permission.SETTINGS)
def programme_rewards(program_id: int) -> Response:
    return _rewards_page(program_id)


def _rewards_page(program_id: int, errors: dict[str, str] | None = None,
                  values: MultiDict[str, str] | None = None,
                  status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    program = _program(program_id)
    session = get_session()
    return render("console/programme_rewards.html", title="rewards_title", status=status,
                  program=program,
                  rewards=rewards.list_rewards(session, user.merchant_id, program.id),
                  sections=SECTIONS, errors=errors or {}, values=values or MultiDict())


@bp.post("/programme/<int:program_id>/rewards")
@console_page(Permission.SETTINGS)
def programme_reward_create(program_id: int) -> ResponseReturnValue:
    """A reward members redeem with their balance (``services.rewards``, as the API): it
    costs points, or stamps in a stamp programme."""
    user = current_user()
    form = request.form
    session = get_session()
    program = _program(program_id)
    cost_field = "cost_stamps" if program.kind == "stamps" else "cost_points"
    raw = form.get("cost", "").strip()
    body: dict[str, Any] = {"name": form.get("name", "").strip()}
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            return _rewards_page(program_id, {"cost": "settings_not_a_number"}, form,
                                 HTTPStatus.UNPROCESSABLE_ENTITY)
        body[cost_field] = int(raw)
    try:
        data = validate(RewardCreate, {k: v for k, v in body.items() if v != ""})
        reward = rewards.create_reward(session, user.merchant_id, program.id,
                                       rewards.NewReward(**data.model_dump()))
    except InvalidInput as exc:
        session.rollback()
        field = (exc.field or "name").split(".")[0]
        return _rewards_page(program_id, {"name" if field == "name" else "cost": str(exc)},
                             form, HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="programme.reward", target=f"reward:{reward.id}", changes=body)
    session.commit()
    return redirect(url_for("console.programme_rewards", program_id=program_id),
                    HTTPStatus.SEE_OTHER)


@bp.get("/programme/locations")
@console_page(Permission.SETTINGS)
def programme_locations() -> Response:
    return _locations_page()


def _locations_page(errors: dict[str, str] | None = None,
                    values: MultiDict[str, str] | None = None,
                    status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    section("programme")
    session = get_session()
    return render("console/programme_locations.html", title="locations_title", status=status,
                  locations=locations.list_locations(session, user.merchant_id),
                  time_zone=merchants.time_zone_of(session, user.merchant_id),
                  errors=errors or {}, values=values or MultiDict())


@bp.post("/programme/locations")
@console_page(Permission.SETTINGS)
def programme_location_create() -> ResponseReturnValue:
    """A store of the merchant (``services.locations``): its cards show it (geo)."""
    user = current_user()
    form = request.form
    body: dict[str, Any] = {"name": form.get("name", "").strip(),
                            "address": form.get("address", "").strip()}
    for key in ("latitude", "longitude"):
        raw = form.get(key, "").strip().replace(",", ".")
        try:
            body[key] = float(raw) if raw else None
        except ValueError:
            return _locations_page({key: "settings_not_a_number"}, form,
                                   HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    try:
        data = validate(LocationCreate, {k: v for k, v in body.items() if v not in ("", None)})
        created = locations.create_location(session, user.merchant_id,
                                            locations.NewLocation(**data.model_dump()))
    except InvalidInput as exc:
        session.rollback()
        field = (exc.field or "name").split(".")[0]
        return _locations_page({field if field in body else "name": str(exc)}, form,
                               HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="location.create", target=f"location:{created.id}", changes=body)
    session.commit()
    return redirect(url_for("console.programme_locations"), HTTPStatus.SEE_OTHER)


@bp.post("/programme/time-zone")
@console_page(Permission.SETTINGS)
def programme_time_zone() -> ResponseReturnValue:
    """The merchant's time zone (``services.merchants.update_merchant``, as the API)."""
    user = current_user()
    value = request.form.get("time_zone", "").strip()
    session = get_session()
    before = merchants.time_zone_of(session, user.merchant_id)
    try:
        merchants.update_merchant(session, user.merchant_id, {"time_zone": value},
                                  default_time_zone=wallet().settings.default_time_zone)
    except InvalidInput as exc:
        session.rollback()
        return _locations_page({"time_zone": str(exc)}, request.form,
                               HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="merchant.time_zone", target=f"merchant:{user.merchant_id}",
                 changes={"time_zone": [before, value]})
    session.commit()
    return redirect(url_for("console.programme_locations"), HTTPStatus.SEE_OTHER)
