"""The staff till (``/till``): a page for a shared phone or tablet at the counter, and the
JSON calls its script makes (spec: /work/shared/product/cockpit.md, "The till flow").

Two credentials, both cookies the page's script cannot read: the *device* token (a till of
one store, set once when the owner or a manager registers the device, for 400 days), and
the staff user signed in on it with a PIN (kept in the signed session, tied to the device).
Every call is the merchant's through that device, so a card of another merchant is never
found. What a staff user may do is their role's bundle of permissions (``permissions.py``),
the same bundle as an API key of the ``till`` scope, and every post goes through the same
services as the API (``services.till``). Posts carry the device's ``Idempotency-Key``.

The views are thin: parse, one service call, commit, answer. JSON problems name the field.
"""

from __future__ import annotations

import datetime as dt
import functools
import mimetypes
from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from typing import Literal

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import make_response
from flask import render_template
from flask import request
from flask import session as cookie_session
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from ... import i18n
from ...errors import AuthenticationFailed
from ...errors import InvalidInput
from ...errors import PermissionDenied
from ...errors import WalletError
from ...permissions import Permission
from ...services import accounts
from ...services import ledger
from ...services import rewards
from ...services import till
from ...services import transactions
from ...validation import validate
from .. import get_session
from .. import wallet
from ..csrf import csrf_token
from ..csrf import csrf_valid
from ..problems import from_wallet_error
from .words import error_text
from .words import words

bp = Blueprint("till", __name__, url_prefix="/till")

DEVICE_COOKIE = "wallet_till"
LANG_COOKIE = "wallet_till_lang"
#: The device stays a till this long without being used (browsers cap cookies at 400 days).
DEVICE_DAYS = 400
#: A staff sign-in lasts at most a shift; staff switch by signing out.
SHIFT = dt.timedelta(hours=12)
_SESSION_KEY = "till"

# Python's table may not know WebAssembly; browsers compile it fastest with its own type.
mimetypes.add_type("application/wasm", ".wasm")

_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        "connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'")


@bp.errorhandler(WalletError)
def _wallet_error(exc: WalletError) -> Response:
    """The service's problem, with ``message``: what the till shows, in its language."""
    response = from_wallet_error(exc)
    text = error_text(_lang(), exc)
    if text is not None:
        body = response.get_json()
        body["message"] = text
        response.set_data(current_app.json.dumps(body))
    return response


def _lang() -> str:
    return i18n.best_language(request.args.get("lang"), request.cookies.get(LANG_COOKIE),
                              [v for v, _q in request.accept_languages], i18n.LANGUAGES)


# --- the page, its manifest and its service worker ------------------------------------


