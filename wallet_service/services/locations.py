"""A merchant's store locations, and the locations each card shows.

A card carries at most :data:`MAX_SHOWN` locations: "A pass can have only 10 relevant
locations" (apple-wallet spec §2.7), and Google takes at most 10 ``merchantLocations`` on an
object (google-wallet spec §1.8). When a program has more, **the program's own
``design.locations`` win** (the merchant chose them for that program), then the merchant's
stores follow, oldest first; a store at the very point of a design location is shown once.

A store that is created, changed or deleted gives a new version (so a push, and a Google
update) to the cards of every program whose shown list it changes, and to no other: a store
beyond the tenth place changes no card.

Stores keep their ids for good: deleting one marks the row, so later references (tills,
reports) never see an id reused for another store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..local_time import check_time_zone
from ..merge_patch import merge_patch
from ..models import Location
from ..models import LoyaltyProgram
from ..schemas import LocationCreate
from ..validation import raise_for
from .outbox import publish_program_change

#: The most locations one card shows (apple-wallet §2.7, google-wallet §1.8).
MAX_SHOWN = 10

_FIELDS = ("name", "address", "latitude", "longitude", "time_zone", "relevant_text")


@dataclass(frozen=True)
class NewLocation:
    """A store: where it is, and what the Lock Screen says near it."""

    name: str
    address: str
    latitude: float
    longitude: float
    time_zone: str | None = None
    relevant_text: str | None = None


@dataclass(frozen=True)
class ShownLocation:
    """A point a card becomes relevant at, with its Lock Screen text (None: the card's own
    words)."""

    latitude: float
    longitude: float
    relevant_text: str | None = None


def shown_locations(design_locations: Iterable[Mapping[str, Any]],
                    stores: Iterable[ShownLocation]) -> tuple[ShownLocation, ...]:
    """What a card shows: the program's design locations, then the stores, at most
    :data:`MAX_SHOWN`; a store at a point already shown is left out."""
    shown = [ShownLocation(float(d["latitude"]), float(d["longitude"]), d.get("relevant_text"))
             for d in design_locations]
    points = {(s.latitude, s.longitude) for s in shown}
    for store in stores:
        if len(shown) >= MAX_SHOWN:
            break
        if (store.latitude, store.longitude) not in points:
            shown.append(store)
            points.add((store.latitude, store.longitude))
    return tuple(shown[:MAX_SHOWN])


def store_points(session: Session, merchant_id: int) -> tuple[ShownLocation, ...]:
    """The merchant's stores as cards show them, oldest first."""
    rows = session.execute(
        select(Location.latitude, Location.longitude, Location.relevant_text)
        .where(Location.merchant_id == merchant_id, Location.deleted_at.is_(None))
        .order_by(Location.id)
    ).all()
    return tuple(ShownLocation(r.latitude, r.longitude, r.relevant_text) for r in rows)


def program_locations(session: Session, program: LoyaltyProgram) -> tuple[ShownLocation, ...]:
    """The locations the program's cards show."""
    return shown_locations(program.design.get("locations") or (),
                           store_points(session, program.merchant_id))


# --- the stores --------------------------------------------------------------------------


def create_location(session: Session, merchant_id: int, data: NewLocation) -> Location:
    """Add a store; the cards that show it get a new version.

    :raises ValidationFailed: ``time_zone`` is not an IANA time zone.
    """
    _check(data)
    before = _shown_by_program(session, merchant_id)
    now = utcnow()
    location = Location(merchant_id=merchant_id, created_at=now, updated_at=now,
                        **_values(data))
    session.add(location)
    session.flush()
    _publish_changed(session, merchant_id, before, now)
    return location


def list_locations(session: Session, merchant_id: int) -> list[Location]:
    """The merchant's stores, oldest first (the order cards show them in)."""
    return list(session.scalars(
        select(Location)
        .where(Location.merchant_id == merchant_id, Location.deleted_at.is_(None))
        .order_by(Location.id)))


