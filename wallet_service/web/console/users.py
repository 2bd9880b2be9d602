"""Users and roles (owners): invite with a one-time expiring link (shown as link and QR code
to hand over, and sent by e-mail when mail is set up), reset a password the same way,
change a role, disable a user. Audited by ``services.accounts``."""

from __future__ import annotations

from http import HTTPStatus

import segno
from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ...errors import ResourceConflict
from ...errors import ValidationFailed
from ...permissions import Permission
from ...permissions import Role
from ...services import accounts
from .. import get_session
from .. import wallet
from . import mail
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section


def _page(*, link: dict[str, object] | None = None, error: str | None = None,
          status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    section("settings")
    return render("console/users.html", title="users_title",
                  users=accounts.list_users(get_session(), user.merchant_id),
                  roles=list(Role), link=link, error=error, status=status,
                  can_mail=mail.enabled())


def _link(new: accounts.NewLink, purpose: str) -> dict[str, object]:
    url = wallet().settings.public_url + url_for("console.welcome", token=new.token)
    qr = segno.make(url, error="m").svg_inline(
        scale=1, border=2, omitsize=True, dark="#000", light="#fff", title=url, svgclass="qr")
    sent = False
    if mail.enabled() and request.form.get("send") == "yes":
        sent = mail.send(new.user.email, f"mail_{purpose}_subject", f"mail_{purpose}_body",
                         lang=new.user.locale, link=url, email=new.user.email,
                         merchant=current_user().merchant_name)
    return {"url": url, "qr": Markup(qr), "email": new.user.email, "purpose": purpose,
            "expires_at": new.expires_at, "sent": sent}


@bp.get("/settings/users")
@console_page(Permission.KEYS)
def users() -> Response:
    """The merchant's console users and the invitation form."""
    return _page()


@bp.post("/settings/users")
@console_page(Permission.KEYS)
def invite() -> ResponseReturnValue:
    """Invite a user: a new user without a password and the link to choose one."""
    user = current_user()
    session = get_session()
    try:
        new = accounts.invite_user(session, user.merchant_id, request.form.get("email", ""),
                                   request.form.get("role", ""),
                                   locale=request.form.get("locale", user.lang),
                                   actor=user.actor)
    except ResourceConflict:
        session.rollback()
        return _page(error="user_email_taken", status=HTTPStatus.CONFLICT)
    except ValidationFailed as exc:
        session.rollback()
        return _page(error=f"user_{exc.field or 'email'}_invalid",
                     status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session.commit()
    return _page(link=_link(new, "invite"), status=HTTPStatus.CREATED)


@bp.post("/settings/users/<int:user_id>/reset")
@console_page(Permission.KEYS)
def reset(user_id: int) -> ResponseReturnValue:
    """A one-time link on which the user chooses a new password."""
    user = current_user()
    session = get_session()
    try:
        new = accounts.reset_link(session, user.merchant_id, user_id, actor=user.actor)
    except ResourceConflict:
        session.rollback()
        return _page(error="user_disabled", status=HTTPStatus.CONFLICT)
    session.commit()
    return _page(link=_link(new, "reset"))


@bp.post("/settings/users/<int:user_id>/role")
@console_page(Permission.KEYS)
def change_role(user_id: int) -> ResponseReturnValue:
    """Give the user another role (the merchant keeps an owner)."""
    user = current_user()
    session = get_session()
    try:
        accounts.change_role(session, user.merchant_id, user_id, request.form.get("role", ""),
                             actor=user.actor)
    except ResourceConflict:
        session.rollback()
        return _page(error="user_last_owner", status=HTTPStatus.CONFLICT)
    except ValidationFailed:
        session.rollback()
        return _page(error="user_role_invalid", status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session.commit()
    return redirect(url_for("console.users"), HTTPStatus.SEE_OTHER)


@bp.post("/settings/users/<int:user_id>/disable")
@console_page(Permission.KEYS)
def disable(user_id: int) -> ResponseReturnValue:
    """The user can no longer sign in; their sessions end."""
    user = current_user()
    session = get_session()
    try:
        accounts.disable_user(session, user.merchant_id, user_id, actor=user.actor)
    except ResourceConflict:
        session.rollback()
        return _page(error="user_last_owner", status=HTTPStatus.CONFLICT)
    session.commit()
    return redirect(url_for("console.users"), HTTPStatus.SEE_OTHER)
