"""The program's join link as a QR code and as a printable poster for the till.

The merchant API gets the QR code (SVG, PNG) and the poster; the poster is also public at
``/join/<join_token>/poster`` since the join link it shows is public anyway. The poster page
is one self-contained HTML file (inline styles, QR code and logo), so it prints the same when
saved and opened offline.
"""

from __future__ import annotations

import base64
import io
from http import HTTPStatus
from typing import Literal

import segno
from flask import Blueprint
from flask import Response
from flask import g
from flask import render_template
from flask import request
from markupsafe import Markup
from pydantic import Field
from sqlalchemy import select

from .. import i18n
from ..models import LoyaltyProgram
from ..schemas import Strict
from ..services import programs
from . import get_session
from . import wallet
from .api import bp as api_bp
from .enroll import brand
from .enroll import logo_bytes
from .enroll import message_page
from .enroll import secure_headers

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
    url = programs.join_url(wallet().settings.public_url, program)
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


def _poster_response(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return secure_headers(response)


def _image_response(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# --- merchant API -----------------------------------------------------------------------


class QrQuery(Strict):
    scale: int = Field(10, ge=1, le=40, description="Pixels (PNG) or units (SVG) per module")


class PosterQuery(Strict):
    size: Literal["a6", "a4"] = Field("a4", description="`a6` table card or `a4` poster")
    lang: Literal["ru", "en"] | None = Field(
        None, description="Language of the poster; the program's first language by default")


@api_bp.operation("/programs/<int:program_id>/qr.svg", "GET",
                  summary="The program's join link as a QR code (SVG)", query=QrQuery,
                  errors=(404,), tags=("programs",))
def program_qr_svg(program_id: int, query: QrQuery) -> Response:
    """An `image/svg+xml` QR code that opens the program's `join_url`: print it on receipts,
    menus or stickers."""
    program = programs.get_program(get_session(), g.merchant_id, program_id)
    url = programs.join_url(wallet().settings.public_url, program)
    return _image_response(qr_svg(url, scale=query.scale), "image/svg+xml",
                           f"join-{program.id}.svg")


@api_bp.operation("/programs/<int:program_id>/qr.png", "GET",
                  summary="The program's join link as a QR code (PNG)", query=QrQuery,
                  errors=(404,), tags=("programs",))
def program_qr_png(program_id: int, query: QrQuery) -> Response:
    """An `image/png` QR code that opens the program's `join_url`."""
    program = programs.get_program(get_session(), g.merchant_id, program_id)
    url = programs.join_url(wallet().settings.public_url, program)
    return _image_response(qr_png(url, scale=query.scale), "image/png", f"join-{program.id}.png")


@api_bp.operation("/programs/<int:program_id>/poster", "GET",
                  summary="A printable sign-up poster (HTML)", query=PosterQuery,
                  errors=(404,), tags=("programs",))
def program_poster(program_id: int, query: PosterQuery) -> Response:
    """A `text/html` page to print: the program's name, logo and colours, the join QR code and
    a short call to action. `a6` is a table card, `a4` a poster. The same page is public at
    `/join/<join_token>/poster` (linked from nowhere, but as public as the join link)."""
    program = programs.get_program(get_session(), g.merchant_id, program_id)
    return _poster_response(render_poster(program, query.size, query.lang))


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
    return _poster_response(render_poster(program, size, request.args.get("lang")))
