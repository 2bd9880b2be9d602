"""Members' personal-data rights (152-FZ in Russia, GDPR): erasure, export, and the two
consents: to processing (withdrawing it stops processing, so the member is erased) and the
separate, optional consent to marketing messages, which campaigns respect.

**Erasure** removes every personal value the service stored about a member, wherever it was
stored, and keeps what the merchant's accounts need:

* the member row: name (a dash: a void pass still shows a name), phone, e-mail, birthday,
  external id and questionnaire answers are cleared. The row stays, anonymous, with
  ``erased_at``; so do the consent texts and times, the proof of what was agreed and when;
* the card is closed with a new version, so every phone that has it is pushed and shows it
  void (apple-wallet spec §2.8, §3.7); the Google object shows the dash and turns inactive
  on its next sync, because the object's fields Google was last sent (in ``synced_state``,
  they hold the name) are forgotten. The card's message and referral code go too;
* the ledger keeps every amount, point and balance, so the merchant's totals still add up,
  but loses its free text: every ``reason`` (a cashier's note may name the customer), the
  merchant's ``reference`` and any other detail holding one of the member's values; the
  merchant's idempotency keys (their own strings) are replaced by a hash, and so are the
  service's natural keys (an action's holds the merchant's reference);
* the device logs Wallet posted about the card (they name its serial number);
* the card's stored signed passes (they show the name).

Kept, as they hold no personal data: ids, numbers and times, the card number and tokens
(the phone needs them to fetch the void pass), Apple registrations (the void pass must still
reach the phones), wallet events, coupons and push attempts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceConflict
from ..models import DeviceLog
from ..models import GoogleObject
from ..models import LedgerTransaction
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from . import ledger
from . import wallet_events
from . import webhooks
from .apple import forget_signed_passes
from .members import get_member
from .members import marketing_consent_text
from .nps import forget_comments
from .outbox import next_last_modified
from .outbox import publish_change
from .rewards import MemberCoupon
from .rewards import member_coupons

TXN = LedgerTransaction.__table__

#: The name an erased member's void card shows.
ERASED_NAME = "—"
#: Ledger ``details`` keys that hold the merchant's free text rather than arithmetic.
_FREE_TEXT_DETAILS = frozenset({"reference"})
_ERASED_KEY = "erased:"

_SCRUB_ENTRY = (
    update(TXN)
    .where(TXN.c.id == bindparam("entry_id"))
    .values(reason=None, idempotency_key=bindparam("key"), natural_key=bindparam("natural"),
            details=bindparam("scrubbed", type_=TXN.c.details.type))
)


def erase_member(session: Session, merchant_id: int, member_id: int) -> Member:
    """Erase the member's personal data everywhere it is stored (see the module docstring)
    and void their card. Erasing an erased member changes nothing.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    member, card = _lock(session, merchant_id, member_id)
    if member.erased_at is None:
        _erase(session, member, card, utcnow())
    return member


