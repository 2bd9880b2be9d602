"""API keys: create (shown once), list, revoke."""

from __future__ import annotations

from http import HTTPStatus

from ... import schemas as s
from ...services import merchants
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import api_key_out


@bp.operation("/api-keys", "POST", summary="Create an API key", body=s.ApiKeyCreate,
              response=s.ApiKeyCreated, status=HTTPStatus.CREATED, tags=("api keys",))
def create_api_key(body: s.ApiKeyCreate) -> s.ApiKeyCreated:
    """The key is in the response only; the service keeps a hash."""
    session = get_session()
    key, raw = merchants.create_api_key(session, current_merchant(), body.name)
    session.commit()
    return s.ApiKeyCreated(api_key=raw, **api_key_out(key).model_dump())


@bp.operation("/api-keys", "GET", summary="List API keys", response=s.ApiKeyList,
              tags=("api keys",))
def list_api_keys() -> s.ApiKeyList:
    return s.ApiKeyList(items=[api_key_out(k) for k in
                               merchants.list_api_keys(get_session(), current_merchant())])


@bp.operation("/api-keys/<int:key_id>", "DELETE", summary="Revoke an API key",
              response=s.ApiKeyOut, errors=(404,), tags=("api keys",))
def revoke_api_key(key_id: int) -> s.ApiKeyOut:
    """Requests with a revoked key get 401 from then on."""
    session = get_session()
    key = merchants.revoke_api_key(session, current_merchant(), key_id)
    session.commit()
    return api_key_out(key)


