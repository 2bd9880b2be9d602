"""Google Wallet's save/delete callbacks (google-wallet spec §4)."""

from __future__ import annotations

import math
from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from .. import urls
from ..db import utcnow
from ..google import CallbackRejected
from ..google import GoogleUnavailable
from ..services import google as google_cards
from . import get_session
from . import wallet

bp = Blueprint("google", __name__)


@bp.post(urls.GOOGLE_CALLBACKS)
def callbacks() -> Response:
    """Verify the ECv2SigningOnly signature chain and record the save or delete once per
    nonce: 200 (also for a repeat), 400 for a forged, expired or foreign message, 404 while
    Google Wallet is not configured, 429 over the client's budget, 503 with ``Retry-After``
    while Google's root keys cannot be fetched (Google delivers again later, spec §4.2)."""
    google = wallet().google
    if not google.enabled:
        return Response(status=HTTPStatus.NOT_FOUND)
    # Charged before verification: verifying is the expensive part of a forgery.
    wait = wallet().limiters.google.allow(request.remote_addr or "?")
    if wait:
        return _retry_later(HTTPStatus.TOO_MANY_REQUESTS, wait)
    session = get_session()
    try:
        google_cards.receive_callback(session, google, request.get_data(), utcnow())
    except CallbackRejected as exc:
        current_app.logger.warning("Google callback refused: %s", exc)
        return Response(status=HTTPStatus.BAD_REQUEST)
    except GoogleUnavailable as exc:
        return _retry_later(HTTPStatus.SERVICE_UNAVAILABLE, exc.retry_after or 60)
    session.commit()
    return Response(status=HTTPStatus.OK)


def _retry_later(status: HTTPStatus, seconds: float) -> Response:
    response = Response(status=status)
    response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response
