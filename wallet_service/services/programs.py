"""Loyalty programs: create, read, change."""

from __future__ import annotations

import secrets
from typing import Any
from typing import get_args

from pydantic import BaseModel
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..merge_patch import merge_patch
from ..models import LoyaltyProgram
from ..models import ProgramImage
from ..schemas import RULE_FIELDS
from ..schemas import ProgramCreate
from ..validation import raise_for
from .outbox import publish_program_change


def create_program(session: Session, merchant_id: int, data: ProgramCreate) -> LoyaltyProgram:
    program = LoyaltyProgram(merchant_id=merchant_id, join_token=secrets.token_urlsafe(12),
                             **_columns(data))
    session.add(program)
    session.flush()
    return program


def get_program(session: Session, merchant_id: int, program_id: int) -> LoyaltyProgram:
    """:raises ResourceNotFound: missing, or another merchant's."""
    program = session.scalar(
        select(LoyaltyProgram).where(
            LoyaltyProgram.id == program_id, LoyaltyProgram.merchant_id == merchant_id
        )
    )
    if program is None:
        raise ResourceNotFound(f"program {program_id} not found", field="program_id")
    return program


def list_programs(session: Session, merchant_id: int) -> list[LoyaltyProgram]:
    return list(
        session.scalars(
            select(LoyaltyProgram)
            .where(LoyaltyProgram.merchant_id == merchant_id)
            .order_by(LoyaltyProgram.id)
        )
    )


def update_program(
    session: Session, merchant_id: int, program_id: int, patch: dict[str, Any]
) -> LoyaltyProgram:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the program's ``ProgramCreate``
    view, and re-validate the whole program, so rules that span fields (tier thresholds
    against the tier basis, decimals against the currency) still hold.

    ``null`` clears a field: back to ``None`` where the field allows it (``stamps.
    max_per_window: null`` is "no limit"), else to its default; never on a required field.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ValidationFailed: ``null`` on a required field; the merged program breaks a rule.
    """
    program = get_program(session, merchant_id, program_id)
    clear_to_none = _nulls_to_keep(patch, ProgramCreate, ())
    merged = merge_patch(program_document(program).model_dump(mode="json"), patch)
    for path in clear_to_none:
        parent = merged
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = None
    try:
        data = ProgramCreate.model_validate(merged)
    except ValidationError as exc:
        raise_for(exc)
    changed = False
    for name, value in _columns(data).items():
        if getattr(program, name) != value:
            setattr(program, name, value)
            changed = True
    if changed:
        now = utcnow()
        program.updated_at = now
        session.flush()
        publish_program_change(session, program.id, now)
    return program


def set_program_image(
    session: Session, merchant_id: int, program_id: int, kind: str, files: dict[str, bytes]
) -> LoyaltyProgram:
    """Replace the program's image of ``kind`` with ``files`` (already converted to exact
    pass sizes); every card shows it, so every card gets a new version.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    _delete_images(session, program.id, kind)
    now = utcnow()
    session.add_all(
        ProgramImage(program_id=program.id, kind=kind, filename=name, data=data, created_at=now)
        for name, data in files.items()
    )
    program.updated_at = now
    session.flush()
    publish_program_change(session, program.id, now)
    return program


def clear_program_image(
    session: Session, merchant_id: int, program_id: int, kind: str
) -> LoyaltyProgram:
    """Go back to the template's image of ``kind``."""
    program = get_program(session, merchant_id, program_id)
    if _delete_images(session, program.id, kind):
        now = utcnow()
        program.updated_at = now
        session.flush()
        publish_program_change(session, program.id, now)
    return program


def _nulls_to_keep(
    patch: dict[str, Any], model: type[BaseModel], path: tuple[str, ...]
) -> list[tuple[str, ...]]:
    """The paths where the patch's ``null`` must become ``None`` rather than the field's
    default (the field allows ``None`` but defaults to something else).

    :raises ValidationFailed: ``null`` on a field the model requires.
    """
    out: list[tuple[str, ...]] = []
    for key, value in patch.items():
        spec = model.model_fields.get(key)
        if spec is None:
            continue  # not a field: validating the merged program names it
        here = (*path, key)
        if value is None:
            if spec.is_required():
                field = ".".join(here)
                raise ValidationFailed(f"{field}: required; null cannot clear it", field=field)
            if (_allows_none(spec.annotation)
                    and spec.get_default(call_default_factory=True) is not None):
                out.append(here)
        elif isinstance(value, dict):
            nested = _model_of(spec.annotation)
            if nested is not None:
                out.extend(_nulls_to_keep(value, nested, here))
    return out


def _allows_none(annotation: Any) -> bool:
    return annotation is None or annotation is type(None) or type(None) in get_args(annotation)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model of a field typed ``Model`` or ``Model | None``."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def program_images(session: Session, program_id: int) -> dict[str, bytes]:
    return dict(session.execute(
        select(ProgramImage.filename, ProgramImage.data)
        .where(ProgramImage.program_id == program_id)
    ).all())


def _delete_images(session: Session, program_id: int, kind: str) -> int:
    result = session.execute(
        delete(ProgramImage).where(ProgramImage.program_id == program_id, ProgramImage.kind == kind)
    )
    return int(result.rowcount or 0)


def program_document(program: LoyaltyProgram) -> ProgramCreate:
    """The program as the input model that would create it."""
    return ProgramCreate.model_validate(
        {
            "name": program.name,
            "kind": program.kind,
            "currency": program.currency,
            "languages": program.languages,
            "template": program.template,
            "design": program.design,
            "enrollment": program.enrollment or {},
            **program.rules,
        }
    )


def _columns(data: ProgramCreate) -> dict[str, Any]:
    dumped = data.model_dump(mode="json")
    return {
        "name": data.name,
        "kind": data.kind,
        "currency": data.currency,
        "languages": list(data.languages),
        "template": data.template,
        "design": dumped["design"],
        "enrollment": dumped["enrollment"],
        "rules": {name: dumped[name] for name in RULE_FIELDS},
    }
