"""Outbound webhooks: a merchant's endpoints, and the events recorded for them.

**Recording.** Where a change is made, the service calls :func:`record` in the same
transaction. When the merchant has an enabled endpoint subscribed to the event's type, it
writes the event (its payload and its ``webhook-id``), a delivery per subscribed endpoint
and a delivery job per delivery (``delivery_jobs``, channel :data:`CHANNEL`): the same
transactional outbox as the pushes (``services.outbox``), so an event is sent only for a
change that committed, and a change that committed is not lost by a crash before the
send. The commit wakes the workers (``services.wake``). A merchant without endpoints pays
one indexed query per change.

**Delivering** is ``services.webhook_delivery`` (the worker's side).

Payloads follow the Standard Webhooks envelope (standard-webhooks spec, "Payload
structure"): ``{"type": …, "timestamp": …, "data": {…}}``; docs/webhooks.md shows each.
They carry the member's contact details where a merchant's CRM needs them; an erasure
replaces the member's stored payloads (:func:`forget_member`).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceConflict
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..merge_patch import merge_patch
from ..models import DeliveryJob
from ..models import LoyaltyCard
from ..models import Member
from ..models import WebhookDelivery
from ..models import WebhookEndpoint
from ..models import WebhookEvent
from ..rules import from_minor
from ..safe_http import is_public
from ..safe_http import literal_address
from ..schemas import WEBHOOK_EVENTS
from ..schemas import WebhookCreate
from ..validation import raise_for
from . import bulk
from .wake import wake_workers

#: The ``delivery_jobs.channel`` of webhook deliveries.
CHANNEL = "webhook"

ENDPOINTS = WebhookEndpoint.__table__
EVENTS = WebhookEvent.__table__
DELIVERIES = WebhookDelivery.__table__
JOBS = DeliveryJob.__table__

# Delivery states (``webhook_deliveries.status``).
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
MEMBER_CLOSED = "member.closed"
TRANSACTION_CREATED = "transaction.created"
TIER_CHANGED = "tier.changed"
REWARD_REDEEMED = "reward.redeemed"
COUPON_REDEEMED = "coupon.redeemed"
CARD_INSTALLED = "card.installed"
CARD_REMOVED = "card.removed"
CAMPAIGN_SENT = "campaign.sent"
EVENT_TYPES = WEBHOOK_EVENTS

_SECRET_PREFIX = "whsec_"
_FIELDS = ("url", "events", "description", "enabled")


@dataclass(frozen=True)
class NewEndpoint:
    url: str
    events: Sequence[str]
    description: str | None = None
    enabled: bool = True


def new_secret() -> str:
    """A signing secret as Standard Webhooks gives it: ``whsec_`` and 32 random bytes in
    base64 (standard-webhooks spec, "Signature scheme")."""
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """A ``webhook-id``: unique per event, the same on every try of it."""
    return "msg_" + secrets.token_urlsafe(18)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse at once an endpoint whose host is a literal private address or ``localhost``
    (the sender checks every address it connects to in any case: ``safe_http``).

    :raises ValidationFailed: naming ``url``.
    """
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    address = literal_address(host)
    if host == "localhost" or host.endswith(".localhost") or (
            address is not None and not is_public(address)):
        raise ValidationFailed(
            "url: private, loopback and link-local addresses are not allowed "
            "(the operator can allow them: WALLET_WEBHOOKS_ALLOW_PRIVATE)", field="url")


# --- endpoints ---------------------------------------------------------------------------


def create_endpoint(session: Session, merchant_id: int, data: NewEndpoint, *,
                    allow_private: bool) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (the caller shows it once).

    :raises ValidationFailed: the URL is a private address.
    """
    check_url(data.url, allow_private=allow_private)
    now = utcnow()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id, url=data.url, description=data.description,
        events=_ordered(data.events), secret=secret, enabled=data.enabled,
        created_at=now, updated_at=now)
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, merchant_id: int) -> list[WebhookEndpoint]:
    """The merchant's endpoints, oldest first."""
    return list(session.scalars(select(WebhookEndpoint)
                                .where(WebhookEndpoint.merchant_id == merchant_id)
                                .order_by(WebhookEndpoint.id)))


