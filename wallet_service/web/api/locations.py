"""Store locations: create, list, read, change (JSON Merge Patch), delete."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ... import schemas as s
from ...permissions import Permission
from ...services import locations
from ...services import merchants
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import location_out


def _zone() -> str:
    return merchants.time_zone_of(get_session(), current_merchant())


@bp.operation("/locations", "POST", summary="Add a store location", body=s.LocationCreate,
              response=s.LocationOut, status=HTTPStatus.CREATED, tags=("locations",),
              permission=Permission.SETTINGS)
def create_location(body: s.LocationCreate) -> s.LocationOut:
    """Every card of the merchant's programs shows the store: the phone brings the card to
    the Lock Screen near it (Apple Wallet) and may notify nearby (Google Wallet). A card
    shows 10 locations at most: the program's own `design.locations` first, then the
    stores, oldest first. Cards that show the new store are updated on the phones."""
    session = get_session()
    location = locations.create_location(session, current_merchant(),
                                         locations.NewLocation(**body.model_dump()))
    session.commit()
    return location_out(location, _zone())


@bp.operation("/locations", "GET", summary="List store locations", response=s.LocationList,
              tags=("locations",), permission=Permission.READ)
def list_locations() -> s.LocationList:
    """Oldest first: the order cards show them in."""
    zone = _zone()
    return s.LocationList(items=[location_out(loc, zone) for loc in
                                 locations.list_locations(get_session(), current_merchant())])


@bp.operation("/locations/<int:location_id>", "GET", summary="Get a store location",
              response=s.LocationOut, errors=(404,), tags=("locations",),
              permission=Permission.READ)
def get_location(location_id: int) -> s.LocationOut:
    location = locations.get_location(get_session(), current_merchant(), location_id)
    return location_out(location, _zone())


@bp.operation("/locations/<int:location_id>", "PATCH", summary="Change a store location",
              body=s.LocationUpdate, merge_patch=True, response=s.LocationOut, errors=(404,),
              tags=("locations",), permission=Permission.SETTINGS)
def update_location(location_id: int, body: dict[str, Any]) -> s.LocationOut:
    """The merged location is checked as a new one is. Cards whose shown locations change
    are updated on the phones."""
    session = get_session()
    location = locations.update_location(session, current_merchant(), location_id, body)
    session.commit()
    return location_out(location, _zone())


@bp.operation("/locations/<int:location_id>", "DELETE", summary="Delete a store location",
              status=HTTPStatus.NO_CONTENT, errors=(404,), tags=("locations",),
              permission=Permission.SETTINGS)
def delete_location(location_id: int) -> None:
    """No card shows the store any more; its id is never given to another store."""
    session = get_session()
    locations.delete_location(session, current_merchant(), location_id)
    session.commit()