@bp.get("")
def page() -> Response:
    """The page shell: the same for every device and user (the service worker keeps it for
    offline starts); the script asks ``/till/api/state`` who is here."""
    lang = _lang()
    html = render_template("till/till.html", lang=lang, w=words(lang),
                           other_lang="en" if lang == "ru" else "ru")
    response = make_response(html)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Cache-Control"] = "no-cache"
    if request.args.get("lang") in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    lang = _lang()
    response = jsonify({
        "name": words(lang)["title"], "short_name": words(lang)["title"], "lang": lang,
        "start_url": "/till", "scope": "/till", "display": "standalone",
        "orientation": "portrait", "background_color": "#ffffff", "theme_color": "#1f6f4a",
        "icons": [{"src": "/static/till/icon-192.png", "sizes": "192x192",
                   "type": "image/png"},
                  {"src": "/static/till/icon-512.png", "sizes": "512x512",
                   "type": "image/png", "purpose": "any maskable"}],
    })
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served under ``/till`` so that it may control the page."""
    source = Path(current_app.static_folder or "", "till", "sw.js").read_text(encoding="utf-8")
    response = Response(source, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/till"
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- who is here ------------------------------------------------------------------------


def _device() -> Any:
    device = till.device_for_token(get_session(), request.cookies.get(DEVICE_COOKIE))
    if device is None:
        raise AuthenticationFailed("this device is not a till; register it first",
                                   field="device")
    return device


def _context() -> till.TillContext:
    device = _device()
    held = cookie_session.get(_SESSION_KEY)
    if not isinstance(held, dict) or held.get("d") != device.id:
        raise AuthenticationFailed("sign in with your PIN", field="pin")
    started = dt.datetime.fromtimestamp(float(held.get("t", 0)), dt.UTC)
    if dt.datetime.now(dt.UTC) - started > SHIFT:
        cookie_session.pop(_SESSION_KEY, None)
        raise AuthenticationFailed("the shift's sign-in ended; sign in with your PIN",
                                   field="pin")
    context = till.context_for(get_session(), device, int(held.get("u", 0)))
    if context is None:
        cookie_session.pop(_SESSION_KEY, None)
        raise AuthenticationFailed("sign in with your PIN", field="pin")
    return context


def staff_call(permission: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A JSON call of a signed-in staff user whose role holds ``permission``: checks the
    device, the sign-in, the permission and (for posts) the CSRF token, and passes the
    :class:`~wallet_service.services.till.TillContext` as ``ctx``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            _check_csrf()
            ctx = _context()
            if permission not in ctx.permissions:
                raise PermissionDenied(f"your role '{ctx.role}' lacks the '{permission}' "
                                       "permission", permission=str(permission))
            g.till = ctx
            return view(ctx=ctx, **kwargs)

        return wrapper

    return decorator


def _check_csrf() -> None:
    if request.method != "GET" and not csrf_valid():
        raise PermissionDenied("reload the page: the request lacks its CSRF token",
                               field="X-CSRF-Token")


def _body(model: type[BaseModel]) -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("body: send a JSON object", field="body")
    return validate(model, data, strict=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceIn(_Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    location_id: int = Field(ge=1, le=2**53)
    name: str = Field(max_length=100)


class PinIn(_Strict):
    user_id: int = Field(ge=1, le=2**53)
    pin: str = Field(min_length=1, max_length=20)


class LookupIn(_Strict):
    code: str = Field(min_length=1, max_length=64)
    scanned: bool = False


class QuoteIn(_Strict):
    amount: Decimal = Field(gt=0, max_digits=14)


class ActionIn(_Strict):
    kind: Literal["purchase", "stamps", "spend", "reward", "coupon", "refund", "undo"]
    amount: Decimal | None = Field(None, gt=0, max_digits=14)
    purchase_amount: Decimal | None = Field(None, gt=0, max_digits=14)
    count: int | None = Field(None, ge=1, le=1000)
    points: int | None = Field(None, ge=1, le=10**12)
    reward_id: int | None = Field(None, ge=1, le=2**53)
    coupon_id: int | None = Field(None, ge=1, le=2**53)
    entry_id: int | None = Field(None, ge=1, le=2**53)


@bp.get("/api/state")
def state() -> Response:
    """Who is here: the device's store and staff, the signed-in user, the CSRF token."""
    session = get_session()
    device = till.device_for_token(session, request.cookies.get(DEVICE_COOKIE))
    answer: dict[str, Any] = {"csrf": csrf_token(), "device": None, "staff": [], "user": None}
    if device is not None:
        answer["device"] = {"id": device.id, "name": device.name,
                            "location": till.location_name(session, device)}
        answer["staff"] = [{"id": s.user_id, "label": s.label}
                           for s in till.staff_for_device(session, device)]
        try:
            ctx = _context()
            answer["user"] = {"id": ctx.user_id, "role": ctx.role}
        except AuthenticationFailed:
            pass
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/device")
def register_device() -> Response:
    """The owner or a manager makes this device a till of one store, with their console
    e-mail and password (a wrong one counts towards their console lock)."""
    _check_csrf()
    body = _body(DeviceIn)
    _limit(f"till-device:{request.remote_addr}:{body.email.strip().lower()}")
    session = get_session()
    try:
        user = accounts.authenticate(session, body.email, body.password,
                                     ip=request.remote_addr)
    except WalletError:
        session.commit()  # the failure counts
        raise
    if Permission.SETTINGS not in till._role_permissions(user.role):
        session.commit()
        raise PermissionDenied("only the owner or a manager registers a till",
                               field="email")
    device, token = till.register_device(session, user.merchant_id, body.location_id,
                                         body.name, registered_by=user.id)
    session.commit()
    cookie_session.pop(_SESSION_KEY, None)
    response = jsonify({"device": {"id": device.id, "name": device.name}})
    response.status_code = HTTPStatus.CREATED
    response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_DAYS * 86400, httponly=True,
                        secure=request.is_secure, samesite="Strict", path="/till")
    return response