def withdraw_consent(session: Session, merchant_id: int, member_id: int) -> Member:
    """The member withdraws the consent to processing their data: the withdrawal is
    recorded and the member erased (processing stops). Withdrawing twice changes nothing.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    member, card = _lock(session, merchant_id, member_id)
    now = utcnow()
    if member.consent_withdrawn_at is None:
        member.consent_withdrawn_at = now
    if member.erased_at is None:
        _erase(session, member, card, now)
    session.flush()
    return member


def set_marketing_consent(session: Session, merchant_id: int, member_id: int, consent: bool,
                          text: str | None = None) -> Member:
    """Give or withdraw the consent to marketing messages. Giving it records the exact
    ``text`` (default: the program's, in its first language) and the time; giving it again
    with the same text, or withdrawing what was not given, changes nothing.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ResourceConflict: the member is erased.
    """
    member = get_member(session, merchant_id, member_id)
    if member.erased_at is not None:
        raise ResourceConflict("member_id: the member's data is erased", field="member_id")
    now = utcnow()
    if consent:
        if text is None:
            program = session.get_one(LoyaltyProgram, member.program_id)
            text = marketing_consent_text(program.enrollment or {}, program.languages[0])
        if not (member.marketing_consent and member.marketing_consent_text == text):
            member.marketing_consent = True
            member.marketing_consent_text = text
            member.marketing_consent_at = now
    elif member.marketing_consent:
        member.marketing_consent = False
        member.marketing_consent_withdrawn_at = now
    session.flush()
    return member


@dataclass(frozen=True)
class MemberData:
    """Everything the service holds about one member, for an export."""

    member: Member
    currency: str
    transactions: list[ledger.Entry]
    coupons: list[MemberCoupon]
    apple_devices: int
    wallet_events: list[wallet_events.Event]


def export_member(session: Session, merchant_id: int, member_id: int) -> MemberData:
    """The member's data: fields, consents, card, the whole ledger (oldest first), coupons,
    Apple devices registered for the card and wallet events.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    member = get_member(session, merchant_id, member_id)
    card = member.card
    currency = session.execute(select(LoyaltyProgram.currency)
                               .where(LoyaltyProgram.id == member.program_id)).scalar_one()
    entries = [ledger.entry_from_row(r, member.id) for r in session.execute(
        select(TXN).where(TXN.c.card_id == card.id).order_by(TXN.c.id))]
    events: list[wallet_events.Event] = []
    while True:  # every event, a page at a time
        page = wallet_events.list_events(session, merchant_id, card_id=card.id, limit=500,
                                         after_id=events[-1].id if events else None)
        events += page
        if len(page) < 500:
            break
    return MemberData(
        member=member, currency=currency, transactions=entries,
        coupons=list(reversed(member_coupons(session, card.id))),
        apple_devices=wallet_events.apple_registrations(session, card.id),
        wallet_events=events,
    )


# --- erasure ------------------------------------------------------------------------------


def _lock(session: Session, merchant_id: int, member_id: int) -> tuple[Member, LoyaltyCard]:
    """The member and their card, the card row locked and both read again under the lock,
    so concurrent erasures and consent changes of one member queue."""
    member = get_member(session, merchant_id, member_id)
    card = session.execute(
        select(LoyaltyCard).where(LoyaltyCard.id == member.card.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    session.refresh(member)
    return member, card


def _erase(session: Session, member: Member, card: LoyaltyCard, now: dt.datetime) -> None:
    personal = _personal_values(member)
    member.name = ERASED_NAME
    member.phone = member.email = member.external_id = None
    member.birthday = None
    member.answers = {}
    if member.marketing_consent:
        member.marketing_consent = False
        member.marketing_consent_withdrawn_at = now
    member.erased_at = now

    card.status = "closed"
    card.message = card.message_campaign_id = card.referral_code = None
    card.version += 1
    card.updated_at = now
    card.last_modified = next_last_modified(card.last_modified, now)
    session.flush()
    publish_change(session, card.id, card.version, now)

    entries = session.execute(select(TXN.c.id, TXN.c.idempotency_key, TXN.c.natural_key,
                                     TXN.c.details)
                              .where(TXN.c.card_id == card.id)).all()
    if entries:
        session.execute(_SCRUB_ENTRY, [
            {"entry_id": e.id, "key": _hashed_key(e.idempotency_key),
             "natural": _hashed_key(e.natural_key), "scrubbed": _scrub(e.details, personal)}
            for e in entries
        ])
    google = session.get(GoogleObject, card.id)
    if google is not None and google.synced_state:
        # The object's fields hold the name; what else was sent (the messages) stays, so
        # the next sync patches the fields and sends no message again.
        google.synced_state = {k: v for k, v in google.synced_state.items() if k != "patch"}
    session.execute(delete(DeviceLog).where(
        DeviceLog.message.contains(card.serial_number, autoescape=True)))
    forget_signed_passes(session, card.id)
    forget_comments(session, card.id)  # survey comments are the member's own words
    webhooks.forget_member(session, member.id)  # events waiting for a merchant's webhooks
    session.flush()


def _personal_values(member: Member) -> set[str]:
    """The member's own values as they may appear in free text, folded for comparison.
    Very short ones (a one-letter answer) would match everything and are left out."""
    values = {member.name, member.phone, member.email, member.external_id}
    if member.phone:
        values.add(member.phone.removeprefix("+"))
    if member.birthday:
        values.add(member.birthday.isoformat())
    values.update(v for v in (member.answers or {}).values() if isinstance(v, str))
    return {v.strip().casefold() for v in values if v and len(v.strip()) >= 3}


def _scrub(value: Any, personal: set[str]) -> Any:
    """``value`` without the merchant's free text and without any string holding one of
    the member's values."""
    if isinstance(value, dict):
        return {k: _scrub(v, personal) for k, v in value.items() if k not in _FREE_TEXT_DETAILS}
    if isinstance(value, list):
        return [_scrub(v, personal) for v in value]
    if isinstance(value, str) and any(p in value.casefold() for p in personal):
        return None
    return value


def _hashed_key(key: str | None) -> str | None:
    if key is None or key.startswith(_ERASED_KEY):
        return key
    return _ERASED_KEY + hashlib.sha256(key.encode()).hexdigest()
