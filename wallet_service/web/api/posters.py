"""The program's join link as a QR code (SVG, PNG) and as a printable poster."""

from __future__ import annotations

from typing import Literal

from flask import Response
from pydantic import Field

from ... import urls
from ...permissions import Permission
from ...schemas import Strict
from ...services import programs
from .. import get_session
from .. import wallet
from ..posters import image_response
from ..posters import poster_response
from ..posters import qr_png
from ..posters import qr_svg
from ..posters import render_poster
from ._blueprint import bp
from ._blueprint import current_merchant


class QrQuery(Strict):
    scale: int = Field(10, ge=1, le=40, description="Pixels (PNG) or units (SVG) per module")


class PosterQuery(Strict):
    size: Literal["a6", "a4"] = Field("a4", description="`a6` table card or `a4` poster")
    lang: Literal["ru", "en"] | None = Field(
        None, description="Language of the poster; the program's first language by default")


@bp.operation("/programs/<int:program_id>/qr.svg", "GET",
              summary="The program's join link as a QR code (SVG)", query=QrQuery,
              errors=(404,), tags=("programs",), produces=("image/svg+xml",),
              permission=Permission.READ)
def program_qr_svg(program_id: int, query: QrQuery) -> Response:
    """An `image/svg+xml` QR code that opens the program's `join_url`: print it on receipts,
    menus or stickers."""
    program = programs.get_program(get_session(), current_merchant(), program_id)
    url = urls.join_url(wallet().settings.public_url, program.join_token)
    return image_response(qr_svg(url, scale=query.scale), "image/svg+xml",
                           f"join-{program.id}.svg")


@bp.operation("/programs/<int:program_id>/qr.png", "GET",
              summary="The program's join link as a QR code (PNG)", query=QrQuery,
              errors=(404,), tags=("programs",), produces=("image/png",),
              permission=Permission.READ)
def program_qr_png(program_id: int, query: QrQuery) -> Response:
    """An `image/png` QR code that opens the program's `join_url`."""
    program = programs.get_program(get_session(), current_merchant(), program_id)
    url = urls.join_url(wallet().settings.public_url, program.join_token)
    return image_response(qr_png(url, scale=query.scale), "image/png", f"join-{program.id}.png")


@bp.operation("/programs/<int:program_id>/poster", "GET",
              summary="A printable sign-up poster (HTML)", query=PosterQuery,
              errors=(404,), tags=("programs",), produces=("text/html",),
              permission=Permission.READ)
def program_poster(program_id: int, query: PosterQuery) -> Response:
    """A `text/html` page to print: the program's name, logo and colours, the join QR code and
    a short call to action. `a6` is a table card, `a4` a poster. The same page is public at
    `/join/<join_token>/poster` (linked from nowhere, but as public as the join link)."""
    program = programs.get_program(get_session(), current_merchant(), program_id)
    return poster_response(render_poster(program, query.size, query.lang))
