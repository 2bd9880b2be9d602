"""How a worker learns of a new card change at once instead of by polling.

* **PostgreSQL.** After a commit that published a change, the process sends ``NOTIFY`` on
  ``outbox.CHANNEL`` (:func:`notify_after_commit`, never after a rollback) to every worker
  listening on a connection of its own (:class:`PostgresListener`): any number of workers,
  on any hosts. The notification goes in a transaction of its own, not inside the writing
  one: PostgreSQL serializes the commits of all transactions that notified, their WAL
  flushes included, which held concurrent writes to a few hundred per second.
* **SQLite** (``wallet-service serve``). The worker process binds a :class:`Doorbell`, a UDP
  socket on 127.0.0.1, before the web processes start; each web process rings it after a
  commit that published a change (:func:`ring_after_commit`).

Either way the worker also looks when a waiting job falls due and every
``WALLET_WORKER_POLL_SECONDS``, so a lost wake-up (a datagram dropped, a listener
reconnecting) delays a push, never loses it.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import weakref
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from .services.outbox import CHANGED
from .services.outbox import CHANNEL

log = logging.getLogger(__name__)

Address = tuple[str, int]


class WakeSource(Protocol):
    """Something a worker can wait on for news of work."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken (news may have been missed too)."""
        ...

    def close(self) -> None:
        """Release the socket or connection."""
        ...


class Doorbell:
    """A UDP socket on 127.0.0.1 that a worker waits on; :func:`ring` wakes it. Datagrams
    carry nothing: several rings while the worker is busy wake it once."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.setblocking(False)

    @property
    def address(self) -> Address:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._socket], [], [], max(timeout, 0.0))
        if not ready:
            return False
        while True:  # one wake-up for all the rings that arrived meanwhile
            try:
                self._socket.recv(64)
            except BlockingIOError:
                return True

    def close(self) -> None:
        self._socket.close()


def ring(address: Address) -> None:
    """Wake the worker whose doorbell is at ``address``; never fails (the worker's poll
    covers a lost ring)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"!", address)
    except OSError as exc:
        log.debug("could not ring the worker at %s: %s", address, exc)


def ring_after_commit(sessions: sessionmaker[Session], address: Address) -> Callable[[], None]:
    """Ring the doorbell at ``address`` after every commit of a session from ``sessions``
    that published a card change; returns a function that stops doing so."""
    return after_commit_that_changed(sessions, lambda: ring(address))


#: The wake-ups to run after a commit that changed something, per ``sessionmaker``.
_WAKERS: weakref.WeakKeyDictionary[Any, list[Callable[[], None]]] = \
    weakref.WeakKeyDictionary()
_WAKERS_LOCK = threading.Lock()


def after_commit_that_changed(sessions: sessionmaker[Session], wake: Callable[[], None]
                              ) -> Callable[[], None]:
    """Call ``wake`` after every commit of a session from ``sessions`` that published a
    change (:data:`CHANGED`), never after a rollback; returns a function that stops doing
    so. Every wake-up registered on ``sessions`` runs for each such commit."""
    with _WAKERS_LOCK:
        wakers = _WAKERS.get(sessions)
        if wakers is None:
            wakers = _WAKERS[sessions] = []

            def committed(session: Session) -> None:
                if session.info.pop(CHANGED, False):
                    for waker in list(wakers):
                        waker()

            def rolled_back(session: Session, _previous: Any) -> None:
                session.info.pop(CHANGED, None)

            event.listen(sessions, "after_commit", committed)
            event.listen(sessions, "after_soft_rollback", rolled_back)
        wakers.append(wake)

    def stop() -> None:
        with _WAKERS_LOCK:
            if wake in wakers:
                wakers.remove(wake)

    return stop


class Notifier:
    """Sends ``NOTIFY`` on ``outbox.CHANNEL`` in a transaction of its own, on a connection
    of its own to ``engine``'s database (autocommit: a notification alone writes nothing to
    flush, so it costs what a ``SELECT 1`` does), made on first use, again in a forked
    process and after it breaks. Threads that ask while a notification is being sent share
    the next one: each call returns once a notification sent after it began has gone out,
    so a worker woken by it sees the caller's commit."""

    def __init__(self, engine: Engine, *, connect_timeout: float = 10.0) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._conn: Any = None
        self._pid = 0
        self._asked = 0  # calls so far
        self._covered = 0  # calls a sent notification came after
        self._counting = threading.Lock()
        self._sending = threading.Lock()

    def notify(self) -> None:
        """Wake the listening workers; never fails (their poll covers a lost wake-up)."""
        with self._counting:
            self._asked += 1
            ticket = self._asked
        with self._sending:
            if self._covered >= ticket:
                return
            with self._counting:
                upto = self._asked
            try:
                self._connection().execute(f"NOTIFY {CHANNEL}")
            except Exception as exc:  # noqa: BLE001 - a wake-up must not fail a request
                log.warning("could not wake the workers: %s", exc)
                self._close()
                return
            self._covered = upto

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._pid != os.getpid():
            # A connection inherited from the parent process is the parent's: never used.
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         connect_timeout=max(1, int(self._connect_timeout)))
            self._pid = os.getpid()
            weakref.finalize(self, _close_in, self._conn, self._pid)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            _close_in(self._conn, self._pid)
        self._conn = None

    def close(self) -> None:
        with self._sending:
            self._close()


def _close_in(conn: Any, pid: int) -> None:
    """Close ``conn`` if this is the process that opened it (closing a connection inherited
    through ``fork`` would end the parent's session)."""
    if pid == os.getpid():
        with suppress(Exception):
            conn.close()


def notify_after_commit(sessions: sessionmaker[Session], notifier: Notifier
                        ) -> Callable[[], None]:
    """Have ``notifier`` wake the workers after every commit of a session from
    ``sessions`` that published a change; returns a function that stops doing so."""
    return after_commit_that_changed(sessions, notifier.notify)


class PostgresListener:
    """``LISTEN`` on ``outbox.CHANNEL`` over a connection of its own (autocommit, outside
    the pool), made on first use and again after it breaks. Notifications sent while it was
    not connected are lost, so (re)connecting counts as a wake-up."""

    def __init__(self, database_url: str, *, connect_timeout: float = 10.0) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._conn: Any = None

    def wait(self, timeout: float) -> bool:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         connect_timeout=max(1, int(self._connect_timeout)))
            self._conn.execute(f"LISTEN {CHANNEL}")
            return True
        try:
            # Return on the first notification: more that arrive meanwhile wake a worker
            # that is busy anyway once more, which costs a look at empty tables.
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
