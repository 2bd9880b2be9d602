"""The card designer: colours, images, texts, barcode, contacts, locations and languages,
with a preview of the Apple card (front and back) and of the Google card that follows the
form as the merchant types.

The form is posted by htmx (``hx-trigger="input changed delay:300ms"``) to
:func:`design_preview`, which applies it to the programme as the API's merge patch would,
validates it as the API does and renders the preview from the ``pass.json`` and the Google
object of a sample member (``services.card_preview``): the preview shows what the pass will
show. Saving first says how many cards will update and that no phone will be notified (a
design change updates silently), then saves on confirmation and writes the audit entry.
A QR code opens a sample card page on the merchant's own phone, with the sample pass."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from http import HTTPStatus
from typing import Any

import segno
from babel.dates import format_date
from babel.numbers import format_currency
from babel.numbers import format_decimal
from babel.numbers import format_percent
from flask import Response
from flask import current_app
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from ...apple import PKPASS_MEDIA_TYPE
from ...apple import prepare_image
from ...errors import InvalidInput
from ...models import LoyaltyProgram
from ...permissions import Permission
from ...schemas import LANGUAGES
from ...services import audit
from ...services import card_preview
from ...services import programs
from .. import get_session
from .. import wallet
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import error_page
from .frame import render
from .frame import section
from .frame import t
from .programme import SECTIONS

BARCODES = ("qr", "pdf417", "aztec", "code128")
IMAGE_KINDS = ("logo", "icon", "strip")
FRONT = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields")
#: Design fields the form edits as plain texts.
TEXTS = ("logo_text", "description", "points_label")
COLOURS = ("background_color", "foreground_color", "label_color")
MAX_LOCATIONS = 10


# --- the form ---------------------------------------------------------------------------


def form_values(program: LoyaltyProgram) -> MultiDict[str, str]:
    """The designer's form filled from the saved programme."""
    d: dict[str, Any] = program.design or {}
    values: MultiDict[str, str] = MultiDict()
    for name in (*COLOURS, *TEXTS):
        values[name] = d.get(name) or ""
    for name in ("rules_text", "terms_text"):
        text = d.get(name)
        for lang in LANGUAGES:
            values[f"{name}_{lang}"] = (text.get(lang, "") if isinstance(text, dict)
                                        else (text or "") if lang == program.languages[0] else "")
    contact = d.get("contact") or {}
    for name in ("phone", "email", "website"):
        values[f"contact_{name}"] = contact.get(name) or ""
    values["barcode_format"] = d.get("barcode_format") or "qr"
    values["locations"] = "\n".join(
        ", ".join(str(x) for x in (loc["latitude"], loc["longitude"],
                                   loc.get("relevant_text") or "") if x != "")
        for loc in d.get("locations") or ())
    for lang in program.languages:
        values.add("languages", lang)
    return values


