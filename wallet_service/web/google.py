"""Google Wallet's save/delete callbacks (google-wallet spec §4)."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from .. import urls
from ..db import utcnow
from ..google import CallbackRejected
from ..services import google as google_cards
from . import get_session
from . import wallet

bp = Blueprint("google", __name__)


@bp.post(urls.GOOGLE_CALLBACKS)
def callbacks() -> Response:
    """Verify the ECv2SigningOnly signature chain and record the save or delete once per
    nonce: 200 (also for a repeat), 400 for a forged, expired or foreign message, 404 while
    Google Wallet is not configured."""
    google = wallet().google
    if not google.enabled:
        return Response(status=HTTPStatus.NOT_FOUND)
    session = get_session()
    try:
        google_cards.receive_callback(session, google, request.get_data(), utcnow())
    except CallbackRejected as exc:
        current_app.logger.warning("Google callback refused: %s", exc)
        return Response(status=HTTPStatus.BAD_REQUEST)
    session.commit()
    return Response(status=HTTPStatus.OK)
