"""Campaign messages and the daily automations."""

from __future__ import annotations

from http import HTTPStatus

from ... import schemas as s
from ...db import utcnow
from ...permissions import Permission
from ...services import automations
from ...services import campaigns
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
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
    counts those cards only: members who never consented or withdrew are not reached."""
    session = get_session()
    campaign = campaigns.send_campaign(session, current_merchant(), program_id, body.text,
                                       segment(body.segment))
    session.commit()
    return campaign_out(campaign)


@bp.operation("/programs/<int:program_id>/campaigns", "GET", summary="Campaigns sent",
              response=s.CampaignList, errors=(404,), tags=("campaigns",),
              permission=Permission.READ)
def list_campaigns(program_id: int) -> s.CampaignList:
    items = campaigns.list_campaigns(get_session(), current_merchant(), program_id)
    return s.CampaignList(items=[campaign_out(c) for c in items])


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


