"""Programs: create, read, change (JSON Merge Patch) and their images."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import request

from ... import schemas as s
from ...apple import IMAGE_KINDS
from ...apple import prepare_image
from ...errors import InvalidInput
from ...errors import ResourceNotFound
from ...permissions import Permission
from ...services import programs
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import program_out


@bp.operation("/programs", "POST", summary="Create a loyalty program", body=s.ProgramCreate,
              response=s.ProgramOut, status=HTTPStatus.CREATED, tags=("programs",),
              permission=Permission.SETTINGS)
def create_program(body: s.ProgramCreate) -> s.ProgramOut:
    """Only `name` and `kind` are required; everything else has defaults (10 points per
    100 RUB, Russian and English, the `points` template)."""
    session = get_session()
    program = programs.create_program(session, current_merchant(), body)
    session.commit()
    return program_out(program, wallet().settings.public_url)


@bp.operation("/programs", "GET", summary="List programs", response=s.ProgramList,
              tags=("programs",), permission=Permission.READ)
def list_programs() -> s.ProgramList:
    items = programs.list_programs(get_session(), current_merchant())
    return s.ProgramList(items=[program_out(p, wallet().settings.public_url) for p in items])


@bp.operation("/programs/<int:program_id>", "GET", summary="Get a program",
              response=s.ProgramOut, errors=(404,), tags=("programs",), permission=Permission.READ)
def get_program(program_id: int) -> s.ProgramOut:
    return program_out(programs.get_program(get_session(), current_merchant(), program_id),
                                wallet().settings.public_url)


@bp.operation("/programs/<int:program_id>", "PATCH", summary="Change a program",
              body=s.ProgramUpdate, merge_patch=True, response=s.ProgramOut, errors=(404,),
              tags=("programs",), permission=Permission.SETTINGS)
def update_program(program_id: int, body: dict[str, Any]) -> s.ProgramOut:
    """The merged program is validated as a whole; `name` and `currency` cannot be cleared."""
    session = get_session()
    program = programs.update_program(session, current_merchant(), program_id, body)
    session.commit()
    return program_out(program, wallet().settings.public_url)


def _image_kind(kind: str) -> str:
    if kind not in IMAGE_KINDS:
        raise ResourceNotFound(f"kind: no image kind {kind!r}; use icon, logo or strip",
                               field="kind")
    return kind


@bp.operation("/programs/<int:program_id>/images/<kind>", "PUT",
              summary="Upload the program's icon, logo or strip image",
              response=s.ProgramImageOut, errors=(404, 413), tags=("programs",),
              media=("image/png", "image/jpeg", "multipart/form-data"),
              path={"kind": {"enum": list(IMAGE_KINDS)}}, permission=Permission.SETTINGS)
def put_program_image(program_id: int, kind: str) -> s.ProgramImageOut:
    """Send the image itself as the body (PNG or JPEG up to 10 MB and 8192 pixels a side; or
    a multipart form field `file`). It is converted once to the exact sizes Wallet uses at
    @1x, @2x and @3x; every card of the program is then updated on customers' phones. 413:
    too large; 422: too elongated for the kind (a strip is cropped to 375×123 pt, a logo
    fitted into 160×50 pt, an icon into 29×29 pt)."""
    _image_kind(kind)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data:
        raise InvalidInput(f"{kind}: send the image as the request body", field=kind)
    files = prepare_image(kind, data)
    session = get_session()
    programs.set_program_image(session, current_merchant(), program_id, kind, files)
    session.commit()
    return s.ProgramImageOut(program_id=program_id, kind=kind, files=sorted(files))


@bp.operation("/programs/<int:program_id>/images/<kind>", "DELETE",
              summary="Go back to the template's image", response=s.ProgramOut,
              errors=(404,), tags=("programs",), path={"kind": {"enum": list(IMAGE_KINDS)}},
              permission=Permission.SETTINGS)
def delete_program_image(program_id: int, kind: str) -> s.ProgramOut:
    _image_kind(kind)
    session = get_session()
    program = programs.clear_program_image(session, current_merchant(), program_id, kind)
    session.commit()
    return program_out(program, wallet().settings.public_url)


