"""Campaign messages and the daily automations."""

from __future__ import annotations

from http import HTTPStatus

from pydantic import Field

from ... import schemas as s
from ...db import utcnow
from ...permissions import Permission
from ...services import automations
from ...services import campaigns
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import campaign_effect_out
from .serializers import campaign_out


def segment(body: s.Segment) -> campaigns.Segment:
    """The service's segment for a request's, already checked for shape."""
    return campaigns.Segment(
        tier=body.tier, inactive_days=body.inactive_days, birthday_month=body.birthday_month,
        member_ids=None if body.member_ids is None else tuple(body.member_ids))


@bp.operation("/programs/<int:program_id>/campaigns", "POST",
              summary="Send a message to members' cards", body=s.CampaignCreate,
              response=s.CampaignOut, status=HTTPStatus.CREATED, errors=(404,),
              tags=("campaigns",), permission=Permission.SETTINGS)
def create_campaign(program_id: int, body: s.CampaignCreate) -> s.CampaignOut:
    """The text replaces the message on the back of every card in the segment whose member
    consents to marketing messages (`marketing_consent`), and phones announce it; `reached`
    counts those cards only: members who never consented or withdrew are not reached.

    With `holdout_percent`, that share of those members (rounded down) is held out: drawn
    at random (`holdout_seed` reproduces the draw), recorded, and not messaged (their cards
    do not change), so `GET /campaigns/{campaign_id}/effect` can compare the purchases of
    the reached members with theirs."""
    session = get_session()
    campaign = campaigns.send_campaign(session, current_merchant(), program_id, body.text,
                                       segment(body.segment), body.holdout_percent)
    session.commit()
    return campaign_out(campaign)


@bp.operation("/programs/<int:program_id>/campaigns", "GET", summary="Campaigns sent",
              response=s.CampaignList, errors=(404,), tags=("campaigns",),
              permission=Permission.READ)
def list_campaigns(program_id: int) -> s.CampaignList:
    items = campaigns.list_campaigns(get_session(), current_merchant(), program_id)
    return s.CampaignList(items=[campaign_out(c) for c in items])


@bp.operation("/campaigns/<int:campaign_id>/effect", "GET",
              summary="Purchases of reached members against the holdout",
              response=s.CampaignEffectOut, errors=(404,), tags=("campaigns",),
              permission=Permission.READ)
def campaign_effect(campaign_id: int) -> s.CampaignEffectOut:
    """Purchases (ledger entries of type `earn`; refunds are not subtracted) from the
    moment the campaign was sent to 7 days later, for the members it reached and for its
    holdout: members, purchases, members purchasing and revenue, the same per member, and
    reached minus holdout. Until `complete`, the window is still running. Another
    merchant's campaign gives 404."""
    effect = campaigns.campaign_effect(get_session(), current_merchant(), campaign_id)
    return campaign_effect_out(effect)


class RecipientQuery(s.Strict):
    group: str | None = Field(None, pattern="^(reached|holdout)$",
                              description="`reached` or `holdout` only")
    limit: int = Field(200, ge=1, le=1000)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


@bp.operation("/campaigns/<int:campaign_id>/recipients", "GET",
              summary="The members a campaign chose, reached or held out", query=RecipientQuery,
              response=s.CampaignRecipientList, errors=(404,), tags=("campaigns",),
              permission=Permission.READ)
def campaign_recipients(campaign_id: int, query: RecipientQuery) -> s.CampaignRecipientList:
    """Every member the campaign could reach, with their group and their draw, in card
    order: with the campaign's `holdout_seed`, anyone can recompute who was held out."""
    rows = campaigns.list_recipients(
        get_session(), current_merchant(), campaign_id, group=query.group, limit=query.limit,
        after_card_id=int(query.cursor) if query.cursor else None)
    next_cursor = str(rows[-1][0]) if len(rows) == query.limit else None
    return s.CampaignRecipientList(
        items=[s.CampaignRecipientOut(member_id=member_id, group=group,  # type: ignore[arg-type]
                                      draw=draw)
               for _card_id, member_id, group, draw in rows], next_cursor=next_cursor)


@bp.operation("/automations/daily", "POST", summary="Run the daily automations now",
              body=s.DailyRun, response=s.DailyReport, tags=("bonuses",),
              permission=Permission.AUTOMATIONS)
def run_daily(body: s.DailyRun) -> s.DailyReport:
    """Expiry, reminders, birthday and win-back bonuses, tier review and evergreen coupons
    for this merchant's programs (the worker runs them for each merchant at midnight in its
    time zone). Without `day`, today in the merchant's time zone; `day` may also be one of
    the 7 days before (a day the worker missed), never a day to come (422 naming `day`):
    what a day does (points expire, tiers fall) cannot be undone. Running a day twice does
    nothing the second time."""
    session = get_session()
    report = automations.run_merchant_day(session, current_merchant(), body.day, utcnow())
    session.commit()
    return s.DailyReport(**report)