def get_endpoint(session: Session, merchant_id: int, endpoint_id: int) -> WebhookEndpoint:
    """:raises ResourceNotFound: missing, or another merchant's."""
    endpoint = session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.merchant_id == merchant_id))
    if endpoint is None:
        raise ResourceNotFound(f"webhook {endpoint_id} not found", field="webhook_id")
    return endpoint


def update_endpoint(session: Session, merchant_id: int, endpoint_id: int,
                    patch: dict[str, Any], *, allow_private: bool) -> WebhookEndpoint:
    """Apply ``patch`` (JSON Merge Patch) and check the result as a new endpoint is checked.
    Enabling an endpoint clears why it was disabled and its run of failures.

    :raises ResourceNotFound: missing, or another merchant's.
    :raises ValidationFailed: naming the field.
    """
    endpoint = get_endpoint(session, merchant_id, endpoint_id)
    current = {key: getattr(endpoint, key) for key in _FIELDS}
    merged = merge_patch(current, patch)
    try:
        data = WebhookCreate.model_validate(
            {k: v for k, v in merged.items() if v is not None})
    except ValidationError as exc:
        raise_for(exc)
    if data.url != endpoint.url:
        check_url(data.url, allow_private=allow_private)
    now = utcnow()
    if data.enabled and not endpoint.enabled:
        endpoint.disabled_reason, endpoint.disabled_at, endpoint.failing_since = None, None, None
    elif not data.enabled and endpoint.enabled:
        endpoint.disabled_at = now
    endpoint.url, endpoint.description = data.url, data.description
    endpoint.events, endpoint.enabled = _ordered(data.events), data.enabled
    endpoint.updated_at = now
    session.flush()
    return endpoint


