"""Console users: create, sign in, passwords, roles, one-time links.

A console user belongs to one merchant and holds a role (``permissions.Role``), a bundle of the
same permissions API keys hold. Passwords are hashed with Argon2id (``argon2-cffi``'s
defaults, RFC 9106's second recommended setting); the hash is upgraded on sign-in when those
defaults change.

Sign-in refuses after ``MAX_FAILED_SIGN_INS`` wrong passwords in a row for ``LOCK_MINUTES``
(the web layer also limits sign-in attempts per client address). Every session carries the
user's ``session_epoch``; bumping it ends every session at once (sign out everywhere, a
password change, a reset, disabling the user).

Invitations and password resets are one-time links: a random token whose SHA-256 hash is
stored, usable once and until it expires.

Services never commit; each change writes its audit entry in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..models import ConsoleToken
from ..models import ConsoleUser
from ..models import Merchant
from ..permissions import Role
from ..validation import EMAIL
from . import audit
from .audit import Actor

MAX_FAILED_SIGN_INS = 5
LOCK_MINUTES = 15
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 200
LOCALES = ("ru", "en")
#: How long an invitation or a password-reset link works.
TOKEN_HOURS = {"invite": 72, "reset": 24}

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class SignInRefused(AuthenticationFailed):
    """Wrong e-mail or password, a disabled user, or a user locked for now (``locked``)."""

    def __init__(self, message: str, *, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked


@dataclass(frozen=True, slots=True)
class NewLink:
    """A one-time link's raw token (shown once) and when it expires."""

    user: ConsoleUser
    token: str
    expires_at: dt.datetime


def normalize_email(email: str) -> str:
    """The e-mail as stored: trimmed and lower-cased.

    :raises ValidationFailed: not an e-mail address.
    """
    value = email.strip().lower()
    if len(value) > 254 or not EMAIL.match(value):
        raise ValidationFailed("email: not an e-mail address", field="email")
    return value


def check_password(password: str) -> None:
    """:raises ValidationFailed: shorter than ``PASSWORD_MIN_LENGTH`` or too long."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationFailed(
            f"password: at least {PASSWORD_MIN_LENGTH} characters", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed(
            f"password: at most {PASSWORD_MAX_LENGTH} characters", field="password")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password of 16 URL-safe characters (about 96 bits)."""
    return secrets.token_urlsafe(12)


def actor_of(user: ConsoleUser, ip: str | None = None) -> Actor:
    """The audit log's actor for ``user`` acting from ``ip``."""
    return Actor("user", user.id, user.email, ip)


def create_user(session: Session, merchant_id: int, email: str, role: Role | str, *,
                password: str | None = None, locale: str = "ru",
                actor: Actor = audit.SYSTEM) -> ConsoleUser:
    """A user of the merchant's console; without ``password`` the user cannot sign in until
    they follow an invitation or reset link.

    :raises ResourceNotFound: no such merchant.
    :raises ValidationFailed: a bad e-mail, role, locale or password.
    :raises ResourceConflict: the e-mail belongs to a user already.
    """
    if session.get(Merchant, merchant_id) is None:
        raise ResourceNotFound(f"merchant {merchant_id} not found", field="merchant_id")
    address = normalize_email(email)
    role = _role(role)
    if locale not in LOCALES:
        raise ValidationFailed("locale: ru or en", field="locale")
    if password is not None:
        check_password(password)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.email == address)):
        raise ResourceConflict("email: a user with this e-mail exists", field="email")
    user = ConsoleUser(merchant_id=merchant_id, email=address, role=role.value, locale=locale,
                       password_hash=None if password is None else hash_password(password))
    session.add(user)
    session.flush()
    audit.record(session, merchant_id=merchant_id, actor=actor, action="user.create",
                 target=f"user:{user.id}", changes={"email": address, "role": role.value})
    return user


