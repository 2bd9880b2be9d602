"""Members and their cards: enrollment and lookup."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import phonenumbers
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from .. import i18n
from ..db import utcnow
from ..errors import InvalidInput
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..merge_patch import merge_patch
from ..models import LoyaltyCard
from ..models import Member
from ..rules import Totals
from ..rules import tier_for
from ..schemas import MEMBER_FIELDS
from ..schemas import MemberCreate
from ..validation import raise_for
from . import webhooks
from .outbox import next_last_modified
from .outbox import publish_cards
from .outbox import publish_change
from .programs import get_program


@dataclass(frozen=True)
class NewMember:
    """A customer signing up, as the API or the sign-up page checked it."""

    name: str
    phone: str
    email: str | None = None
    birthday: dt.date | None = None
    external_id: str | None = None
    consent_text: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    referral_code: str | None = None
    marketing_consent: bool = False
    marketing_consent_text: str | None = None


def normalize_phone(raw: str, default_region: str) -> str:
    """The number in E.164 form (``+79123456789``).

    :raises InvalidInput: not a possible, valid phone number.
    """
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"phone: {raw!r} is not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"phone: {raw!r} is not a valid phone number", field="phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def marketing_consent_text(enrollment: dict[str, Any], lang: str) -> str:
    """The marketing consent as the sign-up page shows it in ``lang``: the program's own
    text, else the service's."""
    return (i18n.localized(enrollment.get("marketing_consent_text"), lang)
            or i18n.t(lang, "marketing_consent"))


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """13 digits, the last a Luhn check digit: short enough for any barcode and a keypad."""
    body = str(secrets.randbelow(9 * 10**11) + 10**11)
    return body + luhn_digit(body)


_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_referral_code() -> str:
    """Eight characters without look-alikes (0/O, 1/I), easy to read out at the till: 40
    random bits, five per character of the 32-letter alphabet."""
    bits = int.from_bytes(secrets.token_bytes(5), "big")
    return "".join(_REFERRAL_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))


def validate_answers(enrollment: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Check answers against the program's questions; returns them cleaned (dates as ISO
    strings, text stripped).

    :raises ValidationFailed: an unknown question, a missing required answer, or an answer of
        the wrong type; ``field`` is ``answers.<key>``.
    """
    questions = {q["key"]: q for q in enrollment.get("questions", [])}
    for key in answers:
        if key not in questions:
            raise ValidationFailed(f"answers.{key}: the program has no such question",
                                   field=f"answers.{key}")
    clean: dict[str, Any] = {}
    for key, q in questions.items():
        field = f"answers.{key}"
        value = answers.get(key)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if q.get("required"):
                raise ValidationFailed(f"{field}: an answer is required", field=field)
            continue
        kind = q["type"]
        if kind == "yesno":
            if not isinstance(value, bool):
                raise ValidationFailed(f"{field}: answer true or false", field=field)
        elif not isinstance(value, str):
            raise ValidationFailed(f"{field}: answer with text", field=field)
        elif kind == "choice" and value not in q["options"]:
            raise ValidationFailed(f"{field}: pick one of {', '.join(q['options'])}",
                                   field=field)
        elif kind == "date":
            try:
                value = dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValidationFailed(f"{field}: a date as YYYY-MM-DD", field=field) from None
        clean[key] = value
    return clean


def enroll_member(
    session: Session, merchant_id: int, program_id: int, data: NewMember, *,
    default_region: str, source: str = "api",
) -> Member:
    """Create a member and their card.

    :raises ResourceNotFound: the program is missing or another merchant's.
    :raises InvalidInput: the phone number is not valid.
    :raises ValidationFailed: an answer does not fit the program's questions.
    :raises ResourceConflict: the phone or external id is already enrolled in the program.
    """
    program = get_program(session, merchant_id, program_id)
    phone = normalize_phone(data.phone, default_region)
    referred_by = None
    if data.referral_code is not None:
        referred_by = session.scalar(select(LoyaltyCard.id).where(
            LoyaltyCard.program_id == program.id,
            LoyaltyCard.referral_code == data.referral_code.strip().upper()))
        if referred_by is None:
            raise ValidationFailed("referral_code: no member of this program has this code",
                                   field="referral_code")
    answers = validate_answers(program.enrollment or {}, data.answers)
    marketing_text = None
    if data.marketing_consent:
        marketing_text = data.marketing_consent_text or marketing_consent_text(
            program.enrollment or {}, program.languages[0])
    for column, value in (("phone", phone), ("external_id", data.external_id)):
        if value is not None and session.scalar(
            select(Member.id).where(
                Member.program_id == program.id, getattr(Member, column) == value
            )
        ):
            raise ResourceConflict(
                f"{column}: a member with this {column.replace('_', ' ')} is already enrolled",
                field=column,
            )
    now = utcnow()
    member = Member(
        merchant_id=merchant_id,
        program_id=program.id,
        name=data.name,
        phone=phone,
        email=data.email,
        birthday=data.birthday,
        external_id=data.external_id,
        consent_text=data.consent_text,
        consent_at=now if data.consent_text else None,
        marketing_consent=data.marketing_consent,
        marketing_consent_text=marketing_text,
        marketing_consent_at=now if data.marketing_consent else None,
        answers=answers,
        source=source,
        created_at=now,
    )
    for attempt in range(5):
        card = LoyaltyCard(
            merchant_id=merchant_id,
            program_id=program.id,
            serial_number=new_card_number(),
            authentication_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            tier=tier_for(program.rules, program.currency, Totals()),
            referral_code=new_referral_code(),
            referred_by_id=referred_by,
            balance=0,
            lifetime_points=0,
            lifetime_spend_minor=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        member.card = card
        try:
            with session.begin_nested():
                session.add(member)
                session.flush()
        except IntegrityError:
            # A concurrent enrollment of the same phone, or (rarely) a serial collision.
            if session.scalar(
                select(Member.id).where(Member.program_id == program.id, Member.phone == phone)
            ):
                raise ResourceConflict(
                    "phone: a member with this phone is already enrolled", field="phone"
                ) from None
            if attempt == 4:
                raise
            continue
        webhooks.record(session, merchant_id, webhooks.MEMBER_CREATED,
                        webhooks.member_data(member, card), member_id=member.id, at=now)
        welcome = int((program.rules.get("bonuses") or {}).get("welcome", 0))
        if welcome:
            from .automations import grant_bonus

            grant_bonus(session, merchant_id, card.id, welcome, "welcome",
                        key=f"welcome:{card.id}")
            session.refresh(card)
        return member
    raise AssertionError("unreachable")


def get_member(session: Session, merchant_id: int, member_id: int) -> Member:
    """:raises ResourceNotFound: missing, or another merchant's."""
    member = session.scalar(
        select(Member)
        .options(joinedload(Member.card))
        .where(Member.id == member_id, Member.merchant_id == merchant_id)
    )
    if member is None:
        raise ResourceNotFound(f"member {member_id} not found", field="member_id")
    return member


