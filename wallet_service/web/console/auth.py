"""Signing in and out of the console, the user's own account (password, sign out everywhere),
the language switch, and the one-time links of invitations and password resets."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...errors import ResourceNotFound
from ...errors import ValidationFailed
from ...services import accounts
from .. import get_session
from . import words
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import end_session
from .frame import error_page
from .frame import limited
from .frame import remember_language
from .frame import render
from .frame import safe_next
from .frame import signed_in_user
from .frame import start_session


@bp.get("/sign-in")
def sign_in() -> ResponseReturnValue:
    """The sign-in form (signed in already: on to the console)."""
    if signed_in_user() is not None:
        return redirect(safe_next(request.args.get("next")), HTTPStatus.SEE_OTHER)
    return render("console/sign_in.html", title="sign_in_title",
                  next=request.args.get("next", ""), email="", error=None)


@bp.post("/sign-in")
def sign_in_submit() -> ResponseReturnValue:
    """Check the e-mail and password; a wrong one counts towards the lock."""
    if (refused := limited("sign_in")) is not None:
        return refused
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:accounts.PASSWORD_MAX_LENGTH]
    target = request.form.get("next", "")
    session = get_session()
    try:
        user = accounts.authenticate(session, email, password, ip=request.remote_addr)
    except accounts.SignInRefused as exc:
        session.commit()  # the failure counts (and is in the audit log)
        return render("console/sign_in.html", title="sign_in_title",
                      status=HTTPStatus.UNAUTHORIZED, next=target, email=email,
                      error="sign_in_locked" if exc.locked else "sign_in_wrong")
    session.commit()
    start_session(user)
    response = redirect(safe_next(target), HTTPStatus.SEE_OTHER)
    remember_language(response, user.locale)
    return response


@bp.post("/sign-out")
def sign_out() -> Response:
    """Sign out on this browser."""
    end_session()
    return redirect(url_for("console.sign_in"), HTTPStatus.SEE_OTHER)


@bp.get("/account")
@console_page(None)
def account() -> Response:
    """The user's own account: password change and sign out everywhere."""
    return render("console/account.html", title="account_title", error=None, done=None)


@bp.post("/account/password")
@console_page(None)
def change_password() -> ResponseReturnValue:
    """Change the password; every other session ends, this one continues."""
    user = current_user()
    session = get_session()
    me = accounts.get_user(session, user.id)
    error = None
    try:
        accounts.change_password(session, me, request.form.get("current", ""),
                                 request.form.get("new", ""), actor=user.actor)
    except accounts.SignInRefused:
        error = "password_current_wrong"
    except ValidationFailed:
        error = "password_too_short"
    if error is not None:
        session.rollback()
        return render("console/account.html", title="account_title",
                      status=HTTPStatus.UNPROCESSABLE_ENTITY, error=error, done=None)
    session.commit()
    start_session(me)
    return render("console/account.html", title="account_title", error=None,
                  done="password_changed")


@bp.post("/account/sign-out-everywhere")
@console_page(None)
def sign_out_everywhere() -> Response:
    """End every session of the user, this one included."""
    user = current_user()
    session = get_session()
    accounts.sign_out_everywhere(session, accounts.get_user(session, user.id), actor=user.actor)
    session.commit()
    end_session()
    return redirect(url_for("console.sign_in"), HTTPStatus.SEE_OTHER)


@bp.post("/language")
def language() -> Response:
    """Switch the console's language: remembered for the user and in this browser."""
    chosen = words.best_language(request.form.get("lang"))
    user = signed_in_user()
    if user is not None:
        session = get_session()
        accounts.set_locale(session, accounts.get_user(session, user.id), chosen)
        session.commit()
    target = request.form.get("next", "")
    response = redirect(target if target.startswith("/console") and
                        not target.startswith("//") else url_for("console.sign_in"),
                        HTTPStatus.SEE_OTHER)
    remember_language(response, chosen)
    return response


@bp.get("/welcome/<token>")
def welcome(token: str) -> ResponseReturnValue:
    """The form of an invitation or password-reset link: choose a password."""
    if (refused := limited("sign_in")) is not None:
        return refused
    try:
        user = accounts.link_user(get_session(), token)
    except ResourceNotFound:
        return error_page(HTTPStatus.NOT_FOUND)
    return render("console/welcome.html", title="welcome_title", email=user.email,
                  token=token, error=None)


@bp.post("/welcome/<token>")
def welcome_submit(token: str) -> ResponseReturnValue:
    """Set the password (the link stops working) and sign in."""
    if (refused := limited("sign_in")) is not None:
        return refused
    session = get_session()
    password = request.form.get("password", "")
    if password != request.form.get("repeat", ""):
        try:
            email = accounts.link_user(session, token).email
        except ResourceNotFound:
            return error_page(HTTPStatus.NOT_FOUND)
        return render("console/welcome.html", title="welcome_title", email=email,
                      token=token, error="password_mismatch",
                      status=HTTPStatus.UNPROCESSABLE_ENTITY)
    try:
        user = accounts.use_link(session, token, password, ip=request.remote_addr)
    except ResourceNotFound:
        session.rollback()
        return error_page(HTTPStatus.NOT_FOUND)
    except ValidationFailed:
        session.rollback()
        email = accounts.link_user(session, token).email
        return render("console/welcome.html", title="welcome_title", email=email,
                      token=token, error="password_too_short",
                      status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session.commit()
    start_session(user)
    return redirect(url_for("console.overview"), HTTPStatus.SEE_OTHER)