def get_location(session: Session, merchant_id: int, location_id: int) -> Location:
    """:raises ResourceNotFound: missing, deleted, or another merchant's."""
    location = session.scalar(
        select(Location).where(Location.id == location_id,
                               Location.merchant_id == merchant_id,
                               Location.deleted_at.is_(None)))
    if location is None:
        raise ResourceNotFound(f"location {location_id} not found", field="location_id")
    return location


def update_location(session: Session, merchant_id: int, location_id: int,
                    patch: dict[str, Any]) -> Location:
    """Apply ``patch``, a JSON Merge Patch (RFC 7396) of the store; the merged store is
    checked as a new one is. ``null`` clears ``time_zone`` (the merchant's again) and
    ``relevant_text``. The cards whose shown locations change get a new version.

    :raises ResourceNotFound: missing, deleted, or another merchant's.
    :raises ValidationFailed: an unknown field, ``null`` on a required one, or a merged
        store a new one could not be.
    """
    location = get_location(session, merchant_id, location_id)
    data = NewLocation(**_merged(_document(location), patch).model_dump())
    _check(data)
    values = _values(data)
    if all(getattr(location, k) == v for k, v in values.items()):
        return location
    before = _shown_by_program(session, merchant_id)
    now = utcnow()
    for key, value in values.items():
        setattr(location, key, value)
    location.updated_at = now
    session.flush()
    _publish_changed(session, merchant_id, before, now)
    return location


def delete_location(session: Session, merchant_id: int, location_id: int) -> None:
    """Delete the store: no card shows it from now on; its id is never given to another.

    :raises ResourceNotFound: missing, deleted already, or another merchant's.
    """
    location = get_location(session, merchant_id, location_id)
    before = _shown_by_program(session, merchant_id)
    now = utcnow()
    location.deleted_at = location.updated_at = now
    session.flush()
    _publish_changed(session, merchant_id, before, now)


# --- helpers ------------------------------------------------------------------------------


def _shown_by_program(session: Session, merchant_id: int) -> dict[int, tuple[ShownLocation, ...]]:
    """What the cards of each of the merchant's programs show now."""
    stores = store_points(session, merchant_id)
    programs = session.execute(
        select(LoyaltyProgram.id, LoyaltyProgram.design)
        .where(LoyaltyProgram.merchant_id == merchant_id)
        .order_by(LoyaltyProgram.id)).all()
    return {p.id: shown_locations((p.design or {}).get("locations") or (), stores)
            for p in programs}


def _publish_changed(session: Session, merchant_id: int,
                     before: dict[int, tuple[ShownLocation, ...]], now: dt.datetime) -> None:
    """A new version for every card of the programs whose shown locations changed."""
    for program_id, shown in _shown_by_program(session, merchant_id).items():
        if shown != before.get(program_id):
            publish_program_change(session, program_id, now)


def _check(data: NewLocation) -> None:
    if data.time_zone is not None:
        check_time_zone(data.time_zone)


def _values(data: NewLocation) -> dict[str, Any]:
    return {k: getattr(data, k) for k in _FIELDS}


def _document(location: Location) -> dict[str, Any]:
    return {k: getattr(location, k) for k in _FIELDS}


def _merged(document: dict[str, Any], patch: dict[str, Any]) -> LocationCreate:
    """``document`` with ``patch`` merged in, validated as a new store.

    :raises ValidationFailed: an unknown key, ``null`` on a required field, or a merged
        store :class:`LocationCreate` refuses.
    """
    for key, value in patch.items():
        if key not in document:
            raise ValidationFailed(f"{key}: not a field of a location", field=key)
        if value is None and LocationCreate.model_fields[key].is_required():
            raise ValidationFailed(f"{key}: required; null cannot clear it", field=key)
    merged = merge_patch(document, patch)
    try:
        return LocationCreate.model_validate({k: v for k, v in merged.items() if v is not None})
    except ValidationError as exc:
        raise_for(exc)