def update_member(
    session: Session, merchant_id: int, member_id: int, patch: dict[str, Any], *,
    default_region: str,
) -> Member:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the member's name, phone, e-mail,
    birthday and external id, checked as enrollment checks them: the phone is normalized
    to E.164, and neither the phone nor the external id may be another member's of the
    program. ``null`` clears e-mail, birthday or external id. The card shows the name, so
    a new name gives the card a new version, pushed to the member's wallets.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ValidationFailed: ``null`` on name or phone, an unknown field, or a value
        enrollment refuses.
    :raises InvalidInput: the phone number is not valid.
    :raises ResourceConflict: another member of the program has this phone or external id;
        the member is erased (their personal data is gone for good, names ``member_id``).
    """
    member = get_member(session, merchant_id, member_id)
    if member.erased_at is not None:
        raise ResourceConflict("member_id: the member's data is erased; it cannot be changed",
                               field="member_id")
    for key, value in patch.items():
        if key not in MEMBER_FIELDS:
            raise ValidationFailed(f"{key}: not a field of a member that can be changed",
                                   field=key)
        if value is None and key in ("name", "phone"):
            raise ValidationFailed(f"{key}: required; null cannot clear it", field=key)
    current = {key: getattr(member, key) for key in MEMBER_FIELDS}
    merged = merge_patch(current, patch)
    try:
        data = MemberCreate.model_validate({k: v for k, v in merged.items() if v is not None})
    except ValidationError as exc:
        raise_for(exc)
    changes = {key: getattr(data, key) for key in MEMBER_FIELDS}
    if "phone" in patch:
        changes["phone"] = normalize_phone(data.phone, default_region)
    changes = {k: v for k, v in changes.items() if v != getattr(member, k)}
    for key in ("phone", "external_id"):
        value = changes.get(key)
        if value is not None and session.scalar(select(Member.id).where(
                Member.program_id == member.program_id, getattr(Member, key) == value,
                Member.id != member.id)):
            raise _taken(key)
    if not changes:
        return member
    for key, value in changes.items():
        setattr(member, key, value)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # A concurrent enrollment or edit took the phone or external id first.
        raise _taken("phone" if "phone" in changes else "external_id") from None
    if "name" in changes:
        publish_cards(session, [member.card.id], utcnow())
        session.refresh(member.card)
    webhooks.record(session, merchant_id, webhooks.MEMBER_UPDATED,
                    {**webhooks.member_data(member, member.card), "changed": sorted(changes)},
                    member_id=member.id)
    return member


def _taken(key: str) -> ResourceConflict:
    return ResourceConflict(
        f"{key}: a member with this {key.replace('_', ' ')} is already enrolled", field=key)


def find_members(
    session: Session,
    merchant_id: int,
    *,
    barcode: str | None = None,
    phone: str | None = None,
    program_id: int | None = None,
    default_region: str,
    limit: int = 50,
    after_id: int | None = None,
) -> list[Member]:
    """Members of this merchant matching every filter given, oldest first."""
    query = (
        select(Member)
        .join(LoyaltyCard, LoyaltyCard.member_id == Member.id)
        .options(joinedload(Member.card))
        .where(Member.merchant_id == merchant_id)
        .order_by(Member.id)
        .limit(limit)
    )
    if barcode is not None:
        query = query.where(LoyaltyCard.serial_number == "".join(barcode.split()))
    if phone is not None:
        query = query.where(Member.phone == normalize_phone(phone, default_region))
    if program_id is not None:
        get_program(session, merchant_id, program_id)
        query = query.where(Member.program_id == program_id)
    if after_id is not None:
        query = query.where(Member.id > after_id)
    return list(session.scalars(query).unique())


def close_card(session: Session, merchant_id: int, member_id: int) -> Member:
    """Close the member's card: phones show it as void and it takes no more transactions.
    Closing a closed card changes nothing.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    member = get_member(session, merchant_id, member_id)
    card = session.scalar(
        select(LoyaltyCard).where(LoyaltyCard.id == member.card.id).with_for_update()
    )
    assert card is not None
    if card.status != "closed":
        now = utcnow()
        card.status = "closed"
        card.version += 1
        card.updated_at = now
        card.last_modified = next_last_modified(card.last_modified, now)
        session.flush()
        publish_change(session, card.id, card.version, now)
        webhooks.record(session, merchant_id, webhooks.MEMBER_CLOSED,
                        webhooks.member_data(member, card), member_id=member.id, at=now)
    return member
