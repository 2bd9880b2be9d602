"""Links customers open: the pass download."""

from __future__ import annotations

import re
from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import abort

from ..apple import PKPASS_MEDIA_TYPE
from ..models import LoyaltyCard
from . import get_session
from . import wallet

bp = Blueprint("public", __name__)


@bp.get("/passes/<download_token>")
def download_pass(download_token: str) -> Response:
    """The member's current Apple pass. The link carries the card's random download token,
    so it cannot be guessed from the member id or the card number."""
    passes = wallet().passes
    found = passes.current(get_session(), LoyaltyCard.download_token == download_token)
    if found is None:
        abort(HTTPStatus.NOT_FOUND)
    card, stored = found
    data = passes.pass_bytes(get_session(), card, stored)
    if stored is None:
        get_session().commit()  # the newly signed pass, for every process
    response = Response(data, mimetype=PKPASS_MEDIA_TYPE)
    name = re.sub(r"[^A-Za-z0-9_-]", "", card.serial_number) or "card"
    response.headers["Content-Disposition"] = f'attachment; filename="card-{name}.pkpass"'
    response.headers["Cache-Control"] = "no-store"
    return response
