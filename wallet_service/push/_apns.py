"""The APNs client for pass updates: HTTP/2 connections with many concurrent streams (§4.5).

``ApnsPushClient.send`` is synchronous and thread-safe; the work happens on a private asyncio
event loop in a daemon thread, started on first use. The loop owns up to ``connections``
*active* connections (plus, briefly, ones draining after a GOAWAY); it opens the first when
there is something to send and another only while every active one is full and at least
half a connection's worth of pushes still waits, so a small batch uses one connection and a
large fan-out several. Pushes wait in one queue and are written as streams while a
connection has room under the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` (and
``max_streams``); responses free room and the queue is pumped again. Batches sent from
several threads share the queue, so a caller can hand over the next batch while the
previous one is still on the wire. Writes are coalesced: the frames produced in one loop
iteration go out in one ``write``, and a read full of responses refills the connection every
``_REFILL_EVERY`` events so that client and server work in parallel rather than in turns
(§4.5, throughput).

Connection handling (§4.5, "Real APNs also sends GOAWAY"):

* GOAWAY: streams above its last-stream-id were not processed by APNs and are queued again
  (at the front) for a fresh connection; streams at or below it finish on the old
  connection, which is closed once they have. Resent pushes are reported by the answer they
  finally get. A push refused with ``REFUSED_STREAM`` is resent the same way.
* Lost connection: pushes still in flight get ``RETRY`` with ``status=None`` (APNs may or may
  not have processed them); queued pushes go out on a new connection.
* Failed connect: the queued pushes get ``RETRY`` with ``status=None``, or ``FAILED`` when TLS
  rejected a certificate (a configuration problem); the next ``send`` connects again. When
  another connection is up, the pushes wait for it instead, and no further connection is
  tried for ``connect_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import os
import ssl
import string
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from ..errors import ConfigurationError
from ._auth import Auth
from ._auth import CertificateAuth
from ._auth import TokenAuth
from ._auth import tls_context
from ._model import Outcome
from ._model import PushResult
from ._model import classify
from ._model import short_token

__all__ = ["APNS_URL", "ApnsPushClient"]

logger = logging.getLogger("wallet_service.push")

#: Production APNs; pass pushes work only there (§4.1).
APNS_URL = "https://api.push.apple.com"
#: The payload of every pass push: an empty JSON dictionary (§4.3).
PAYLOAD = b"{}"
#: How often one push is resent after GOAWAY/REFUSED_STREAM before it is reported as RETRY.
MAX_RESENDS = 3
#: Stream ids are 31-bit; leave a connection well before running out of them.
_LAST_USABLE_STREAM_ID = 2**31 - 1 - 2 * 1000
_HEX = frozenset(string.hexdigits)
#: Events (about two per response) handled between refills of the connection in one read.
_REFILL_EVERY = 128
_CERTIFICATE_ALERTS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")


class ApnsPushClient:
    """Pushes ``{}`` to pass devices through APNs over HTTP/2 (§4).

    Keyword-only arguments:

    ``topic``
        The pass type identifier, sent as ``apns-topic`` (§4.3).
    ``auth``
        ``CertificateAuth`` (the pass certificate and key as TLS client identity; Apple's
        documented method) or ``TokenAuth`` (.p8 key, same team) (§4.2).
    ``base_url``
        ``https://host[:port]``; defaults to production APNs. There is no sandbox switch:
        pass pushes work only in production (§4.1).
    ``ca_file``
        CA bundle used to verify the APNs server instead of the system trust store.
    ``expiration``
        Seconds APNs keeps the push for an offline device; sent as ``apns-expiration`` =
        now + this. Must be positive: 0 would drop pushes to offline phones (§4.3, §5 #29).
    ``connect_timeout``
        Seconds for TCP + TLS + the server's HTTP/2 SETTINGS.
    ``timeout``
        Seconds for a whole ``send`` call (connecting included); what is unanswered then is
        reported as ``RETRY`` with ``status=None``.
    ``max_streams``
        Upper bound on concurrent streams per connection, below the server's own limit.
    ``connections``
        Most connections open at once (§4.5: "multiple connections" for throughput).
    ``clock``
        Seconds since the epoch; injectable for tests of ``apns-expiration``.

    No ``apns-push-type`` and no ``apns-priority`` header is sent (§4.3 recommendation).

    :raises ConfigurationError: a setting is invalid or a credential cannot be loaded.
    """

    def __init__(
        self,
        *,
        topic: str,
        auth: Auth,
        base_url: str = APNS_URL,
        ca_file: str | os.PathLike[str] | None = None,
        expiration: float = 7 * 24 * 3600,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        max_streams: int = 1000,
        connections: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not topic or not topic.isascii() or not topic.isprintable():
            raise ConfigurationError(
                f"the APNs topic must be the pass type identifier, got {topic!r} (§4.3)"
            )
        if not isinstance(auth, CertificateAuth | TokenAuth):
            raise ConfigurationError("auth must be a CertificateAuth or a TokenAuth (§4.2)")
        if expiration <= 0:
            raise ConfigurationError(
                "expiration must be positive: apns-expiration 0 drops pushes to offline "
                "devices (§4.3)"
            )
        if connect_timeout <= 0 or timeout <= 0:
            raise ConfigurationError("APNs timeouts must be positive")
        if max_streams < 1:
            raise ConfigurationError("max_streams must be at least 1")
        if connections < 1:
            raise ConfigurationError("connections must be at least 1")
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigurationError(
                f"the APNs URL must look like https://host[:port], got {base_url!r} (§4.1)"
            )
        self._host = parts.hostname
        self._port = parts.port or 443
        authority = parts.hostname
        if parts.port not in (None, 443):
            authority = f"{parts.hostname}:{parts.port}"
        self._topic = topic
        self._auth = auth
        self._expiration = expiration
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._max_streams = max_streams
        self._connections = connections
        self._clock = clock
        self._authority = authority.encode("ascii")
        self._ssl = tls_context(auth, ca_file)
        self._lock = threading.Lock()
        self._engine: _Engine | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def __enter__(self) -> ApnsPushClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, tokens: Sequence[str]) -> list[PushResult]:
        """Push ``{}`` to each token over the shared connection; one result per token, in order.

        Blocks for at most about ``timeout`` seconds. Never raises for APNs or network
        failures: those are results (``RETRY``/``FAILED``), see ``classify`` (§4.4).

        :raises RuntimeError: the client is closed, or called from its own event loop.
        """
        if not tokens:
            return []
        engine = self._start()
        if threading.current_thread() is self._thread:
            raise RuntimeError("ApnsPushClient.send must not be called from its own loop")
        future = asyncio.run_coroutine_threadsafe(engine.send_batch(list(tokens)), engine.loop)
        try:
            # The coroutine enforces ``timeout`` itself; the margin only guards a wedged loop.
            return future.result(self._timeout + self._connect_timeout + 5.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            logger.error("APNs send did not finish in time; the push loop seems stuck")
            return [
                _no_answer(token, "timeout: push loop unresponsive", Outcome.RETRY)
                for token in tokens
            ]

    def close(self) -> None:
        """Close the connection (GOAWAY, then TLS close) and stop the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            engine, thread = self._engine, self._thread
        if engine is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(engine.aclose(), engine.loop).result(
                self._connect_timeout + 5.0
            )
        except concurrent.futures.TimeoutError:
            logger.warning("APNs connection did not close in time")
        engine.loop.call_soon_threadsafe(engine.loop.stop)
        thread.join()

    def _start(self) -> _Engine:
        with self._lock:
            if self._closed:
                raise RuntimeError("the APNs push client is closed")
            if self._engine is not None:
                return self._engine
            loop = asyncio.new_event_loop()
            engine = _Engine(
                loop=loop,
                host=self._host,
                port=self._port,
                authority=self._authority,
                ssl_context=self._ssl,
                topic=self._topic.encode("ascii"),
                auth=self._auth,
                expiration=self._expiration,
                connect_timeout=self._connect_timeout,
                timeout=self._timeout,
                max_streams=self._max_streams,
                connections=self._connections,
                clock=self._clock,
            )
            ready = threading.Event()
            thread = threading.Thread(
                target=_run_loop, args=(loop, ready), name="apns-push", daemon=True
            )
            thread.start()
            ready.wait()
            self._engine, self._thread = engine, thread
            return engine


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _no_answer(token: str, reason: str, outcome: Outcome) -> PushResult:
    return PushResult(token, None, reason, None, None, outcome)


def _failure_outcome(exc: BaseException | None) -> Outcome:
    """``FAILED`` when TLS rejected a certificate (fix the configuration), else ``RETRY``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Outcome.FAILED
    if isinstance(exc, ssl.SSLError):
        text = f"{getattr(exc, 'reason', None)} {exc}".upper()
        if any(alert in text for alert in _CERTIFICATE_ALERTS):
            return Outcome.FAILED
    return Outcome.RETRY


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "connection closed by the server"
    if isinstance(exc, TimeoutError):
        return "connect timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Batch:
    __slots__ = ("results", "remaining", "future")

    def __init__(self, size: int, future: asyncio.Future[None]) -> None:
        self.results: list[PushResult | None] = [None] * size
        self.remaining = size
        self.future = future


class _Job:
    """One push: a token, where its result goes, and which stream carries it now."""

    __slots__ = ("token", "path", "batch", "index", "resends", "stream_id", "conn", "done")

    def __init__(self, token: str, batch: _Batch, index: int) -> None:
        self.token = token
        self.path = b"/3/device/" + token.encode("ascii")
        self.batch = batch
        self.index = index
        self.resends = 0
        self.stream_id = 0
        self.conn: _Connection | None = None
        self.done = False

    def finish(self, result: PushResult) -> None:
        if self.done:
            return
        self.done = True
        self.conn = None
        batch = self.batch
        batch.results[self.index] = result
        batch.remaining -= 1
        if batch.remaining == 0 and not batch.future.done():
            batch.future.set_result(None)


def _valid_token(token: object) -> bool:
    # APNs tokens are hex (64 digits today; Apple says not to rely on the length). Anything
    # else would be rejected as BadDeviceToken and must not reach the request path.
    return isinstance(token, str) and 0 < len(token) <= 200 and _HEX.issuperset(token)


class _Engine:
    """Loop-side state: the queue, the active connection, connecting, batches."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        authority: bytes,
        ssl_context: ssl.SSLContext,
        topic: bytes,
        auth: Auth,
        expiration: float,
        connect_timeout: float,
        timeout: float,
        max_streams: int,
        connections: int,
        clock: Callable[[], float],
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.authority = authority
        self.ssl_context = ssl_context
        self.topic = topic
        self.token_auth = auth if isinstance(auth, TokenAuth) else None
        self.expiration = expiration
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_streams = max_streams
        self.max_connections = connections
        self.clock = clock
        self.queue: collections.deque[_Job] = collections.deque()
        self.active: list[_Connection] = []
        self.connections: set[_Connection] = set()
        self.connecting: asyncio.Task[None] | None = None
        self.connection_count = 0
        #: No further connection before this loop time (one failed while another was up).
        self.hold_extra_until = 0.0
        self.closing = False

    # -- batches --------------------------------------------------------------------------

    async def send_batch(self, tokens: list[str]) -> list[PushResult]:
        batch = _Batch(len(tokens), self.loop.create_future())
        jobs: list[_Job] = []
        for index, token in enumerate(tokens):
            if _valid_token(token):
                jobs.append(_Job(token, batch, index))
            else:
                batch.results[index] = PushResult(
                    str(token), None, "malformed device token", None, None, Outcome.INVALID_TOKEN
                )
                batch.remaining -= 1
        if jobs:
            self.queue.extend(jobs)
            self.pump()
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(batch.future)
            except TimeoutError:
                unanswered = [job for job in jobs if not job.done]
                logger.warning("APNs batch timed out: %d of %d pushes unanswered",
                               len(unanswered), len(tokens))
                for job in unanswered:
                    if job.conn is not None:
                        job.conn.cancel(job)
                    job.finish(_no_answer(job.token, "timeout", Outcome.RETRY))
        results = [r for r in batch.results if r is not None]
        assert len(results) == len(tokens)
        counts = collections.Counter(r.outcome.value for r in results)
        logger.info("APNs batch of %d pushes: %s", len(results),
                    ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return results

    def headers(self, job: _Job) -> list[tuple[bytes, bytes]]:
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", self.authority),
            (b":path", job.path),
            (b"apns-topic", self.topic),
            (b"apns-expiration", str(int(self.clock() + self.expiration)).encode("ascii")),
            (b"content-length", b"2"),
        ]
        if self.token_auth is not None:
            headers.append((b"authorization", self.token_auth.authorization().encode("ascii")))
        return headers

    # -- the queue --------------------------------------------------------------------------

    def pump(self) -> None:
        """Move queued pushes onto the active connections while they have room; connect
        another when all are full and enough is left waiting."""
        queue = self.queue
        if not queue:
            return
        for conn in list(self.active):  # has_room() may retire a connection
            while queue and conn.has_room():
                job = queue.popleft()
                if not job.done:
                    conn.open_stream(job)
            if not queue:
                return
        if self.wants_connection():
            self.ensure_connecting()

    def wants_connection(self) -> bool:
        if not self.active:
            return True
        if len(self.active) >= self.max_connections:
            return False
        if self.loop.time() < self.hold_extra_until:
            return False
        return len(self.queue) * 2 >= self.active[-1].room_limit()

    def requeue(self, job: _Job, why: str, *, progress: bool) -> None:
        """Queue a push that the server did not process (GOAWAY, REFUSED_STREAM) again.

        Only refusals by a connection that processed nothing count towards ``MAX_RESENDS``:
        a server that closes every connection after N requests still gets every push through.
        """
        job.conn = None
        if not progress:
            job.resends += 1
        if job.resends > MAX_RESENDS:
            job.finish(_no_answer(job.token, f"not processed: {why}", Outcome.RETRY))
        else:
            self.queue.appendleft(job)

    def complete(self, job: _Job, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        reason: str | None = None
        timestamp: int | None = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                reason = data.get("reason") if isinstance(data.get("reason"), str) else None
                raw_ts = data.get("timestamp")
                timestamp = raw_ts if isinstance(raw_ts, int) else None
        apns_id_raw = headers.get(b"apns-id")
        apns_id = apns_id_raw.decode("ascii", "replace") if apns_id_raw else None
        outcome = classify(status, reason)
        if status != 200:
            logger.debug("APNs %s %s for token %s (apns-id %s): %s", status, reason,
                        short_token(job.token), apns_id, outcome.value)
        if status == 403 and reason == "ExpiredProviderToken" and self.token_auth is not None:
            self.token_auth.invalidate()
        job.finish(PushResult(job.token, status, reason, apns_id, timestamp, outcome))

    # -- connections ------------------------------------------------------------------------

    def ensure_connecting(self) -> None:
        if self.connecting is None and not self.closing:
            self.connecting = self.loop.create_task(self.connect())

    async def connect(self) -> None:
        conn: _Connection | None = None
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await self.loop.create_connection(
                        lambda: _Connection(self),
                        self.host,
                        self.port,
                        ssl=self.ssl_context,
                        server_hostname=self.host,
                        ssl_handshake_timeout=self.connect_timeout,
                    )
                    self.connections.add(conn)
                    failure = await conn.ready
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                failure = exc
            if failure is None and conn is not None and conn.selected_h2:
                self.connection_count += 1
                self.active.append(conn)
                logger.info("APNs connected to %s:%s (connection #%d, %d open, max streams %d)",
                            self.host, self.port, self.connection_count, len(self.active),
                            conn.room_limit())
                return
            if failure is None:
                failure = ConnectionError("the server did not negotiate HTTP/2 (ALPN h2)")
            if conn is not None:
                conn.abort()
            if self.active:
                # The pushes wait for the connections that are up; try no other for a while.
                self.hold_extra_until = self.loop.time() + self.connect_timeout
                logger.warning("APNs %s:%s: another connection failed: %s", self.host,
                               self.port, _describe(failure))
            else:
                self.fail_queue(failure)
        finally:
            self.connecting = None
            if self.active:
                self.pump()

    def fail_queue(self, exc: BaseException) -> None:
        outcome = _failure_outcome(exc)
        reason = f"connect failed: {_describe(exc)}"
        log = logger.error if outcome is Outcome.FAILED else logger.warning
        log("APNs %s:%s %s (%d pushes reported %s)", self.host, self.port, reason,
            len(self.queue), outcome.value)
        while self.queue:
            job = self.queue.popleft()
            job.finish(_no_answer(job.token, reason, outcome))

    def connection_closed(self, conn: _Connection, exc: BaseException | None) -> None:
        self.connections.discard(conn)
        if conn in self.active:
            self.active.remove(conn)
            if not self.closing:
                logger.info("APNs connection closed: %s", _describe(exc))
        self.pump()

    def connection_going_away(self, conn: _Connection) -> None:
        if conn in self.active:
            self.active.remove(conn)
        self.pump()

    async def aclose(self) -> None:
        self.closing = True
        if self.connecting is not None:
            self.connecting.cancel()
            try:
                await self.connecting
            except asyncio.CancelledError:
                pass
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        if conns:
            _, pending = await asyncio.wait([c.closed for c in conns], timeout=2.0)
            for conn in conns:
                if not conn.closed.done():
                    conn.abort()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        while self.queue:
            job = self.queue.popleft()
            job.finish(_no_answer(job.token, "client closed", Outcome.RETRY))


_H2_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # Headers are built here, lowercase and well-formed; h2's per-header checks cost more
    # than the rest of a request.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)


class _H2ClientConnection(h2.connection.H2Connection):
    """``H2Connection`` that keeps receiving after a GOAWAY, and counts streams cheaply.

    h2 closes its state machine as soon as a GOAWAY arrives, so responses to the streams at or
    below last-stream-id, which RFC 9113 §6.8 lets the server finish, would raise
    ``ProtocolError`` (python-hyper/h2#1181). This reopens the state right after the GOAWAY
    is parsed, within the same ``receive_data`` call; ``_Connection.accepting`` is what keeps
    new streams off the connection.
    """

    def __init__(self, in_flight: Callable[[], int]) -> None:
        super().__init__(config=_H2_CONFIG)
        self._in_flight = in_flight
        self._counted = 0

    def _receive_goaway_frame(self, frame: Any) -> Any:
        result = super()._receive_goaway_frame(frame)
        self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return result

    @property
    def open_outbound_streams(self) -> int:
        # h2 counts open streams by scanning all of them on every new request, which made
        # the scan the largest cost of a push with hundreds in flight. ``_Connection`` tracks
        # its streams exactly (closed on StreamEnded/StreamReset, as in h2), so use its count
        # and let h2 scan (and purge closed streams, its side effect) once in 512 requests.
        self._counted += 1
        if self._counted % 512 == 0:
            return self._open_streams(1)
        return self._in_flight()


class _Connection(asyncio.Protocol):
    """One TLS + HTTP/2 connection, driven by ``h2`` (sans-IO) from asyncio callbacks."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.loop = engine.loop
        self.streams: dict[int, _Job] = {}
        self.h2 = _H2ClientConnection(lambda: len(self.streams))
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[BaseException | None] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.responses: dict[int, tuple[int, dict[bytes, bytes], bytearray]] = {}
        self.blocked: collections.deque[int] = collections.deque()
        self.accepting = True
        self.answered = 0
        self.selected_h2 = False
        self._flush_pending = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        self.selected_h2 = bool(ssl_object and ssl_object.selected_alpn_protocol() == "h2")
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            logger.warning("APNs HTTP/2 protocol error: %s", exc)
            self.accepting = False
            self.flush()
            self.abort()
            return
        # A read can carry hundreds of responses. Refill and write every few dozen of them,
        # not once at the end, so the server works on new requests while the rest of the
        # read is handled here instead of both sides taking turns (§4.5, throughput).
        for count, event in enumerate(events, 1):
            self._handle(event)
            if count % _REFILL_EVERY == 0:
                self.engine.pump()
                self.flush()
        self.engine.pump()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.accepting = False
        if not self.ready.done():
            self.ready.set_result(exc or ConnectionResetError(
                "closed by the server before its HTTP/2 SETTINGS (TLS 1.3 servers do this when "
                "they reject the client certificate)"
            ))
        reason = f"connection lost: {_describe(exc)}"
        outcome = _failure_outcome(exc)
        streams, self.streams = self.streams, {}
        for job in streams.values():
            job.finish(_no_answer(job.token, reason, outcome))
        self.closed.set_result(None)
        self.engine.connection_closed(self, exc)

    # -- events ---------------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            headers: dict[bytes, bytes] = dict(event.headers)
            status = int(headers.get(b":status", b"0"))
            self.responses[event.stream_id] = (status, headers, bytearray())
        elif isinstance(event, h2.events.DataReceived):
            response = self.responses.get(event.stream_id)
            if response is not None and event.data:
                response[2].extend(event.data)
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._stream_ended(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.done():
                self.ready.set_result(None)
        elif isinstance(event, h2.events.WindowUpdated):
            self._send_blocked()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)

    def _stream_ended(self, stream_id: int) -> None:
        job = self.streams.pop(stream_id, None)
        response = self.responses.pop(stream_id, None)
        self.answered += 1
        if job is not None:
            if response is None:
                job.finish(_no_answer(job.token, "stream ended without a response",
                                      Outcome.RETRY))
            else:
                self.engine.complete(job, response[0], response[1], bytes(response[2]))
        self._close_if_drained()

    def _stream_reset(self, stream_id: int, error_code: object) -> None:
        job = self.streams.pop(stream_id, None)
        self.responses.pop(stream_id, None)
        if job is not None:
            if error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                self.engine.requeue(job, "stream refused", progress=self.answered > 0)
            else:
                job.finish(_no_answer(job.token, f"stream reset: {error_code}", Outcome.RETRY))
        self._close_if_drained()

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id or 0
        detail = ""
        if event.additional_data:
            detail = event.additional_data.decode("utf-8", "replace")[:200]
        self.accepting = False
        unprocessed = sorted(sid for sid in self.streams if sid > last)
        logger.info("APNs GOAWAY (%s, last stream %d) %s; resending %d unprocessed pushes",
                    getattr(event.error_code, "name", event.error_code), last, detail,
                    len(unprocessed))
        for sid in reversed(unprocessed):  # appendleft: keep the original order
            job = self.streams.pop(sid)
            self.responses.pop(sid, None)
            self.engine.requeue(job, "GOAWAY", progress=last > 0)
        self.engine.connection_going_away(self)
        self._close_if_drained()

    # -- sending --------------------------------------------------------------------------

    def room_limit(self) -> int:
        return min(self.h2.remote_settings.max_concurrent_streams, self.engine.max_streams)

    def has_room(self) -> bool:
        if not self.accepting:
            return False
        if self.h2.highest_outbound_stream_id > _LAST_USABLE_STREAM_ID:
            self.accepting = False
            self.engine.connection_going_away(self)
            self._close_if_drained()
            return False
        return len(self.streams) < self.room_limit()

    def open_stream(self, job: _Job) -> None:
        conn = self.h2
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, self.engine.headers(job))
        job.stream_id = stream_id
        job.conn = self
        self.streams[stream_id] = job
        if conn.local_flow_control_window(stream_id) >= len(PAYLOAD):
            conn.send_data(stream_id, PAYLOAD, end_stream=True)
        else:
            self.blocked.append(stream_id)
        self.schedule_flush()

    def _send_blocked(self) -> None:
        blocked = self.blocked
        while blocked:
            stream_id = blocked[0]
            if stream_id not in self.streams:
                blocked.popleft()
                continue
            if self.h2.local_flow_control_window(stream_id) < len(PAYLOAD):
                return
            blocked.popleft()
            self.h2.send_data(stream_id, PAYLOAD, end_stream=True)

    def cancel(self, job: _Job) -> None:
        """Abandon a stream (batch timeout): reset it and forget the job."""
        if self.streams.pop(job.stream_id, None) is None:
            return
        self.responses.pop(job.stream_id, None)
        try:
            self.h2.reset_stream(job.stream_id, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.H2Error:
            pass
        self.schedule_flush()
        self._close_if_drained()

    def schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- closing --------------------------------------------------------------------------

    def _close_if_drained(self) -> None:
        if not self.accepting and not self.streams and self.transport is not None:
            if not self.transport.is_closing():
                self.close()

    def close(self) -> None:
        """Say GOAWAY and close the TLS connection; in-flight streams are lost."""
        self.accepting = False
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.h2.close_connection()
        except h2.exceptions.H2Error:
            pass
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