def _limit(key: str) -> None:
    """Spend one of the sign-in budget's attempts of ``key`` (a device's PINs, or one
    address trying one e-mail), the console's budget per minute."""
    wait = wallet().limiters.sign_in.allow(key)
    if wait > 0:
        raise PermissionDenied(f"too many attempts; try again in {int(wait) + 1} s",
                               field="pin", retry_after=int(wait) + 1)


@bp.post("/api/sign-in")
def sign_in() -> Response:
    """A staff user signs in on this device with their PIN."""
    _check_csrf()
    device = _device()
    _limit(f"till-pin:{device.token_hash[:32]}")
    body = _body(PinIn)
    session = get_session()
    result = till.sign_in(session, device, body.user_id, body.pin)
    session.commit()
    if result.context is None:
        extra: dict[str, Any] = {}
        if result.locked_until is not None:
            extra["locked_until"] = result.locked_until.isoformat()
        else:
            extra["attempts_left"] = result.attempts_left
        raise AuthenticationFailed("wrong PIN" if result.locked_until is None
                                   else "the PIN is locked for now", field="pin", **extra)
    cookie_session[_SESSION_KEY] = {"d": device.id, "u": result.context.user_id,
                                    "t": dt.datetime.now(dt.UTC).timestamp()}
    return jsonify({"user": {"id": result.context.user_id, "role": result.context.role}})


@bp.post("/api/sign-out")
def sign_out() -> Response:
    _check_csrf()
    cookie_session.pop(_SESSION_KEY, None)
    return Response(status=HTTPStatus.NO_CONTENT)


# --- customers and actions --------------------------------------------------------------


@bp.post("/api/lookup")
@staff_call(Permission.READ)
def lookup(ctx: till.TillContext) -> Response:
    """Find a card by its scanned code, or by a typed card number or phone (recorded)."""
    body = _body(LookupIn)
    session = get_session()
    member_id = till.find_member(session, ctx, body.code, scanned=body.scanned,
                                 default_region=wallet().settings.default_region)
    session.commit()
    return jsonify({"member": _member(session, ctx, member_id)})


@bp.get("/api/members/<int:member_id>")
@staff_call(Permission.READ)
def member(ctx: till.TillContext, member_id: int) -> Response:
    return jsonify({"member": _member(get_session(), ctx, member_id)})


@bp.post("/api/members/<int:member_id>/quote")
@staff_call(Permission.READ)
def quote(ctx: till.TillContext, member_id: int) -> Response:
    """What a purchase would give, shown before confirming."""
    body = _body(QuoteIn)
    q = till.quote_purchase(get_session(), ctx.merchant_id, member_id, body.amount)
    return jsonify({"amount_minor": q.amount_minor, "points": q.points, "stamps": q.stamps,
                    "discount_percent": (str(q.discount_percent)
                                         if q.discount_percent is not None else None),
                    "discount_minor": q.discount_minor})


@bp.post("/api/members/<int:member_id>/actions")
@staff_call(Permission.TRANSACTIONS_WRITE)
def action(ctx: till.TillContext, member_id: int) -> Response:
    """One action on the member's card, with the device's ``Idempotency-Key``: a retry of
    the same action answers with the first result and credits nothing twice."""
    body = _body(ActionIn)
    key = request.headers.get("Idempotency-Key")
    if key is None or not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise InvalidInput("Idempotency-Key: 1 to 255 printable ASCII characters",
                           field="Idempotency-Key")
    session = get_session()
    try:
        posted = _post_once(session, ctx, member_id, body, key)
    except till.LimitReached:
        session.commit()  # the hit is recorded
        raise
    result = {"entry_id": posted.entry.id, "type": posted.entry.type,
              "points": posted.entry.points, "stamps": posted.entry.stamps,
              "replayed": posted.replayed}
    response = jsonify({"result": result, "member": _member(session, ctx, member_id)})
    response.status_code = HTTPStatus.OK if posted.replayed else HTTPStatus.CREATED
    return response