def authenticate(session: Session, email: str, password: str, *, ip: str | None = None,
                 now: dt.datetime | None = None) -> ConsoleUser:
    """The user with this e-mail and password, their failures counted back to zero and the
    sign-in in the audit log. A wrong password counts a failure (recorded too); the
    ``MAX_FAILED_SIGN_INS``-th in a row locks the user for ``LOCK_MINUTES``, during which
    even the right password is refused. The caller commits in every case, so failures count.

    :raises SignInRefused: unknown e-mail, wrong password, disabled, or locked.
    """
    now = now or utcnow()
    try:
        address = normalize_email(email)
    except ValidationFailed:
        address = None
    user = None if address is None else session.scalar(
        select(ConsoleUser).where(ConsoleUser.email == address).with_for_update())
    if user is None or user.password_hash is None or user.disabled_at is not None:
        _verify(_DUMMY_HASH, password)
        raise SignInRefused("wrong e-mail or password")
    if user.locked_until is not None and user.locked_until > now:
        raise SignInRefused("locked after repeated failures", locked=True)
    if not _verify(user.password_hash, password):
        user.failed_sign_ins += 1
        locked = user.failed_sign_ins >= MAX_FAILED_SIGN_INS
        if locked:
            user.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
            user.failed_sign_ins = 0
        session.flush()
        audit.record(session, merchant_id=user.merchant_id, actor=actor_of(user, ip),
                     action="user.lock" if locked else "user.sign_in_failed",
                     target=f"user:{user.id}")
        raise SignInRefused("wrong e-mail or password", locked=locked)
    user.failed_sign_ins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    audit.record(session, merchant_id=user.merchant_id, actor=actor_of(user, ip),
                 action="user.sign_in", target=f"user:{user.id}")
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(session: Session, user_id: int, *, merchant_id: int | None = None) -> ConsoleUser:
    """:raises ResourceNotFound: missing, or (with ``merchant_id``) another merchant's."""
    user = session.get(ConsoleUser, user_id)
    if user is None or (merchant_id is not None and user.merchant_id != merchant_id):
        raise ResourceNotFound(f"user {user_id} not found", field="user_id")
    return user


def list_users(session: Session, merchant_id: int) -> list[ConsoleUser]:
    """The merchant's users, oldest first."""
    return list(session.scalars(select(ConsoleUser).where(
        ConsoleUser.merchant_id == merchant_id).order_by(ConsoleUser.id)))


def change_password(session: Session, user: ConsoleUser, current: str, new: str, *,
                    actor: Actor) -> None:
    """Replace the password after checking the current one; every other session ends.

    :raises SignInRefused: the current password is wrong.
    :raises ValidationFailed: the new password is too short or too long.
    """
    if user.password_hash is None or not _verify(user.password_hash, current):
        raise SignInRefused("the current password is wrong")
    check_password(new)
    _set_password(user, new)
    session.flush()
    audit.record(session, merchant_id=user.merchant_id, actor=actor,
                 action="user.password_change", target=f"user:{user.id}",
                 changes={"password": True})


def set_password(session: Session, user: ConsoleUser, password: str, *,
                 actor: Actor = audit.SYSTEM) -> None:
    """Give ``user`` a new password without the current one (an operator's command, the
    demo); every session of the user ends.

    :raises ValidationFailed: too short or too long.
    """
    check_password(password)
    _set_password(user, password)
    session.flush()
    audit.record(session, merchant_id=user.merchant_id, actor=actor,
                 action="user.password_set", target=f"user:{user.id}",
                 changes={"password": True})


