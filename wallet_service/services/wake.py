"""Waking the workers when a transaction commits: one place for the outbox's card changes
and the webhook events (``services.webhooks``), which both leave work for the worker.

The transaction marks its session (:data:`CHANGED`); a hook run after the commit
(``wallet_service.wakeup``) wakes the workers: on PostgreSQL with ``NOTIFY`` on
:data:`CHANNEL` sent on a connection of its own, elsewhere by ringing the worker's doorbell.
The notification is not sent inside the writing transaction: PostgreSQL serializes the
commits of every transaction that notified, its WAL flush included, which capped concurrent
writes at a few hundred per second.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

#: The PostgreSQL channel the workers listen on.
CHANNEL = "wallet_changes"
#: ``Session.info`` key set by a transaction that published a change (for commit hooks).
CHANGED = "wallet_service.outbox.changed"


def wake_workers(session: Session) -> None:
    """Wake the workers once this transaction commits (never after a rollback)."""
    session.info[CHANGED] = True
