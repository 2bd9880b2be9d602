"""Members' personal-data rights (152-FZ, GDPR) and the wallet event log: erase, export,
withdraw consent, change the marketing consent; when cards were added to and removed from
wallets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator
from sqlalchemy.orm import Session

from ... import schemas as s
from ...db import utcnow
from ...models import Member
from ...permissions import Permission
from ...services import personal_data
from ...services import wallet_events
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import member_export
from .serializers import member_out
from .serializers import wallet_event_out


@bp.operation("/members/<int:member_id>/erase", "POST", summary="Erase a member's personal data",
              response=s.MemberOut, errors=(404,), tags=("personal data",),
              permission=Permission.MEMBERS_ERASE)
def erase_member(member_id: int) -> s.MemberOut:
    """The right to erasure (152-FZ art. 21, GDPR art. 17). Name, phone, e-mail, birthday,
    external id and answers are removed everywhere the service stored them (the card's
    ledger keeps its amounts but loses its free text: reasons, references). The card is
    closed and turns void on the customer's phone. The member stays as an anonymous record
    with `erased_at`, with the consent texts and times as proof of consent, so the
    merchant's totals still add up. Erasing twice is harmless."""
    session = get_session()
    member = personal_data.erase_member(session, current_merchant(), member_id)
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/consent/withdraw", "POST",
              summary="Withdraw the consent to processing personal data",
              response=s.MemberOut, errors=(404,), tags=("personal data",),
              permission=Permission.MEMBERS_ERASE)
def withdraw_consent(member_id: int) -> s.MemberOut:
    """The customer withdraws the consent to processing their data: the withdrawal is
    recorded in `consent.withdrawn_at` (when a consent text was kept) and processing stops:
    the member is erased as by `POST /members/{member_id}/erase`. Withdrawing twice is
    harmless."""
    session = get_session()
    member = personal_data.withdraw_consent(session, current_merchant(), member_id)
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/marketing-consent", "POST",
              summary="Give or withdraw the consent to marketing messages",
              body=s.MarketingConsentChange, response=s.MemberOut, errors=(404, 409),
              tags=("personal data",), permission=Permission.MEMBERS_WRITE)
def marketing_consent(member_id: int, body: s.MarketingConsentChange) -> s.MemberOut:
    """Campaigns reach only members who consent. `true` records the exact text the customer
    accepted (default: the program's `enrollment.marketing_consent_text`, or the service's,
    in the program's first language) and the time; `false` records the withdrawal; the
    text accepted stays as proof. An erased member gives 409."""
    session = get_session()
    member = personal_data.set_marketing_consent(session, current_merchant(), member_id,
                                                 body.consent, body.text)
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/export", "GET", summary="Export a member's data",
              response=s.MemberExport, errors=(404,), tags=("personal data",),
              permission=Permission.EXPORT)
def export_member(member_id: int) -> Any:
    """The right of access and to data portability (152-FZ art. 14, GDPR art. 15 and 20):
    the member's fields, consents, card, whole ledger, coupons, the number of Apple devices
    registered for the card, and wallet events, as a JSON file to download
    (`Content-Disposition: attachment`)."""
    session = get_session()
    data = personal_data.export_member(session, current_merchant(), member_id)
    result = member_export(data, utcnow())
    session.commit()
    disposition = f'attachment; filename="member-{member_id}.json"'
    return result, 200, {"Content-Disposition": disposition}


class WalletEventQuery(s.Strict):
    member_id: s.Id | None = Field(None, description="One member's card only")
    since: s.ZonedDateTime | None = Field(None, description="At or after this time (with zone)")
    until: s.ZonedDateTime | None = Field(None, description="Before this time (with zone)")
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")

    @field_validator("since", "until")
    @classmethod
    def _zoned(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.utcoffset() is None:
            raise ValueError("give a time zone (2026-11-30T10:00:00Z)")
        return v

    @model_validator(mode="after")
    def _period(self) -> WalletEventQuery:
        if self.since and self.until and self.until <= self.since:
            raise ValueError("until: must be after since")
        return self


@bp.operation("/wallet-events", "GET", summary="Cards added to and removed from wallets",
              query=WalletEventQuery, response=s.WalletEventList, errors=(404,),
              tags=("wallet events",), permission=Permission.READ)
def list_wallet_events(query: WalletEventQuery) -> s.WalletEventList:
    """In the order they happened. Apple: `installed` when a card's first device registers
    for updates, `removed` when its last one unregisters or APNs reports the last device's
    token dead. Google: `installed`/`removed` on Google's save and delete callbacks. An
    unknown `member_id`, or another merchant's, gives 404."""
    session = get_session()
    merchant_id = current_merchant()
    card_id = (None if query.member_id is None
               else wallet_events.member_card_id(session, merchant_id, query.member_id))
    found = wallet_events.list_events(
        session, merchant_id, card_id=card_id, since=query.since, until=query.until,
        limit=query.limit, after_id=int(query.cursor) if query.cursor else None)
    next_cursor = str(found[-1].id) if len(found) == query.limit else None
    return s.WalletEventList(items=[wallet_event_out(e) for e in found], next_cursor=next_cursor)


def _answer(session: Session, member: Member) -> s.MemberOut:
    """The member as the API shows them; a Google save link given may record the object's
    first insert, committed here (as ``members`` does)."""
    out = member_out(session, wallet().settings, member)
    session.commit()
    return out
