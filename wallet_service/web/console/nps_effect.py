"""NPS results (the score by month, promoters, passives and detractors, the comments) and
campaigns with their effect against the holdout, read from the services the API uses
(``services.nps``, ``services.campaigns``); definitions in docs/nps-and-campaign-effect.md."""

from __future__ import annotations

from flask import Response

from ...permissions import Permission
from ...services import campaigns
from ...services import nps
from .. import get_session
from ..api.serializers import campaign_effect_out
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import nav_item
from .frame import render

#: Comments shown on the NPS page (the API lists them all).
COMMENTS = 50

nav_item("nps", "console.nps", "nav_nps", Permission.READ, before="till")
nav_item("campaigns", "console.campaigns", "nav_campaigns", Permission.READ, before="analytics")


@bp.get("/nps", endpoint="nps")
@console_page(Permission.READ)
def nps_page() -> Response:
    """The last 12 months' NPS of every program, the total, and the latest comments."""
    user = current_user()
    session = get_session()
    months, total = nps.scores_by_month(session, user.merchant_id, program_id=None,
                                        since=None, until=None)
    comments = nps.list_answers(session, user.merchant_id, program_id=None, with_comment=True,
                                limit=COMMENTS, before_id=None)
    return render("console/nps.html", title="nps_title", months=months, total=total,
                  comments=[(a, nps.category(a.score)) for a, _member in comments])


@bp.get("/campaigns", endpoint="campaigns")
@console_page(Permission.READ)
def campaigns_page() -> Response:
    """The latest campaigns: reached, held out, and a link to each one's effect."""
    user = current_user()
    return render("console/campaigns.html", title="campaigns_title",
                  campaigns=campaigns.recent_campaigns(get_session(), user.merchant_id))


@bp.get("/campaigns/<int:campaign_id>", endpoint="campaign")
@console_page(Permission.READ)
def campaign_page(campaign_id: int) -> Response:
    """One campaign's effect: purchases in the 7 days after sending, reached against the
    holdout (another merchant's campaign: 404)."""
    user = current_user()
    effect = campaigns.campaign_effect(get_session(), user.merchant_id, campaign_id)
    return render("console/campaign.html", title="campaign_title", campaign=effect.campaign,
                  effect=campaign_effect_out(effect))