def design_patch(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merge patch of the programme (``design`` whole, ``languages``) that the form asks
    for, and the fields it could not read (a location line that is not ``lat, lon, text``)."""
    errors: dict[str, str] = {}
    design: dict[str, Any] = {}
    for name in (*COLOURS, *TEXTS):
        design[name] = form.get(name, "").strip() or None
    for name in ("rules_text", "terms_text"):
        texts = {lang: form.get(f"{name}_{lang}", "").strip() for lang in LANGUAGES}
        texts = {lang: text for lang, text in texts.items() if text}
        design[name] = texts or None
    design["contact"] = {name: form.get(f"contact_{name}", "").strip() or None
                         for name in ("phone", "email", "website")}
    design["barcode_format"] = form.get("barcode_format") or "qr"
    found = []
    for line in form.get("locations", "").splitlines()[:MAX_LOCATIONS + 1]:
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        try:
            spot: dict[str, Any] = {"latitude": float(parts[0]), "longitude": float(parts[1])}
        except (ValueError, IndexError):
            errors["locations"] = "design_location_unreadable"
            continue
        if len(parts) > 2 and parts[2]:
            spot["relevant_text"] = parts[2]
        found.append(spot)
    design["locations"] = found
    languages = [lang for lang in LANGUAGES if lang in form.getlist("languages")]
    first = form.get("first_language")
    if first in languages:
        languages.remove(first)
        languages.insert(0, first)
    return {"design": design, "languages": languages}, errors


def error_field(field: str) -> str:
    """The form field an API error (``design.rules_text``, ``design.contact.email``,
    ``design.locations[0].latitude``...) belongs to."""
    path = field.removeprefix("design.")
    if path.startswith("contact."):
        return "contact_" + path.split(".")[1]
    if path.startswith("locations"):
        return "locations"
    for name in ("rules_text", "terms_text"):
        if path.startswith(name):
            return f"{name}_{path.split('.')[1]}" if "." in path else f"{name}_{LANGUAGES[0]}"
    if path in (*COLOURS, *TEXTS, "barcode_format", "languages"):
        return path
    return "form"


# --- showing a pass as the phone does -----------------------------------------------------


def shown_value(field: dict[str, Any], strings: dict[str, str], lang: str) -> str:
    """A field's value as Wallet shows it in ``lang``: a text through ``pass.strings``; a
    number, money, percentage or date formatted by the field's style (§1.5, §2.5)."""
    value = field.get("value")
    if isinstance(value, str):
        if "dateStyle" in field:
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                return format_date(moment.date(), "long", locale=lang)
            except ValueError:
                return value
        return strings.get(value, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if "currencyCode" in field:
        return format_currency(value, field["currencyCode"], locale=lang)
    if field.get("numberStyle") == "PKNumberStylePercent":
        return format_percent(value, locale=lang, decimal_quantization=False)
    return format_decimal(value, locale=lang)


def shown_fields(pass_json: dict[str, Any], strings: dict[str, str], lang: str,
                 areas: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for area in areas:
        for field in pass_json["storeCard"].get(area, ()):
            label = field.get("label")
            out.append({"area": area, "key": field["key"],
                        "label": strings.get(label, label) if isinstance(label, str) else "",
                        "value": shown_value(field, strings, lang),
                        "raw": field.get("value"),
                        "link": bool(field.get("dataDetectorTypes"))})
    return out


def _rgb(value: str | None) -> str | None:
    return value if value and value.startswith("rgb(") else None


def preview_context(sample: card_preview.SamplePass, lang: str) -> dict[str, Any]:
    """What the preview template shows, read from the sample pass only."""
    pj = sample.pass_json
    langs = list(sample.strings)
    lang = lang if lang in sample.strings else langs[0]
    strings = sample.strings[lang]
    barcode = pj["barcodes"][0]
    images = {kind: "data:image/png;base64," + base64.b64encode(data).decode()
              for kind, data in sample.images.items()}
    google = None
    if sample.google_object is not None and sample.google_class is not None:
        gc, go = sample.google_class, sample.google_object
        points = go.get("loyaltyPoints") or {}
        balance = points.get("balance") or {}
        google = {
            "program": gc.get("programName"), "issuer": gc.get("issuerName"),
            "background": gc.get("hexBackgroundColor"),
            "points_label": _localized(points.get("localizedLabel"), lang,
                                       points.get("label")),
            "balance": _google_balance(balance, lang),
            "name": go.get("accountName"),
            "barcode": (go.get("barcode") or {}).get("alternateText"),
            "modules": [{"header": _localized(m.get("localizedHeader"), lang, m.get("header")),
                         "body": _localized(m.get("localizedBody"), lang, m.get("body"))}
                        for m in go.get("textModulesData") or gc.get("textModulesData") or ()],
        }
    return {
        "lang": lang, "langs": langs,
        "bg": _rgb(pj.get("backgroundColor")), "fg": _rgb(pj.get("foregroundColor")),
        "label_colour": _rgb(pj.get("labelColor")),
        "logo_text": strings.get(pj.get("logoText", ""), pj.get("logoText", "")),
        "organization": pj.get("organizationName"),
        "front": shown_fields(pj, strings, lang, FRONT),
        "back": shown_fields(pj, strings, lang, ("backFields",)),
        "barcode_format": barcode["format"].removeprefix("PKBarcodeFormat"),
        "barcode_text": barcode.get("altText"),
        "barcode_qr": Markup(segno.make(barcode["message"], error="m").svg_inline(
            scale=1, border=2, omitsize=True, dark="#000", light="#fff",
            title=barcode.get("altText"), svgclass="qr")),
        "images": images, "google": google,
    }


def _localized(value: Any, lang: str, fallback: Any = None) -> str:
    if isinstance(value, dict):
        for item in value.get("translatedValues") or ():
            if item.get("language", "").split("-")[0] == lang:
                return str(item.get("value", ""))
        default = value.get("defaultValue") or {}
        return str(default.get("value", fallback or ""))
    return "" if fallback is None else str(fallback)


def _google_balance(balance: dict[str, Any], lang: str) -> str:
    if "money" in balance:
        money = balance["money"]
        return format_currency(int(money["micros"]) / 1_000_000, money["currencyCode"],
                               locale=lang)
    if "int" in balance:
        return format_decimal(int(balance["int"]), locale=lang)
    return str(balance.get("string", ""))


# --- pages ------------------------------------------------------------------------------


def _program(program_id: int) -> LoyaltyProgram:
    section("programme")
    return programs.get_program(get_session(), current_user().merchant_id, program_id)


def _sample(program: LoyaltyProgram) -> card_preview.SamplePass:
    state = wallet()
    return card_preview.sample_pass(get_session(), state.settings, state.google, program,
                                    _sample_page_url(program))


def _signature(program_id: int, join_token: str) -> str:
    secret = current_app.secret_key or b""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    return hmac.new(key, f"card-sample:{program_id}:{join_token}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def _sample_token(program: LoyaltyProgram) -> str:
    """The sample page's token: the programme and a signature of it and its join token
    (a new join token ends the old links)."""
    return f"{program.id}-{_signature(program.id, program.join_token)}"


def _sample_page_url(program: LoyaltyProgram) -> str:
    return wallet().settings.public_url + url_for("console.card_sample",
                                                  token=_sample_token(program))


def _designer(program: LoyaltyProgram, values: MultiDict[str, str],
              errors: dict[str, str], sample: card_preview.SamplePass | None,
              status: int = HTTPStatus.OK, notice: str | None = None) -> Response:
    user = current_user()
    sample_url = _sample_page_url(program)
    qr = segno.make(sample_url, error="m").svg_inline(
        scale=1, border=2, omitsize=True, dark="#000", light="#fff",
        title=t("design_sample_qr"), svgclass="qr")
    return render("console/programme_design.html", title="design_title", status=status,
                  program=program, values=values, errors=errors, barcodes=BARCODES,
                  all_languages=LANGUAGES, image_kinds=IMAGE_KINDS,
                  preview=preview_context(sample, user.lang) if sample else None,
                  sample_qr=Markup(qr), sample_url=sample_url, notice=notice,
                  sections=SECTIONS)


@bp.get("/programme/<int:program_id>/design")
@console_page(Permission.SETTINGS)
def programme_design(program_id: int) -> Response:
    program = _program(program_id)
    notice = request.args.get("done")
    return _designer(program, form_values(program), {}, _sample(program),
                     notice=notice if notice in ("design_saved", "image_saved") else None)


def _drafted(program: LoyaltyProgram, form: MultiDict[str, str]
             ) -> tuple[card_preview.Draft | None, dict[str, Any], dict[str, str]]:
    patch, errors = design_patch(form)
    if errors:
        return None, patch, errors
    try:
        return card_preview.draft(program, patch), patch, {}
    except InvalidInput as exc:
        return None, patch, {error_field(exc.field or ""): str(exc)}


@bp.post("/programme/<int:program_id>/design/preview")
@console_page(Permission.SETTINGS)
def design_preview(program_id: int) -> Response:
    """The preview of the form as it stands (htmx): the sample pass of the draft, or the
    errors that keep the draft from being a valid programme."""
    program = _program(program_id)
    drafted, _patch, errors = _drafted(program, request.form)
    sample = _sample(drafted.program) if drafted else None
    lang = request.form.get("preview_language") or current_user().lang
    return render("console/_design_preview.html", title="design_title",
                  preview=preview_context(sample, lang) if sample else None, errors=errors)


@bp.post("/programme/<int:program_id>/design")
@console_page(Permission.SETTINGS)
def design_save(program_id: int) -> ResponseReturnValue:
    """Save the design: first what it will do (cards updated, no phone notified), then, on
    confirmation, the API's merge patch and the audit entry."""
    user = current_user()
    program = _program(program_id)
    form = request.form
    drafted, patch, errors = _drafted(program, form)
    if errors or drafted is None:
        return _designer(program, form, errors, None, HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    if form.get("confirm") != "yes":
        impact = card_preview.design_impact(session, program.id)
        return render("console/programme_design_confirm.html", title="design_confirm_title",
                      program=program, impact=impact, form=form)
    before = programs.program_document(program).model_dump(mode="json")
    programs.update_program(session, user.merchant_id, program.id, patch)
    after = programs.program_document(program).model_dump(mode="json")
    changes = {}
    for key in ("design", "languages"):
        if key == "design":
            for name in set(before["design"]) | set(after["design"]):
                if before["design"].get(name) != after["design"].get(name):
                    changes[f"design.{name}"] = [before["design"].get(name),
                                                 after["design"].get(name)]
        elif before[key] != after[key]:
            changes[key] = [before[key], after[key]]
    if changes:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="programme.design", target=f"program:{program.id}",
                     changes=changes)
    session.commit()
    return redirect(url_for("console.programme_design", program_id=program.id,
                            done="design_saved"), HTTPStatus.SEE_OTHER)


@bp.post("/programme/<int:program_id>/design/images/<kind>")
@console_page(Permission.SETTINGS)
def design_image(program_id: int, kind: str) -> ResponseReturnValue:
    """Upload the logo, icon or strip (converted to the exact pass sizes, as the API does);
    every card shows it, silently."""
    if kind not in IMAGE_KINDS:
        return error_page(HTTPStatus.NOT_FOUND)
    user = current_user()
    program = _program(program_id)
    upload = request.files.get("file")
    session = get_session()
    try:
        if upload is None or not upload.filename:
            raise InvalidInput(f"{kind}: choose an image", field=kind)
        files = prepare_image(kind, upload.read())
        programs.set_program_image(session, user.merchant_id, program.id, kind, files)
    except InvalidInput as exc:
        session.rollback()
        program = _program(program_id)
        return _designer(program, form_values(program), {f"image_{kind}": str(exc)},
                         _sample(program), HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="programme.image", target=f"program:{program.id}",
                 changes={"kind": kind, "files": sorted(files)})
    session.commit()
    return redirect(url_for("console.programme_design", program_id=program.id,
                            done="image_saved"), HTTPStatus.SEE_OTHER)


@bp.get("/programme/<int:program_id>/design/sample.pkpass")
@console_page(Permission.SETTINGS)
def design_sample_pass(program_id: int) -> Response:
    """The sample member's pass of the saved design, signed as every member's is."""
    return _sample_pass_response(_program(program_id))


def _sample_pass_response(program: LoyaltyProgram) -> Response:
    state = wallet()
    data = card_preview.sample_pkpass(get_session(), state.settings, state.passes.signer,
                                      program, _sample_page_url(program))
    response = Response(data, mimetype=PKPASS_MEDIA_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="sample-{program.id}.pkpass"'
    return response


def _program_by_token(token: str) -> LoyaltyProgram | None:
    head, _, signature = token.partition("-")
    if not head.isdigit() or len(head) > 18 or len(signature) != 32:
        return None
    program = get_session().get(LoyaltyProgram, int(head))
    if program is None or not hmac.compare_digest(
            signature, _signature(program.id, program.join_token)):
        return None
    return program


@bp.get("/sample/<token>")
def card_sample(token: str) -> Response:
    """The sample card page the designer's QR code opens on the merchant's phone (no sign-in
    there; the link is signed and names the programme's join token, as public as the join
    link): the preview and the sample pass."""
    program = _program_by_token(token)
    if program is None:
        return error_page(HTTPStatus.NOT_FOUND)
    lang = request.args.get("lang") or program.languages[0]
    state = wallet()
    sample = card_preview.sample_pass(get_session(), state.settings, state.google, program,
                                      _sample_page_url(program))
    return render("console/card_sample.html", title="design_sample_title", program=program,
                  preview=preview_context(sample, lang), token=token)


@bp.get("/sample/<token>/pass.pkpass")
def card_sample_pass(token: str) -> Response:
    program = _program_by_token(token)
    if program is None:
        return error_page(HTTPStatus.NOT_FOUND)
    return _sample_pass_response(program)
