"""Webhooks (owners): the merchant's endpoints with their state, a new endpoint (its secret
shown once), enable, disable, delete; each endpoint's delivery log with redelivery. The same
service calls as the API's (``web/api/webhooks.py``, docs/webhooks.md); every change is
audited."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ... import schemas as s
from ...errors import ResourceConflict
from ...errors import ValidationFailed
from ...permissions import Permission
from ...services import audit
from ...services import webhooks
from ...validation import validate
from .. import get_session
from .. import wallet
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section
from .frame import settings_link

settings_link("webhooks", "console.webhooks", "nav_webhooks", Permission.WEBHOOKS)

#: Deliveries shown per page of an endpoint's log.
LOG_PAGE = 50
#: The fields of the new-endpoint form that can be refused.
_FORM_FIELDS = ("url", "events", "description")


def _allow_private() -> bool:
    return wallet().settings.webhooks_allow_private


def _page(*, created: tuple[Any, str] | None = None, errors: dict[str, str] | None = None,
          values: dict[str, Any] | None = None, status: int = HTTPStatus.OK) -> Response:
    user = current_user()
    section("settings")
    return render("console/webhooks.html", title="webhooks_title",
                  endpoints=webhooks.list_endpoints(get_session(), user.merchant_id),
                  catalogue=webhooks.EVENT_TYPES, created=created, errors=errors or {},
                  values=values or {"events": []}, status=status)


@bp.get("/settings/webhooks", endpoint="webhooks")
@console_page(Permission.WEBHOOKS)
def webhooks_page() -> Response:
    """The merchant's endpoints, oldest first, and the form for a new one."""
    return _page()


@bp.post("/settings/webhooks")
@console_page(Permission.WEBHOOKS)
def create_webhook() -> ResponseReturnValue:
    """Add an endpoint; the page shows its signing secret this once. Bad input is shown next
    to the field the check names."""
    user = current_user()
    values = {"url": request.form.get("url", "").strip(),
              "description": " ".join(request.form.get("description", "").split()),
              "events": request.form.getlist("events")}
    session = get_session()
    try:
        body = validate(s.WebhookCreate, {
            "url": values["url"], "events": values["events"],
            "description": values["description"] or None})
        endpoint, secret = webhooks.create_endpoint(
            session, user.merchant_id,
            webhooks.NewEndpoint(url=body.url, events=body.events,
                                 description=body.description),
            allow_private=_allow_private())
    except ValidationFailed as exc:
        session.rollback()
        field = (exc.field or "url").split(".")[0]
        return _page(errors={field if field in _FORM_FIELDS else "url": str(exc)},
                     values=values, status=HTTPStatus.UNPROCESSABLE_ENTITY)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="webhook.create", target=f"webhook:{endpoint.id}",
                 changes={"url": endpoint.url, "events": list(endpoint.events)})
    session.commit()
    return _page(created=(endpoint, secret), status=HTTPStatus.CREATED)


def _set_enabled(endpoint_id: int, enabled: bool) -> Response:
    user = current_user()
    session = get_session()
    was = webhooks.get_endpoint(session, user.merchant_id, endpoint_id).enabled
    webhooks.update_endpoint(session, user.merchant_id, endpoint_id, {"enabled": enabled},
                             allow_private=_allow_private())
    if was != enabled:
        audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                     action="webhook.update", target=f"webhook:{endpoint_id}",
                     changes={"enabled": [was, enabled]})
    session.commit()
    back = (url_for("console.webhook_log", endpoint_id=endpoint_id)
            if request.form.get("back") == "log" else url_for("console.webhooks"))
    return redirect(back, HTTPStatus.SEE_OTHER)


@bp.post("/settings/webhooks/<int:endpoint_id>/enable")
@console_page(Permission.WEBHOOKS)
def enable_webhook(endpoint_id: int) -> Response:
    """Turn the endpoint on again: the reason it was turned off goes."""
    return _set_enabled(endpoint_id, True)


@bp.post("/settings/webhooks/<int:endpoint_id>/disable")
@console_page(Permission.WEBHOOKS)
def disable_webhook(endpoint_id: int) -> Response:
    """Turn the endpoint off: it gets no new events."""
    return _set_enabled(endpoint_id, False)


@bp.post("/settings/webhooks/<int:endpoint_id>/delete")
@console_page(Permission.WEBHOOKS)
def delete_webhook(endpoint_id: int) -> Response:
    """Delete the endpoint with its delivery log; deliveries still waiting are not sent."""
    user = current_user()
    session = get_session()
    url = webhooks.get_endpoint(session, user.merchant_id, endpoint_id).url
    webhooks.delete_endpoint(session, user.merchant_id, endpoint_id)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="webhook.delete", target=f"webhook:{endpoint_id}",
                 changes={"url": url})
    session.commit()
    return redirect(url_for("console.webhooks"), HTTPStatus.SEE_OTHER)


def _log(endpoint_id: int, *, error: str | None = None, status: int = HTTPStatus.OK
         ) -> Response:
    user = current_user()
    section("settings")
    session = get_session()
    endpoint = webhooks.get_endpoint(session, user.merchant_id, endpoint_id)
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    found = webhooks.list_deliveries(session, user.merchant_id, endpoint_id, limit=LOG_PAGE,
                                     before_id=before_id)
    older = found[-1].id if len(found) == LOG_PAGE else None
    return render("console/webhooks_log.html", title="webhook_log_title", endpoint=endpoint,
                  deliveries=found, older=older, error=error, status=status)


@bp.get("/settings/webhooks/<int:endpoint_id>", endpoint="webhook_log")
@console_page(Permission.WEBHOOKS)
def webhook_log(endpoint_id: int) -> Response:
    """The endpoint's deliveries, newest first: state, tries, the last try's HTTP status,
    time and error."""
    return _log(endpoint_id)


@bp.post("/settings/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
@console_page(Permission.WEBHOOKS)
def redeliver_webhook(endpoint_id: int, delivery_id: int) -> Response:
    """Send the delivery's event again now, with the same ``webhook-id``; refused while the
    endpoint is disabled."""
    user = current_user()
    session = get_session()
    try:
        delivery = webhooks.redeliver(session, user.merchant_id, endpoint_id, delivery_id)
    except ResourceConflict:
        session.rollback()
        return _log(endpoint_id, error="webhook_redeliver_disabled",
                    status=HTTPStatus.CONFLICT)
    audit.record(session, merchant_id=user.merchant_id, actor=user.actor,
                 action="webhook.redeliver", target=f"webhook:{endpoint_id}",
                 changes={"delivery_id": delivery_id, "new_delivery_id": delivery.id,
                          "message_id": delivery.message_id})
    session.commit()
    return redirect(url_for("console.webhook_log", endpoint_id=endpoint_id),
                    HTTPStatus.SEE_OTHER)
