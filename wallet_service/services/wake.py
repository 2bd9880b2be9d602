"""Waking the workers when a transaction commits: one place for the outbox's card changes
and the webhook events (``services.webhooks``), which both leave work for the worker.

On PostgreSQL the transaction runs ``pg_notify`` on :data:`CHANNEL`, which PostgreSQL
delivers at commit (never before it, never after a rollback); elsewhere it marks the session
(:data:`CHANGED`) for a commit hook (``wallet_service.wakeup``).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: The PostgreSQL channel a publishing transaction notifies at commit.
CHANNEL = "wallet_changes"
#: ``Session.info`` key set by a transaction that published a change (for commit hooks).
CHANGED = "wallet_service.outbox.changed"

_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")


def wake_workers(session: Session) -> None:
    """Wake the workers when this transaction commits. PostgreSQL folds repeated
    notifications of one transaction into one."""
    session.info[CHANGED] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)
