"""The Overview: headline numbers for today and the last 30 days, and what needs attention
(product brief "cockpit": Overview)."""

from __future__ import annotations

import datetime as dt

from flask import Response

from ...permissions import Permission
from ...services import console_overview
from .. import get_session
from .. import wallet
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import now
from .frame import render


def certificate_expires() -> dt.datetime | None:
    """When the first of the signing certificates in use (pass, WWDR) expires; None when
    they cannot be loaded (the Health page says why)."""
    days = wallet().passes.days_left()
    if not days:
        return None
    return now() + dt.timedelta(days=min(days.values()))


@bp.get("/")
@console_page(Permission.READ)
def overview() -> Response:
    """Headline numbers and alerts of the signed-in user's merchant."""
    user = current_user()
    session = get_session()
    figures = console_overview.headline(session, user.merchant_id, user.time_zone)
    alerts = console_overview.alerts(session, user.merchant_id,
                                     certificate_expires=certificate_expires())
    return render("console/overview.html", title="overview_title", figures=figures,
                  alerts=alerts)