def _post_once(session: Any, ctx: till.TillContext, member_id: int, body: ActionIn,
               key: str) -> ledger.Posted:
    for attempt in (1, 2):
        try:
            posted = _dispatch(session, ctx, member_id, body, key)
            session.commit()
            return posted
        except IntegrityError:
            # A concurrent retry committed the key first: under the card's lock the second
            # run finds its entry and replays it.
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _dispatch(session: Any, ctx: till.TillContext, member_id: int, body: ActionIn,
              key: str) -> ledger.Posted:
    merchant = ctx.merchant_id
    if body.kind == "undo":
        return till.undo(session, ctx, member_id, _need(body.entry_id, "entry_id"),
                         idempotency_key=key)

    def do(actor: ledger.Actor) -> ledger.Posted:
        if body.kind == "purchase":
            return transactions.post_transaction(
                session, merchant, member_id,
                transactions.Operation(type="earn", amount=_need(body.amount, "amount")),
                idempotency_key=key, actor=actor)
        if body.kind == "stamps":
            return transactions.post_stamps(session, merchant, member_id,
                                            _need(body.count, "count"),
                                            idempotency_key=key, actor=actor)
        if body.kind == "spend":
            return transactions.post_transaction(
                session, merchant, member_id,
                transactions.Operation(type="redeem", points=body.points, amount=body.amount,
                                       purchase_amount=body.purchase_amount),
                idempotency_key=key, actor=actor)
        if body.kind == "reward":
            return rewards.redeem_reward(session, merchant, member_id,
                                         _need(body.reward_id, "reward_id"),
                                         idempotency_key=key, actor=actor)
        if body.kind == "coupon":
            return rewards.redeem_coupon(session, merchant, member_id,
                                         _need(body.coupon_id, "coupon_id"),
                                         idempotency_key=key, actor=actor)
        return transactions.post_transaction(
            session, merchant, member_id,
            transactions.Operation(type="refund", original_id=_need(body.entry_id, "entry_id"),
                                   amount=body.amount),
            idempotency_key=key, actor=actor)

    if body.kind == "spend" and body.points is None and body.amount is None:
        raise InvalidInput("points: give points, or the amount of cashback", field="points")
    return till.post(session, ctx, member_id, do)


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise InvalidInput(f"{name}: required for this action", field=name)
    return value


def _member(session: Any, ctx: till.TillContext, member_id: int) -> dict[str, Any]:
    view = till.member_view(session, ctx.merchant_id, member_id)
    lang = _lang()
    shown = i18n.standing_words(lang, view.standing)
    now = dt.datetime.now(dt.UTC)
    undo_after = now - dt.timedelta(minutes=till.UNDO_MINUTES)
    undone = {e.reference_id for e in view.last if e.type in ("refund", "adjust")}
    return {
        "id": view.member_id, "name": view.name, "card_number": view.card_number,
        "closed": view.status != "active", "kind": view.kind, "currency": view.currency,
        "balance": {"label": shown.label, "value": shown.value, "unit": shown.unit},
        "lines": [text for _key, _heading, text in shown.lines],
        "tier": view.standing.tier,
        "max_redeem_percent": (str(view.max_redeem_percent)
                               if view.max_redeem_percent is not None else None),
        "points": view.balance,
        "rewards": [{"id": r.id, "name": i18n.localized(r.name, lang), "cost": r.cost}
                    for r in view.rewards],
        "coupons": [{"id": c.id, "name": i18n.localized(c.name, lang)}
                    for c in view.coupons],
        "last": [{"id": e.id, "type": e.type, "points": e.points, "stamps": e.stamps,
                  "amount_minor": e.amount_minor, "at": e.created_at.isoformat(),
                  "undo": (e.type in ("earn", "redeem") and e.id not in undone
                           and e.created_at >= undo_after)}
                 for e in view.last],
    }
