"""The console's frame: the blueprint, who is signed in, the page decorator, rendering, the
navigation, CSRF and the security headers every console page shares.

A console page is a view on :data:`bp` wrapped in :func:`console_page`::

    from ...permissions import Permission
    from .frame import bp, console_page, current_user, render

    @bp.get("/things")
    @console_page(Permission.READ)
    def things() -> Response:
        user = current_user()          # .merchant_id, .role, .permissions, .actor, .lang
        found = things_service.list(get_session(), user.merchant_id)
        return render("console/things.html", title="things_title", things=found)

Signed out, the page redirects to the sign-in (and back after it); without the permission it
answers a rendered 403. Every POST to the blueprint must carry the CSRF token
(``{{ csrf_field() }}`` in the form, or the ``X-CSRF-Token`` header): without it, 400.
Templates extend ``console/base.html`` and get ``t`` (words), ``plural``, ``fmt_dt``,
``fmt_num``, ``user``, ``lang``, ``nav`` and ``csrf_field``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from http import HTTPStatus
from typing import Any
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from markupsafe import Markup
from markupsafe import escape
from sqlalchemy import select

from ...db import utcnow
from ...errors import PermissionDenied
from ...errors import ResourceNotFound
from ...models import ConsoleUser
from ...models import Merchant
from ...permissions import ROLES
from ...permissions import Permission
from ...permissions import Role
from ...services.audit import Actor
from .. import get_session
from .. import wallet
from ..csrf import FIELD as CSRF_FIELD
from ..csrf import csrf_token
from ..csrf import csrf_valid
from . import words

bp = Blueprint("console", __name__, url_prefix="/console")

#: A console session ends this long after sign-in, whatever happens.
SESSION_HOURS = 12
#: The language chosen before sign-in (and the last one used on this browser).
LANG_COOKIE = "console_lang"
LANG_COOKIE_AGE = 365 * 24 * 3600

_USER = "console_user"
_EPOCH = "console_epoch"
_SINCE = "console_since"

F = TypeVar("F", bound=Callable[..., Any])


# --- who is signed in -------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """The signed-in console user as pages see it."""

    id: int
    merchant_id: int
    merchant_name: str
    time_zone: str
    email: str
    role: Role
    permissions: frozenset[Permission]
    lang: str
    actor: Actor = field(repr=False)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def current_user() -> SignedIn:
    """The signed-in user of this request (inside a :func:`console_page` view).

    :raises PermissionDenied: nobody is signed in (use only in console pages).
    """
    user = _load_user()
    if user is None:
        raise PermissionDenied("not signed in")
    return user


def signed_in_user() -> SignedIn | None:
    """The signed-in user, or None."""
    return _load_user()


def _load_user() -> SignedIn | None:
    if "console_user" in g:
        loaded: SignedIn | None = g.console_user
        return loaded
    g.console_user = None
    user_id, epoch, since = session.get(_USER), session.get(_EPOCH), session.get(_SINCE)
    if not isinstance(user_id, int) or not isinstance(epoch, int) or not isinstance(since, int):
        return None
    if utcnow().timestamp() - since > SESSION_HOURS * 3600:
        return None
    row = get_session().execute(
        select(ConsoleUser, Merchant.name, Merchant.time_zone)
        .join(Merchant, Merchant.id == ConsoleUser.merchant_id)
        .where(ConsoleUser.id == user_id)).first()
    if row is None:
        return None
    user, merchant_name, time_zone = row
    if user.disabled_at is not None or user.session_epoch != epoch:
        return None
    try:
        role = Role(user.role)
    except ValueError:
        return None  # a role this version does not know: fail closed
    g.console_user = SignedIn(
        id=user.id, merchant_id=user.merchant_id, merchant_name=merchant_name,
        time_zone=time_zone, email=user.email, role=role, permissions=ROLES[role],
        lang=words.best_language(user.locale),
        actor=Actor("user", user.id, user.email, request.remote_addr))
    return g.console_user  # type: ignore[no-any-return]


def start_session(user: ConsoleUser) -> None:
    """Sign ``user`` in on this browser: a fresh session (and CSRF token) bound to the
    user's current session epoch."""
    session.clear()
    session[_USER] = user.id
    session[_EPOCH] = user.session_epoch
    session[_SINCE] = int(utcnow().timestamp())
    csrf_token()  # a new token for the new session
    g.pop("console_user", None)


