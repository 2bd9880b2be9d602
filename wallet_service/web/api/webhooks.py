"""Webhook endpoints: create (the secret shown once), list, read, change (JSON Merge
Patch), delete; their delivery log and manual redelivery (``services.webhooks``). Every
change and redelivery is written to the audit log with the API key that made it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from typing import Literal

from flask import g
from flask import request
from pydantic import Field

from ... import schemas as s
from ...models import ApiKey
from ...models import WebhookEndpoint
from ...permissions import Permission
from ...services import audit
from ...services import webhooks
from .. import get_session
from .. import wallet
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import webhook_delivery_out
from .serializers import webhook_out

_TAGS = ("webhooks",)


def _allow_private() -> bool:
    return wallet().settings.webhooks_allow_private


def _actor() -> audit.Actor:
    """The API key of this request, as the audit log names it."""
    key = get_session().get(ApiKey, g.api_key_id)
    label = f"API key {key.name}" if key is not None else "API key"
    return audit.Actor("key", g.api_key_id, label, request.remote_addr)


def _state(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What a change to the endpoint can change, as the audit log records it."""
    return {"url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description, "enabled": endpoint.enabled}


@bp.operation("/webhooks", "POST", summary="Add a webhook endpoint", body=s.WebhookCreate,
              response=s.WebhookCreated, status=HTTPStatus.CREATED, tags=_TAGS,
              permission=Permission.WEBHOOKS)
def create_webhook(body: s.WebhookCreate) -> s.WebhookCreated:
    """Events of the types in `events` are POSTed to `url` as JSON, signed per the Standard
    Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with
    the `secret` in this answer: it is shown once. Failed deliveries are retried with
    back-off for about a day; an endpoint that keeps failing is disabled, with the reason
    in `disabled_reason`. The events and their payloads: docs/webhooks.md."""
    session = get_session()
    endpoint, secret = webhooks.create_endpoint(
        session, current_merchant(),
        webhooks.NewEndpoint(url=body.url, events=body.events, description=body.description,
                             enabled=body.enabled),
        allow_private=_allow_private())
    audit.record(session, merchant_id=current_merchant(), actor=_actor(),
                 action="webhook.create", target=f"webhook:{endpoint.id}",
                 changes={"url": endpoint.url, "events": list(endpoint.events)})
    session.commit()
    return s.WebhookCreated(secret=secret, **webhook_out(endpoint).model_dump())


@bp.operation("/webhooks", "GET", summary="List webhook endpoints", response=s.WebhookList,
              tags=_TAGS, permission=Permission.WEBHOOKS)
def list_webhooks() -> s.WebhookList:
    """Oldest first; secrets are never shown again."""
    return s.WebhookList(items=[webhook_out(e) for e in
                                webhooks.list_endpoints(get_session(), current_merchant())])


@bp.operation("/webhooks/<int:webhook_id>", "GET", summary="Get a webhook endpoint",
              response=s.WebhookOut, errors=(404,), tags=_TAGS,
              permission=Permission.WEBHOOKS)
def get_webhook(webhook_id: int) -> s.WebhookOut:
    return webhook_out(webhooks.get_endpoint(get_session(), current_merchant(), webhook_id))


@bp.operation("/webhooks/<int:webhook_id>", "PATCH", summary="Change a webhook endpoint",
              body=s.WebhookUpdate, merge_patch=True, response=s.WebhookOut, errors=(404,),
              tags=_TAGS, permission=Permission.WEBHOOKS)
def update_webhook(webhook_id: int, body: dict[str, Any]) -> s.WebhookOut:
    """The merged endpoint is checked as a new one is. `enabled: true` turns a disabled
    endpoint back on; deliveries that failed meanwhile can be sent again one by one
    (`…/redeliver`)."""
    session = get_session()
    before = _state(webhooks.get_endpoint(session, current_merchant(), webhook_id))
    endpoint = webhooks.update_endpoint(session, current_merchant(), webhook_id, body,
                                        allow_private=_allow_private())
    after = _state(endpoint)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changes:
        audit.record(session, merchant_id=current_merchant(), actor=_actor(),
                     action="webhook.update", target=f"webhook:{webhook_id}",
                     changes=changes)
    session.commit()
    return webhook_out(endpoint)


@bp.operation("/webhooks/<int:webhook_id>", "DELETE", summary="Delete a webhook endpoint",
              status=HTTPStatus.NO_CONTENT, errors=(404,), tags=_TAGS,
              permission=Permission.WEBHOOKS)
def delete_webhook(webhook_id: int) -> None:
    """With its delivery log; deliveries still waiting are not sent."""
    session = get_session()
    url = webhooks.get_endpoint(session, current_merchant(), webhook_id).url
    webhooks.delete_endpoint(session, current_merchant(), webhook_id)
    audit.record(session, merchant_id=current_merchant(), actor=_actor(),
                 action="webhook.delete", target=f"webhook:{webhook_id}",
                 changes={"url": url})
    session.commit()


class DeliveryQuery(s.Strict):
    status: Literal["pending", "delivered", "failed"] | None = Field(
        None, description="Only deliveries in this state")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


@bp.operation("/webhooks/<int:webhook_id>/deliveries", "GET",
              summary="A webhook endpoint's delivery log", query=DeliveryQuery,
              response=s.WebhookDeliveryList, errors=(404,), tags=_TAGS,
              permission=Permission.WEBHOOKS)
def list_webhook_deliveries(webhook_id: int, query: DeliveryQuery) -> s.WebhookDeliveryList:
    """Newest first: each event sent to the endpoint, its state, how many tries it took,
    and the last try's HTTP status, time and error."""
    found = webhooks.list_deliveries(
        get_session(), current_merchant(), webhook_id, status=query.status,
        limit=query.limit, before_id=int(query.cursor) if query.cursor else None)
    next_cursor = str(found[-1].id) if len(found) == query.limit else None
    return s.WebhookDeliveryList(items=[webhook_delivery_out(d) for d in found],
                                 next_cursor=next_cursor)


@bp.operation("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver", "POST",
              summary="Send a delivery's event again", response=s.WebhookDeliveryOut,
              status=HTTPStatus.ACCEPTED, errors=(404, 409), tags=_TAGS,
              permission=Permission.WEBHOOKS)
def redeliver_webhook(webhook_id: int, delivery_id: int) -> s.WebhookDeliveryOut:
    """A new delivery of the same event (the same `webhook-id`, so a receiver can tell it
    saw it), sent now. 409 while the endpoint is disabled."""
    session = get_session()
    delivery = webhooks.redeliver(session, current_merchant(), webhook_id, delivery_id)
    audit.record(session, merchant_id=current_merchant(), actor=_actor(),
                 action="webhook.redeliver", target=f"webhook:{webhook_id}",
                 changes={"delivery_id": delivery_id, "new_delivery_id": delivery.id,
                          "message_id": delivery.message_id})
    session.commit()
    return webhook_delivery_out(delivery)