def delete_endpoint(session: Session, merchant_id: int, endpoint_id: int) -> None:
    """Delete the endpoint, its delivery log and its waiting deliveries.

    :raises ResourceNotFound: missing, or another merchant's.
    """
    endpoint = get_endpoint(session, merchant_id, endpoint_id)
    ids = select(DELIVERIES.c.id).where(DELIVERIES.c.endpoint_id == endpoint.id)
    session.execute(delete(JOBS).where(JOBS.c.channel == CHANNEL, JOBS.c.target_id.in_(ids)))
    session.execute(delete(DELIVERIES).where(DELIVERIES.c.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def _ordered(events: Sequence[str]) -> list[str]:
    """The subscribed types once each, in the catalogue's order."""
    return [e for e in EVENT_TYPES if e in set(events)]


# --- the delivery log --------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A delivery as its log shows it."""

    id: int
    endpoint_id: int
    message_id: str
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    latency_ms: int | None
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


_DELIVERY = select(
    DELIVERIES.c.id, DELIVERIES.c.endpoint_id, EVENTS.c.message_id,
    EVENTS.c.type.label("event_type"), DELIVERIES.c.status, DELIVERIES.c.attempts,
    DELIVERIES.c.response_status, DELIVERIES.c.latency_ms, DELIVERIES.c.last_error,
    DELIVERIES.c.created_at, DELIVERIES.c.last_attempt_at, DELIVERIES.c.delivered_at,
).join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)


def list_deliveries(session: Session, merchant_id: int, endpoint_id: int, *,
                    status: str | None = None, limit: int = 50,
                    before_id: int | None = None) -> list[Delivery]:
    """The endpoint's deliveries, newest first.

    :raises ResourceNotFound: the endpoint is missing or another merchant's.
    """
    endpoint = get_endpoint(session, merchant_id, endpoint_id)
    query = (_DELIVERY.where(DELIVERIES.c.endpoint_id == endpoint.id)
             .order_by(DELIVERIES.c.id.desc()).limit(limit))
    if status is not None:
        query = query.where(DELIVERIES.c.status == status)
    if before_id is not None:
        query = query.where(DELIVERIES.c.id < before_id)
    return [Delivery(**r._mapping) for r in session.execute(query)]


def redeliver(session: Session, merchant_id: int, endpoint_id: int, delivery_id: int,
              ) -> Delivery:
    """Send a delivery's event to its endpoint again, now, as a new delivery with the same
    ``webhook-id`` (a receiver that saw it already can tell).

    :raises ResourceNotFound: the endpoint or the delivery is missing or another merchant's.
    :raises ResourceConflict: the endpoint is disabled.
    """
    endpoint = get_endpoint(session, merchant_id, endpoint_id)
    event_id = session.scalar(select(DELIVERIES.c.event_id).where(
        DELIVERIES.c.id == delivery_id, DELIVERIES.c.endpoint_id == endpoint.id))
    if event_id is None:
        raise ResourceNotFound(f"delivery {delivery_id} not found", field="delivery_id")
    if not endpoint.enabled:
        raise ResourceConflict("webhook_id: the endpoint is disabled; enable it first",
                               field="webhook_id")
    new_id = _queue(session, endpoint.id, event_id, utcnow())
    wake_workers(session)
    return Delivery(**session.execute(_DELIVERY.where(DELIVERIES.c.id == new_id)).one()._mapping)


# --- recording events --------------------------------------------------------------------


def has_endpoints(session: Session, merchant_id: int) -> bool:
    """Whether the merchant has an enabled endpoint (one statement): without one,
    :func:`record` writes nothing."""
    return session.scalar(
        select(ENDPOINTS.c.id)
        .where(ENDPOINTS.c.merchant_id == merchant_id, ENDPOINTS.c.enabled.is_(True))
        .limit(1)) is not None


def record(session: Session, merchant_id: int, event_type: str, data: dict[str, Any], *,
           member_id: int | None = None, at: dt.datetime | None = None) -> int:
    """Record an event of ``event_type`` for the merchant's subscribed endpoints, in the
    caller's transaction; returns how many deliveries it queued (module docstring)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not a webhook event type")
    endpoints = session.execute(
        select(ENDPOINTS.c.id, ENDPOINTS.c.events)
        .where(ENDPOINTS.c.merchant_id == merchant_id, ENDPOINTS.c.enabled.is_(True))
        .order_by(ENDPOINTS.c.id)
    ).all()
    targets = [e.id for e in endpoints if event_type in (e.events or ())]
    if not targets:
        return 0
    now = at or utcnow()
    payload = {"type": event_type, "timestamp": iso(now), "data": data}
    event_id = session.execute(insert(EVENTS).returning(EVENTS.c.id), {
        "merchant_id": merchant_id, "message_id": new_message_id(), "type": event_type,
        "member_id": member_id, "payload": payload, "created_at": now}).scalar_one()
    for endpoint_id in targets:
        _queue(session, endpoint_id, event_id, now)
    wake_workers(session)
    return len(targets)


def record_many(session: Session, merchant_id: int,
                events: Sequence[tuple[str, dict[str, Any], int | None, dt.datetime]]) -> int:
    """:func:`record` of many ``(event_type, data, member_id, at)``, in their order, with the
    same rows: the endpoints read once, and the events, deliveries and jobs each written in
    one statement (``services.bulk``). Returns how many deliveries it queued."""
    endpoints = session.execute(
        select(ENDPOINTS.c.id, ENDPOINTS.c.events)
        .where(ENDPOINTS.c.merchant_id == merchant_id, ENDPOINTS.c.enabled.is_(True))
        .order_by(ENDPOINTS.c.id)
    ).all()
    recorded = []
    for event_type, data, member_id, at in events:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"{event_type!r} is not a webhook event type")
        targets = [e.id for e in endpoints if event_type in (e.events or ())]
        if targets:
            recorded.append((event_type, data, member_id, at, targets))
    if not recorded:
        return 0
    event_ids = bulk.new_ids(session, EVENTS, len(recorded))
    bulk.insert(session, EVENTS, [
        {"id": event_id, "merchant_id": merchant_id, "message_id": new_message_id(),
         "type": event_type, "member_id": member_id,
         "payload": {"type": event_type, "timestamp": iso(at), "data": data}, "created_at": at}
        for event_id, (event_type, data, member_id, at, _) in zip(event_ids, recorded,
                                                                  strict=True)])
    queued = [(endpoint_id, event_id, at)
              for event_id, (_, _, _, at, targets) in zip(event_ids, recorded, strict=True)
              for endpoint_id in targets]
    delivery_ids = bulk.new_ids(session, DELIVERIES, len(queued))
    bulk.insert(session, DELIVERIES, [
        {"id": delivery_id, "endpoint_id": endpoint_id, "event_id": event_id,
         "status": PENDING, "attempts": 0, "created_at": at}
        for delivery_id, (endpoint_id, event_id, at) in zip(delivery_ids, queued, strict=True)])
    bulk.insert(session, JOBS, [
        {"channel": CHANNEL, "target_id": delivery_id, "status": "pending",
         "available_at": at, "attempts": 0, "created_at": at}
        for delivery_id, (_, _, at) in zip(delivery_ids, queued, strict=True)])
    wake_workers(session)
    return len(queued)


def _queue(session: Session, endpoint_id: int, event_id: int, now: dt.datetime) -> int:
    """A pending delivery of the event to the endpoint, and its job, due now."""
    delivery_id = int(session.execute(insert(DELIVERIES).returning(DELIVERIES.c.id), {
        "endpoint_id": endpoint_id, "event_id": event_id, "status": PENDING, "attempts": 0,
        "created_at": now}).scalar_one())
    session.execute(insert(JOBS), {
        "channel": CHANNEL, "target_id": delivery_id, "status": "pending",
        "available_at": now, "attempts": 0, "created_at": now})
    return delivery_id


def forget_member(session: Session, member_id: int) -> int:
    """Erasure: the member's stored events keep their type and ids only (a delivery still
    waiting sends that); returns how many were changed."""
    rows = session.execute(select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.payload)
                           .where(EVENTS.c.member_id == member_id)).all()
    for row in rows:
        kept = {"member_id": member_id, "erased": True}
        session.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(
            payload={"type": row.type, "timestamp": (row.payload or {}).get("timestamp"),
                     "data": kept}))
    return len(rows)


# --- payloads ----------------------------------------------------------------------------


def iso(moment: dt.datetime | dt.date | None) -> str | None:
    """A time as RFC 3339 text in UTC (``Z``), a date as ``YYYY-MM-DD``."""
    if moment is None:
        return None
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return moment.isoformat()


def member_data(member: Member, card: LoyaltyCard) -> dict[str, Any]:
    """A member and their card as the ``member.*`` events show them."""
    return {
        "id": member.id, "program_id": member.program_id, "name": member.name,
        "phone": member.phone, "email": member.email, "birthday": iso(member.birthday),
        "external_id": member.external_id, "card_number": card.serial_number,
        "status": card.status, "balance": card.balance, "tier": card.tier,
        "created_at": iso(member.created_at),
    }


def transaction_data(entry: Any, currency: str) -> dict[str, Any]:
    """A ledger entry (``ledger.Entry``) as ``transaction.created`` shows it: the fields of
    the API's transaction, ``amount`` as decimal text in ``currency``."""
    return {
        "id": entry.id, "member_id": entry.member_id, "type": entry.type,
        "points": entry.points, "stamps": entry.stamps,
        "amount": None if entry.amount_minor is None else str(
            from_minor(currency, entry.amount_minor)),
        "currency": currency, "reason": entry.reason, "balance_after": entry.balance_after,
        "tier_after": entry.tier_after, "reference_id": entry.reference_id,
        "details": entry.details, "created_at": iso(entry.created_at),
    }
