"""Apple's pass web service (apple-wallet spec §3), at ``{PUBLIC_URL}/apple/v1/...``.

Devices get bare status codes, as Apple specifies; bodies are JSON only where Apple defines
one. https://developer.apple.com/documentation/walletpasses/adding-a-web-service-to-update-passes
"""

from __future__ import annotations

import math
from email.utils import format_datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import request

from .. import urls
from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import ResourceNotFound
from ..errors import WalletError
from ..services import apple
from . import get_session
from . import wallet

bp = Blueprint("apple", __name__, url_prefix=urls.APPLE_WEB_SERVICE)


@bp.errorhandler(WalletError)
def _wallet_error(exc: WalletError) -> Response:
    return Response(status=exc.status)


def _limited() -> None:
    wait = wallet().limiters.apple.allow(request.remote_addr or "?")
    if wait:
        response = Response(status=HTTPStatus.TOO_MANY_REQUESTS)
        response.headers["Retry-After"] = str(math.ceil(wait))
        abort(response)


def _check_pass_type(pass_type_identifier: str) -> None:
    if pass_type_identifier != wallet().settings.apple_pass_type_id:
        raise ResourceNotFound("unknown pass type")


def _card(pass_type_identifier: str, serial_number: str) -> Any:
    return _authenticated(pass_type_identifier, serial_number, apple.authenticated_card)


def _authenticated(pass_type_identifier: str, serial_number: str, find: Any) -> Any:
    _check_pass_type(pass_type_identifier)
    token = apple.parse_apple_pass_header(request.headers.get("Authorization"))
    try:
        return find(get_session(), serial_number, token)
    except (AuthenticationFailed, ResourceNotFound):
        _limited()  # guessing tokens or serials costs the guesser, not us
        raise


@bp.post("/v1/devices/<device_library_identifier>/registrations/<pass_type_identifier>/"
         "<serial_number>")
def register(device_library_identifier: str, pass_type_identifier: str,
             serial_number: str) -> Response:
    """Register a pass for update notifications: 201 new, 200 already registered, 401."""
    card = _card(pass_type_identifier, serial_number)
    body = request.get_json(silent=True)
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    if (not isinstance(push_token, str) or not 1 <= len(push_token) <= 256
            or not 1 <= len(device_library_identifier) <= 128):
        return Response(status=HTTPStatus.BAD_REQUEST)
    session = get_session()
    created = apple.register_device(session, card, device_library_identifier, push_token,
                                      utcnow())
    session.commit()
    return Response(status=HTTPStatus.CREATED if created else HTTPStatus.OK)


@bp.delete("/v1/devices/<device_library_identifier>/registrations/<pass_type_identifier>/"
           "<serial_number>")
def unregister(device_library_identifier: str, pass_type_identifier: str,
               serial_number: str) -> Response:
    """Unregister a pass: 200 (also when it was not registered), 401."""
    card = _card(pass_type_identifier, serial_number)
    session = get_session()
    apple.unregister_device(session, card, device_library_identifier, utcnow())
    session.commit()
    return Response(status=HTTPStatus.OK)


@bp.get("/v1/devices/<device_library_identifier>/registrations/<pass_type_identifier>")
def serials(device_library_identifier: str, pass_type_identifier: str) -> Response:
    """The serials of this device's passes updated since ``passesUpdatedSince``: 200 with
    ``serialNumbers`` and ``lastUpdated``, 204 when none, 404 for an unknown device."""
    _check_pass_type(pass_type_identifier)
    since = apple.parse_tag(request.args.get("passesUpdatedSince"))
    try:
        found = apple.updated_serials(get_session(), device_library_identifier, since)
    except ResourceNotFound:
        # Only guesses are limited: many real phones can share one carrier NAT address.
        _limited()
        raise
    if found is None:
        return Response(status=HTTPStatus.NO_CONTENT)
    return jsonify(serialNumbers=found.serial_numbers, lastUpdated=found.last_updated)


@bp.get("/v1/passes/<pass_type_identifier>/<serial_number>")
def latest_pass(pass_type_identifier: str, serial_number: str) -> Response:
    """The current signed pass: 200 with ``Last-Modified`` and ``ETag``, 304 when unchanged
    since ``If-Modified-Since`` or when ``If-None-Match`` names it (spec §3.3), 401. HEAD is
    answered too (Flask derives it from GET). The card and what identifies its stored pass
    come in one query; the bytes from the process's cache when it has them; a version not
    signed yet is signed and stored."""
    passes = wallet().passes
    found = _authenticated(
        pass_type_identifier, serial_number,
        lambda session, serial, token: apple.authenticated_download(session, passes, serial,
                                                                    token))
    return pass_response(found, Response(mimetype="application/vnd.apple.pkpass"))


def pass_response(found: apple.CurrentPass, response: Response) -> Response:
    """``response`` with the pass of ``found``, or 304 when the request's conditions say
    the client holds it: ``If-None-Match`` naming its ``ETag``, else (without
    ``If-None-Match``, RFC 9110 §13.2.2) ``If-Modified-Since`` at or after its
    ``Last-Modified`` (every version has its own second, spec §3.7)."""
    matches = request.headers.get("If-None-Match")
    if matches is not None:
        fresh = any(tag.strip() in (found.etag, "*", "W/" + found.etag)
                    for tag in matches.split(","))
    else:
        since = _http_date(request.headers.get("If-Modified-Since"))
        fresh = since is not None and since >= found.last_modified
    if fresh:
        response = Response(status=HTTPStatus.NOT_MODIFIED)
    else:
        session = get_session()
        data, signed_now = wallet().passes.data(session, found)
        if signed_now:
            session.commit()  # the newly signed pass, for every process
        response.set_data(data)
    response.headers["Last-Modified"] = format_datetime(found.last_modified, usegmt=True)
    response.headers["ETag"] = found.etag
    response.headers["Cache-Control"] = "no-store"
    return response


def _http_date(value: str | None) -> Any:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None


@bp.post("/v1/log")
def log() -> Response:
    """Messages from Wallet about problems with passes: 200 (spec §3.5), also for a body
    that is not JSON; 413 over the body cap, 400 for JSON nested too deeply, 429 over the
    client's budget. At most ``MAX_LOG_MESSAGES`` short lines are kept (``store_logs``)."""
    _limited()
    body = request.get_json(silent=True)
    logs = body.get("logs") if isinstance(body, dict) else None
    if isinstance(logs, list):
        session = get_session()
        apple.store_logs(session, logs, request.remote_addr, utcnow())
        session.commit()
    return Response(status=HTTPStatus.OK)