def end_session() -> None:
    """Sign out on this browser."""
    for key in (_USER, _EPOCH, _SINCE):
        session.pop(key, None)
    g.pop("console_user", None)


# --- the page decorator -----------------------------------------------------------------


def console_page(permission: Permission | None = Permission.READ) -> Callable[[F], F]:
    """Make a view a console page that needs ``permission`` (``None``: any signed-in user).

    Signed out: a redirect to the sign-in page (``HX-Redirect`` for htmx requests); signed
    in without the permission: a rendered 403 page."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = _load_user()
            if user is None:
                return sign_in_redirect()
            if permission is not None and not user.can(permission):
                return error_page(HTTPStatus.FORBIDDEN)
            return view(*args, **kwargs)

        wrapper.console_permission = permission  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def sign_in_redirect() -> Response:
    """To the sign-in page, coming back to this page after it."""
    target = request.full_path if request.method == "GET" else request.path
    location = url_for("console.sign_in", next=target.rstrip("?"))
    if request.headers.get("HX-Request"):
        response = make_response("", HTTPStatus.NO_CONTENT)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, HTTPStatus.SEE_OTHER)


def safe_next(target: str | None) -> str:
    """``target`` if it is a console path of this site, else the overview."""
    if target and target.startswith("/console") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("console.overview")


# --- language ---------------------------------------------------------------------------


def lang() -> str:
    """The console language of this request: the signed-in user's, else the browser's
    cookie, else what the browser asks for."""
    user = _load_user()
    if user is not None:
        return user.lang
    return words.best_language(
        request.cookies.get(LANG_COOKIE),
        request.accept_languages.best_match(words.LANGUAGES))


def t(key: str, /, **values: object) -> str:
    """A console word in this request's language."""
    return words.t(lang(), key, **values)


