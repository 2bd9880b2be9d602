"""API keys: create (shown once), list, revoke; each with a scope (``permissions.py``)."""

from __future__ import annotations

from http import HTTPStatus

from ... import schemas as s
from ...permissions import Permission
from ...services import merchants
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
from ._blueprint import current_permissions
from .serializers import api_key_out


@bp.operation("/api-keys", "POST", summary="Create an API key", body=s.ApiKeyCreate,
              response=s.ApiKeyCreated, status=HTTPStatus.CREATED, tags=("api keys",),
              permission=Permission.KEYS)
def create_api_key(body: s.ApiKeyCreate) -> s.ApiKeyCreated:
    """The key is in the response only; the service keeps a hash. Without `scope` the key
    is a till's (`till`): a key that leaks from a point of sale then cannot change the
    program or mint other keys. A key can only create keys whose scope its own covers."""
    session = get_session()
    key, raw = merchants.create_api_key(session, current_merchant(), body.name,
                                        scope=body.scope, creator=current_permissions())
    session.commit()
    return s.ApiKeyCreated(api_key=raw, **api_key_out(key).model_dump())


@bp.operation("/api-keys", "GET", summary="List API keys", response=s.ApiKeyList,
              tags=("api keys",), permission=Permission.KEYS)
def list_api_keys() -> s.ApiKeyList:
    return s.ApiKeyList(items=[api_key_out(k) for k in
                               merchants.list_api_keys(get_session(), current_merchant())])


@bp.operation("/api-keys/<int:key_id>", "DELETE", summary="Revoke an API key",
              response=s.ApiKeyOut, errors=(404,), tags=("api keys",),
              permission=Permission.KEYS)
def revoke_api_key(key_id: int) -> s.ApiKeyOut:
    """Requests with a revoked key get 401 from then on. A key can only revoke keys whose
    scope its own covers."""
    session = get_session()
    key = merchants.revoke_api_key(session, current_merchant(), key_id,
                                   revoker=current_permissions())
    session.commit()
    return api_key_out(key)


