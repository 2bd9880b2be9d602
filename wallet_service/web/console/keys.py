"""API keys (owners): list with scopes, create (the secret shown once), revoke. Audited."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...permissions import SCOPES
from ...permissions import Permission
from ...permissions import Scope
from ...services import audit
from ...services import merchants
from .. import get_session
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section

NAME_MAX = 100


def _page(*, created: tuple[str, str] | None = None, error: str | None = None,
          status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    section("settings")
    keys = merchants.list_api_keys(get_session(), user.merchant_id)
    return render("console/keys.html", title="keys_title", keys=keys, scopes=list(Scope),
                  scope_permissions={s: sorted(SCOPES[s]) for s in Scope}, created=created,
                  error=error, status=status)


@bp.get("/settings/keys", endpoint="keys")
@console_page(Permission.KEYS)
def keys_page() -> Response:
    """The merchant's keys, newest last."""
    return _page()


@bp.post("/settings/keys")
@console_page(Permission.KEYS)
def create_key() -> ResponseReturnValue:
    """Create a key of the chosen scope; the page shows the secret this once."""
    user = current_user()
    name = " ".join(request.form.get("name", "").split())[:NAME_MAX]
    try:
        scope = Scope(request.form.get("scope", ""))
    except ValueError:
        return _page(error="key_scope_invalid", status=HTTPStatus.UNPROCESSABLE_ENTITY)
    if not name:
        return _page(error="key_name_required", status=HTTPStatus.UNPROCESSABLE_ENTITY)
    session = get_session()
    key, raw = merchants.create_api_key(session, user.merchant_id, name, scope=scope,
                                        creator=user.permissions)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor, action="key.create",
                 target=f"key:{key.id}", changes={"name": name, "scope": scope.value})
    session.commit()
    return _page(created=(name, raw), status=HTTPStatus.CREATED)


@bp.post("/settings/keys/<int:key_id>/revoke")
@console_page(Permission.KEYS)
def revoke_key(key_id: int) -> Response:
    """Revoke a key: requests with it get 401 from now on."""
    user = current_user()
    session = get_session()
    key = merchants.revoke_api_key(session, user.merchant_id, key_id, revoker=user.permissions)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor, action="key.revoke",
                 target=f"key:{key_id}", changes={"name": key.name})
    session.commit()
    return redirect(url_for("console.keys"), HTTPStatus.SEE_OTHER)