def _set_password(user: ConsoleUser, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    user.failed_sign_ins = 0
    user.locked_until = None


def sign_out_everywhere(session: Session, user: ConsoleUser, *, actor: Actor) -> None:
    """End every session of ``user`` (the caller signs the current one in again if it
    wishes)."""
    session.execute(update(ConsoleUser).where(ConsoleUser.id == user.id)
                    .values(session_epoch=ConsoleUser.session_epoch + 1))
    session.refresh(user)
    audit.record(session, merchant_id=user.merchant_id, actor=actor,
                 action="user.sign_out_everywhere", target=f"user:{user.id}")


def set_locale(session: Session, user: ConsoleUser, locale: str) -> None:
    """Remember the user's console language (``ru`` or ``en``; others are ignored)."""
    if locale in LOCALES and user.locale != locale:
        user.locale = locale
        session.flush()


def change_role(session: Session, merchant_id: int, user_id: int, role: Role | str, *,
                actor: Actor) -> ConsoleUser:
    """Give the user another role; a merchant always keeps one active owner.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ValidationFailed: not a role.
    :raises ResourceConflict: it would leave the merchant without an active owner.
    """
    user = get_user(session, user_id, merchant_id=merchant_id)
    role = _role(role)
    if user.role == role.value:
        return user
    if user.role == Role.OWNER and _active_owners(session, merchant_id, besides=user.id) == 0:
        raise ResourceConflict("role: the last owner keeps the owner role", field="role")
    before = user.role
    user.role = role.value
    user.session_epoch += 1  # permissions change now, not at the next sign-in
    session.flush()
    audit.record(session, merchant_id=merchant_id, actor=actor, action="user.role",
                 target=f"user:{user.id}", changes={"role": [before, role.value]})
    return user


def disable_user(session: Session, merchant_id: int, user_id: int, *,
                 actor: Actor) -> ConsoleUser:
    """The user can no longer sign in; their sessions end. Disabling twice is harmless.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ResourceConflict: the last active owner.
    """
    user = get_user(session, user_id, merchant_id=merchant_id)
    if user.disabled_at is not None:
        return user
    if user.role == Role.OWNER and _active_owners(session, merchant_id, besides=user.id) == 0:
        raise ResourceConflict("user_id: the last owner cannot be disabled", field="user_id")
    user.disabled_at = utcnow()
    user.session_epoch += 1
    session.flush()
    audit.record(session, merchant_id=merchant_id, actor=actor, action="user.disable",
                 target=f"user:{user.id}", changes={"email": user.email})
    return user


def _active_owners(session: Session, merchant_id: int, *, besides: int) -> int:
    return len(session.scalars(select(ConsoleUser.id).where(
        ConsoleUser.merchant_id == merchant_id, ConsoleUser.role == Role.OWNER.value,
        ConsoleUser.disabled_at.is_(None), ConsoleUser.id != besides)).all())


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed("role: owner, manager or staff", field="role") from None


# --- one-time links ---------------------------------------------------------------------


def invite_user(session: Session, merchant_id: int, email: str, role: Role | str, *,
                locale: str = "ru", actor: Actor) -> NewLink:
    """A new user without a password, and the link on which they choose one.

    :raises ValidationFailed: a bad e-mail or role.
    :raises ResourceConflict: the e-mail belongs to a user already.
    """
    user = create_user(session, merchant_id, email, role, locale=locale, actor=actor)
    return _issue(session, user, "invite", actor)


def reset_link(session: Session, merchant_id: int, user_id: int, *, actor: Actor) -> NewLink:
    """A link on which the user chooses a new password (earlier unused links stop working).

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ResourceConflict: the user is disabled.
    """
    user = get_user(session, user_id, merchant_id=merchant_id)
    if user.disabled_at is not None:
        raise ResourceConflict("user_id: the user is disabled", field="user_id")
    return _issue(session, user, "reset", actor)


def _issue(session: Session, user: ConsoleUser, purpose: str, actor: Actor) -> NewLink:
    now = utcnow()
    session.execute(update(ConsoleToken).where(
        ConsoleToken.user_id == user.id, ConsoleToken.used_at.is_(None)).values(used_at=now))
    raw = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(hours=TOKEN_HOURS[purpose])
    session.add(ConsoleToken(merchant_id=user.merchant_id, user_id=user.id, purpose=purpose,
                             token_hash=_token_hash(raw), expires_at=expires_at))
    session.flush()
    audit.record(session, merchant_id=user.merchant_id, actor=actor, action=f"user.{purpose}",
                 target=f"user:{user.id}", changes={"email": user.email})
    return NewLink(user, raw, expires_at)


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def link_user(session: Session, raw: str, *, now: dt.datetime | None = None) -> ConsoleUser:
    """The user a one-time link is for, while it works (to show its form).

    :raises ResourceNotFound: unknown, used or expired.
    """
    return _usable(session, raw, now or utcnow())[1]


def _usable(session: Session, raw: str, now: dt.datetime) -> tuple[ConsoleToken, ConsoleUser]:
    token = session.scalar(select(ConsoleToken).where(
        ConsoleToken.token_hash == _token_hash(raw)).with_for_update())
    # The lookup is by hash; comparing again in constant time costs nothing and keeps the
    # rule "tokens are compared in constant time" true whatever the database does.
    if (token is None or not hmac.compare_digest(token.token_hash, _token_hash(raw))
            or token.used_at is not None or token.expires_at <= now):
        raise ResourceNotFound("the link is unknown, used or expired", field="token")
    user = session.get_one(ConsoleUser, token.user_id)
    if user.disabled_at is not None:
        raise ResourceNotFound("the link is unknown, used or expired", field="token")
    return token, user


def use_link(session: Session, raw: str, password: str, *, ip: str | None = None,
             now: dt.datetime | None = None) -> ConsoleUser:
    """Set the password through a one-time link, which then stops working; every earlier
    session of the user ends.

    :raises ResourceNotFound: unknown, used or expired.
    :raises ValidationFailed: the password is too short or too long.
    """
    now = now or utcnow()
    token, user = _usable(session, raw, now)
    check_password(password)
    token.used_at = now
    _set_password(user, password)
    session.flush()
    audit.record(session, merchant_id=user.merchant_id, actor=actor_of(user, ip),
                 action=f"user.{token.purpose}_accepted", target=f"user:{user.id}",
                 changes={"password": True})
    return user