# --- navigation -------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    """A section of the console's navigation: shown when its endpoint exists and the user
    holds its permission."""

    key: str
    endpoint: str
    word: str
    permission: Permission | None = Permission.READ


#: The information architecture (product brief "cockpit"): a page whose endpoint is named
#: here appears in the navigation once it exists. Settings sub-pages: ``SETTINGS_LINKS``.
NAV: list[NavItem] = [
    NavItem("overview", "console.overview", "nav_overview"),
    NavItem("programme", "console.programme", "nav_programme", Permission.SETTINGS),
    NavItem("members", "console.members", "nav_members"),
    NavItem("messages", "console.messages", "nav_messages", Permission.SETTINGS),
    NavItem("analytics", "console.analytics", "nav_analytics"),
    NavItem("till", "console.till", "nav_till", Permission.TRANSACTIONS_WRITE),
    NavItem("settings", "console.settings", "nav_settings", Permission.SETTINGS),
]

#: The links of the Settings page, in order; an area adds its own with :func:`settings_link`.
SETTINGS_LINKS: list[NavItem] = []


def nav_item(key: str, endpoint: str, word: str,
             permission: Permission | None = Permission.READ, *,
             before: str | None = None) -> None:
    """Add a section to the navigation (or point an existing ``key`` at another endpoint)."""
    item = NavItem(key, endpoint, word, permission)
    for i, existing in enumerate(NAV):
        if existing.key == key:
            NAV[i] = item
            return
    keys = [n.key for n in NAV]
    NAV.insert(keys.index(before) if before in keys else len(NAV), item)


def settings_link(key: str, endpoint: str, word: str,
                  permission: Permission | None = Permission.SETTINGS) -> None:
    """Add a link to the Settings page (once per key)."""
    if all(item.key != key for item in SETTINGS_LINKS):
        SETTINGS_LINKS.append(NavItem(key, endpoint, word, permission))


def visible(items: list[NavItem], user: SignedIn | None) -> list[dict[str, Any]]:
    """The items ``user`` may open whose pages exist, with their URLs and whether the
    current request is inside them."""
    if user is None:
        return []
    shown = []
    for item in items:
        if item.endpoint not in current_app.view_functions:
            continue
        if item.permission is not None and not user.can(item.permission):
            continue
        url = url_for(item.endpoint)
        shown.append({"key": item.key, "url": url, "label": words.t(user.lang, item.word),
                      "current": _is_current(item, url)})
    return shown


def _is_current(item: NavItem, url: str) -> bool:
    section = getattr(g, "console_section", None)
    if section is not None:
        return bool(section == item.key)
    return request.path == url or (url != "/console/" and request.path.startswith(url + "/"))


def section(key: str) -> None:
    """Mark the navigation item ``key`` as current for this request (for pages whose URL
    is not under the item's)."""
    g.console_section = key


# --- rendering --------------------------------------------------------------------------


def csrf_field() -> Markup:
    """The hidden CSRF input every console form carries."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(csrf_token()))


def render(template: str, *, title: str, status: int = HTTPStatus.OK, **context: Any
           ) -> Response:
    """Render a console page: ``title`` is a word key (the page's ``<title>`` and, unless
    the template says otherwise, its heading); ``context`` goes to the template."""
    user = _load_user()
    language = lang()
    tr = partial(words.t, language)
    html = render_template(
        template, lang=language, t=tr, plural=partial(words.plural, language),
        fmt_num=partial(words.format_number, language),
        fmt_dt=partial(words.format_datetime, language,
                       time_zone=user.time_zone if user else "UTC"),
        user=user, nav=visible(NAV, user), title=tr(title), csrf_field=csrf_field,
        csrf_token=csrf_token, languages=words.LANGUAGE_NAMES,
        has_word=lambda key: key in words.all_words(), **context)
    return make_response(html, status)


def error_page(status: int) -> Response:
    """A rendered error page for ``status`` (400, 403, 404, 429)."""
    return render("console/error.html", title=f"error_{int(status)}_title", status=status,
                  code=int(status))


# --- hooks ------------------------------------------------------------------------------


@bp.before_request
def _check_csrf() -> Response | None:
    if request.method == "POST" and not csrf_valid():
        return error_page(HTTPStatus.BAD_REQUEST)
    return None


@bp.after_request
def _console_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.vary.add("Cookie")
    return response


def content_security_policy() -> str:
    """Scripts from this site only (the vendored htmx), requests back to it, nothing
    external, no framing."""
    public_url = wallet().settings.public_url
    return ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; "
            f"form-action 'self' {public_url}; base-uri 'none'; frame-ancestors 'none'")


@bp.errorhandler(ResourceNotFound)
def _not_found(_exc: ResourceNotFound) -> Response:
    return error_page(HTTPStatus.NOT_FOUND)


@bp.errorhandler(PermissionDenied)
def _forbidden(_exc: PermissionDenied) -> Response:
    return error_page(HTTPStatus.FORBIDDEN)


def limited(name: str = "sign_in") -> Response | None:
    """A rendered 429 when this client spent its ``wallet().limiters.<name>`` budget."""
    wait = getattr(wallet().limiters, name).allow(request.remote_addr or "?")
    if not wait:
        return None
    response = error_page(HTTPStatus.TOO_MANY_REQUESTS)
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response


def remember_language(response: Response, language: str) -> None:
    """Keep ``language`` in this browser's cookie (used before sign-in)."""
    response.set_cookie(LANG_COOKIE, language, max_age=LANG_COOKIE_AGE, samesite="Lax",
                        httponly=True, secure=request.is_secure)


def now() -> dt.datetime:
    """The current moment (aware, UTC)."""
    return utcnow()
