"""Members and their cards: enroll, find, read, change, assign a tier, close."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from ... import schemas as s
from ...models import Member
from ...permissions import Permission
from ...services import members
from ...services import tiers
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_actor
from ._blueprint import current_merchant
from .serializers import member_out


@bp.operation("/programs/<int:program_id>/members", "POST", summary="Enroll a member",
              body=s.MemberCreate, response=s.MemberOut, status=HTTPStatus.CREATED,
              errors=(404, 409), tags=("members",), permission=Permission.MEMBERS_WRITE)
def enroll_member(program_id: int, body: s.MemberCreate) -> s.MemberOut:
    """Creates the member and their card. The phone is normalized to E.164; a phone or
    external id already enrolled in the program gives 409."""
    session = get_session()
    member = members.enroll_member(session, current_merchant(), program_id,
                                   members.NewMember(**body.model_dump()),
                                   default_region=wallet().settings.default_region)
    session.commit()
    return _answer(session, member)


class MemberQuery(s.Strict):
    barcode: str | None = Field(None, min_length=1, max_length=64,
                                description="The card number as scanned from the barcode")
    phone: str | None = Field(None, min_length=3, max_length=40,
                              description="A phone number valid in its country, as at "
                                          "enrollment (400 otherwise)")
    program_id: s.Id | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


def _find(query: MemberQuery, program_id: int | None) -> s.MemberList:
    session = get_session()
    found = members.find_members(
        session, current_merchant(), barcode=query.barcode, phone=query.phone,
        program_id=program_id, default_region=wallet().settings.default_region,
        limit=query.limit, after_id=int(query.cursor) if query.cursor else None,
    )
    next_cursor = str(found[-1].id) if len(found) == query.limit else None
    items = [member_out(session, wallet().settings, m) for m in found]
    session.commit()  # first Google object inserts made for the save links (see _answer)
    return s.MemberList(items=items, next_cursor=next_cursor)


@bp.operation("/members", "GET", summary="Find members by card barcode or phone",
              query=MemberQuery, response=s.MemberList, errors=(400,), tags=("members",),
              permission=Permission.READ)
def find_members(query: MemberQuery) -> s.MemberList:
    """Searches all of the merchant's programs unless `program_id` is given."""
    return _find(query, query.program_id)


@bp.operation("/programs/<int:program_id>/members", "GET", summary="List a program's members",
              query=MemberQuery, response=s.MemberList, errors=(400, 404), tags=("members",),
              permission=Permission.READ)
def list_members(program_id: int, query: MemberQuery) -> s.MemberList:
    return _find(query, program_id)


@bp.operation("/members/<int:member_id>", "GET", summary="Get a member and their card",
              response=s.MemberOut, errors=(404,), tags=("members",), permission=Permission.READ)
def get_member(member_id: int) -> s.MemberOut:
    session = get_session()
    return _answer(session, members.get_member(session, current_merchant(), member_id))


@bp.operation("/members/<int:member_id>", "PATCH", summary="Change a member's details",
              body=s.MemberUpdate, merge_patch=True, response=s.MemberOut, errors=(404, 409),
              tags=("members",), permission=Permission.MEMBERS_WRITE)
def update_member(member_id: int, body: dict[str, Any]) -> s.MemberOut:
    """`name`, `phone`, `email`, `birthday` and `external_id`, checked as at enrollment: the
    phone is normalized to E.164, and a phone or external id of another member of the
    program gives 409. `null` clears `email`, `birthday` or `external_id`; `name` and
    `phone` cannot be cleared (422). A new name reaches the member's card in the wallets.
    An erased member's data cannot be changed (409)."""
    session = get_session()
    member = members.update_member(session, current_merchant(), member_id, body,
                                   default_region=wallet().settings.default_region)
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/tier", "POST", summary="Assign a tier to a member",
              body=s.TierAssign, response=s.MemberOut, errors=(404, 409), tags=("members",),
              permission=Permission.MEMBERS_WRITE)
def assign_tier(member_id: int, body: s.TierAssign) -> s.MemberOut:
    """A paid or VIP membership: the card gets `tier` at once (a `tier_set` entry in the
    history) and the daily tier review does not lower it through `until` (inclusive; without
    `until`, until the assignment is ended). After that day the review recomputes the tier
    by the program's rules. Purchases may still raise the card above it. An unknown tier or
    a past `until` gives 422; `"tier": null` ends the assignment, as `DELETE` does; a closed
    card gives 409."""
    session = get_session()
    if body.tier is None:
        member = tiers.end_manual_tier(session, current_merchant(), member_id,
                                       actor=current_actor())
    else:
        member = tiers.assign_tier(session, current_merchant(), member_id, body.tier,
                                   body.until, actor=current_actor())
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/tier", "DELETE", summary="End an assigned tier",
              response=s.MemberOut, errors=(404, 409), tags=("members",),
              permission=Permission.MEMBERS_WRITE)
def end_manual_tier(member_id: int) -> s.MemberOut:
    """Ends the merchant's tier assignment now: the card takes the tier the program's rules
    give it today (a `tier_set` entry in the history). Without an assignment nothing
    changes."""
    session = get_session()
    member = tiers.end_manual_tier(session, current_merchant(), member_id,
                                   actor=current_actor())
    session.commit()
    return _answer(session, member)


@bp.operation("/members/<int:member_id>/close", "POST", summary="Close a member's card",
              response=s.MemberOut, errors=(404,), tags=("members",),
              permission=Permission.MEMBERS_ERASE)
def close_card(member_id: int) -> s.MemberOut:
    """The card turns void on the customer's phone and accepts no more transactions (409).
    Closing twice is harmless."""
    session = get_session()
    member = members.close_card(session, current_merchant(), member_id)
    session.commit()
    return _answer(session, member)


def _answer(session: Session, member: Member) -> s.MemberOut:
    """The member as the API shows them. Giving the Google save link may insert the card's
    Google object first; that is recorded in this request's transaction, committed here
    (after the change the request made, which is committed already)."""
    out = member_out(session, wallet().settings, member)
    session.commit()
    return out
