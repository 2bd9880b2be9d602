"""The audit log: one row per sign-in, settings change, manual adjustment, erasure, export and
key change, written in the same transaction as the change it describes (a rolled-back change
leaves no entry). The console's "Audit log" page reads it; nothing ever updates or deletes it.

Services take the acting party as an :class:`Actor`, built by the web layer from the signed-in
user or the API key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEntry

#: Names of fields whose values never go into the log (only that they changed).
SECRET_FIELDS = frozenset({"password", "password_hash", "pin", "pin_hash", "secret", "key",
                           "key_hash", "token"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``kind`` is ``user``, ``key`` or ``system``; ``label`` the e-mail or key
    name; ``ip`` the client's address as the proxy-aware request saw it."""

    kind: str
    id: int | None
    label: str
    ip: str | None = None


SYSTEM = Actor("system", None, "system")


def redacted(changes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``changes`` with the values of secret fields replaced by a marker."""
    if changes is None:
        return None
    return {name: ("[changed]" if name in SECRET_FIELDS else value)
            for name, value in changes.items()}


def record(session: Session, *, merchant_id: int, actor: Actor, action: str,
           target: str | None = None, changes: Mapping[str, Any] | None = None) -> AuditEntry:
    """Add one entry; the caller's transaction commits it with the change itself."""
    entry = AuditEntry(merchant_id=merchant_id, actor_kind=actor.kind, actor_id=actor.id,
                       actor_label=actor.label[:320], action=action,
                       target=None if target is None else target[:200],
                       changes=redacted(changes), ip=actor.ip)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, merchant_id: int, *, action: str | None = None,
            actor_label: str | None = None, before_id: int | None = None,
            limit: int = 100) -> list[AuditEntry]:
    """The merchant's entries, newest first, optionally filtered by action or actor and
    paged by ``before_id``."""
    query = select(AuditEntry).where(AuditEntry.merchant_id == merchant_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor_label:
        query = query.where(AuditEntry.actor_label == actor_label)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def filter_values(session: Session, merchant_id: int) -> tuple[list[str], list[str]]:
    """The actions and the actor labels the merchant's log holds, for its filters."""
    actions = sorted(session.scalars(select(AuditEntry.action).where(
        AuditEntry.merchant_id == merchant_id).distinct()))
    actors = sorted(session.scalars(select(AuditEntry.actor_label).where(
        AuditEntry.merchant_id == merchant_id).distinct()))
    return actions, actors
