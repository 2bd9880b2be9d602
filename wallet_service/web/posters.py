"""The program's join link as a QR code and as a printable poster for the till.

The merchant API serves the QR code (SVG, PNG) and the poster (``web.api.posters``); the
poster is also public at
``/join/<join_token>/poster`` since the join link it shows is public anyway. The poster page
is one self-contained HTML file (inline styles, QR code and logo), so it prints the same when
saved and opened offline.
"""

from __future__ import annotations

import base64
import io
from http import HTTPStatus

import segno
from flask import Blueprint
from flask import Response
from flask import render_template
from flask import request
from markupsafe import Markup
from sqlalchemy import select

from .. import i18n
from .. import urls
from ..models import LoyaltyProgram
from . import get_session
from . import wallet
from .enroll import brand
from .enroll import logo_bytes
from .enroll import message_page
from .headers import secure_headers

bp = Blueprint("posters", __name__)

SIZES = ("a6", "a4")


def join_qr(url: str) -> segno.QRCode:
    """The QR code of a join link; quartile error correction survives a worn, glossy print."""
    return segno.make(url, error="q", micro=False)


def qr_svg(url: str, *, scale: int = 10) -> bytes:
    out = io.BytesIO()
    join_qr(url).save(out, kind="svg", scale=scale, border=4, dark="#000", light="#fff",
                      title=url)
    return out.getvalue()


def qr_png(url: str, *, scale: int = 10) -> bytes:
    out = io.BytesIO()
    join_qr(url).save(out, kind="png", scale=scale, border=4, dark="#000", light="#fff")
    return out.getvalue()


def render_poster(program: LoyaltyProgram, size: str, lang: str | None) -> str:
    """The printable poster (``a6`` table card or ``a4`` poster) in ``lang``, else in the
    program's first language."""
    languages = [code for code in program.languages or [] if code in i18n.LANGUAGES] or list(
        i18n.LANGUAGES)
    if lang not in languages:
        lang = languages[0]
    second = next((code for code in languages if code != lang), None)
    url = urls.join_url(wallet().settings.public_url, program.join_token)
    logo = logo_bytes(program.id)
    logo_url = ("data:image/png;base64," + base64.b64encode(logo).decode()) if logo else None
    qr = join_qr(url).svg_inline(scale=1, border=4, omitsize=True, dark="#000", light="#fff",
                                 title=url, svgclass="qr")
    return render_template(
        "enroll/poster.html", lang=lang, t=lambda key, **kw: i18n.t(lang, key, **kw),
        second=second, t2=(lambda key, **kw: i18n.t(second, key, **kw)) if second else None,
        size=size, program=program, brand=brand(program, logo_url=logo_url),
        qr=Markup(qr), join_url=url, short_url=url.split("://", 1)[-1], sizes=SIZES,
    )


def poster_response(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return secure_headers(response)


def image_response(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# --- public -----------------------------------------------------------------------------


@bp.get("/join/<join_token>/poster")
def public_poster(join_token: str) -> Response:
    """The printable poster of a program, by its public join token."""
    program = None
    if len(join_token) <= 32:
        program = get_session().scalar(
            select(LoyaltyProgram).where(LoyaltyProgram.join_token == join_token))
    if program is None:
        return secure_headers(message_page("not_found", HTTPStatus.NOT_FOUND))
    size = request.args.get("size", "a4")
    if size not in SIZES:
        size = "a4"
    return poster_response(render_poster(program, size, request.args.get("lang")))
