"""Links customers open: the pass download."""

from __future__ import annotations

import re
from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import abort

from ..apple import PKPASS_MEDIA_TYPE
from . import get_session
from . import wallet
from .apple import pass_response

bp = Blueprint("public", __name__)


@bp.get("/passes/<download_token>")
def download_pass(download_token: str) -> Response:
    """The member's current Apple pass. The link carries the card's random download token,
    so it cannot be guessed from the member id or the card number. Conditional requests
    (``If-None-Match``, ``If-Modified-Since``) are answered 304 as on the web service."""
    found = wallet().passes.find(get_session(), "download_token", download_token)
    if found is None:
        abort(HTTPStatus.NOT_FOUND)
    response = Response(mimetype=PKPASS_MEDIA_TYPE)
    name = re.sub(r"[^A-Za-z0-9_-]", "", found.serial_number) or "card"
    response.headers["Content-Disposition"] = f'attachment; filename="card-{name}.pkpass"'
    return pass_response(found, response)
