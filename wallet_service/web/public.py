"""Links customers open: the pass download."""

from __future__ import annotations

import re
from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from sqlalchemy import select

from ..models import LoyaltyCard
from ..passes import PKPASS_MEDIA_TYPE
from . import get_session

bp = Blueprint("public", __name__)


@bp.get("/passes/<download_token>")
def download_pass(download_token: str) -> Response:
    """The member's current Apple pass. The link carries the card's random download token,
    so it cannot be guessed from the member id or the card number."""
    card = get_session().scalar(
        select(LoyaltyCard).where(LoyaltyCard.download_token == download_token)
    )
    if card is None:
        abort(HTTPStatus.NOT_FOUND)
    data = current_app.extensions["wallet_passes"].pass_bytes(get_session(), card)
    response = Response(data, mimetype=PKPASS_MEDIA_TYPE)
    name = re.sub(r"[^A-Za-z0-9_-]", "", card.serial_number) or "card"
    response.headers["Content-Disposition"] = f'attachment; filename="card-{name}.pkpass"'
    response.headers["Cache-Control"] = "no-store"
    return response
