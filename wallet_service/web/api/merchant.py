"""The merchant itself: its name and the time zone its days are counted in."""

from __future__ import annotations

from typing import Any

from ... import schemas as s
from ...permissions import Permission
from ...services import merchants
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import merchant_out


@bp.operation("/merchant", "GET", summary="The merchant", response=s.MerchantOut,
              tags=("merchant",), permission=Permission.READ)
def get_merchant() -> s.MerchantOut:
    """The merchant whose API key calls."""
    return merchant_out(merchants.get_merchant(get_session(), current_merchant()))


@bp.operation("/merchant", "PATCH", summary="Change the merchant's settings",
              body=s.MerchantUpdate, merge_patch=True, response=s.MerchantOut,
              tags=("merchant",), permission=Permission.SETTINGS)
def update_merchant(body: dict[str, Any]) -> s.MerchantOut:
    """`time_zone` (an IANA name such as `Asia/Vladivostok`) sets the calendar of
    birthdays, points expiry dates, win-back windows and the daily job, which runs at
    midnight there; `null` puts back the service's default. A day already run is not run
    again after a change."""
    session = get_session()
    merchant = merchants.update_merchant(session, current_merchant(), body,
                                         default_time_zone=wallet().settings.default_time_zone)
    session.commit()
    return merchant_out(merchant)
