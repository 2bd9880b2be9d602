"""A local APNs stand-in that speaks the real protocol: HTTP/2 over TLS (spec §4).

It runs an asyncio ``h2`` server on 127.0.0.1 (a free port) in a background thread::

    certs = make_certificates(tmp_path)
    with ApnsStandIn(certs=certs, topic="pass.com.example.test") as apns:
        apns.script("ab" * 32, Reply(410, "Unregistered", timestamp=1_700_000_000_000))
        client = ApnsPushClient(topic=..., base_url=apns.url, ca_file=certs.ca_file,
                                auth=CertificateAuth(certificate=certs.client_cert,
                                                     private_key=certs.client_key))
        ...
        assert apns.requests[0].headers["apns-topic"] == "pass.com.example.test"

Authentication is the real thing: by default the TLS layer demands a client certificate
issued by ``certs.ca_file`` (``ssl.CERT_REQUIRED``); with ``jwt_public_key`` it instead checks
``authorization: bearer <jwt>`` (ES256 signature, ``kid``, ``iss``) and, like APNs, allows one
stream until the first valid token (§4.5).

Each request is checked like APNs does (``POST``, ``/3/device/<hex>``, ``apns-topic``, body
``{}``; failures get the matching APNs status and reason), recorded as a ``RecordedRequest``,
and answered from a per-token script (``script``) or ``default_reply``. ``goaway_after=N``
sends GOAWAY on every connection at its N-th request (last-stream-id = that stream), answers
the streams up to it, ignores later ones and then closes, the way APNs and servers with a
per-connection request limit do. ``max_concurrent_streams`` sets SETTINGS_MAX_CONCURRENT_STREAMS
(h2 itself rejects a client that opens more).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime
import ipaddress
import json
import ssl
import string
import threading
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

__all__ = [
    "ApnsStandIn",
    "RecordedRequest",
    "Reply",
    "StandInCertificates",
    "load_certificates",
    "make_certificates",
    "make_p8_key",
]

_HEX = frozenset(string.hexdigits)


# -- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandInCertificates:
    """Files of a throwaway PKI: a CA, a server certificate for 127.0.0.1/localhost, and a
    client certificate (the "pass certificate") issued by the same CA. PEM bytes of the client
    identity are included for tests that pass bytes instead of paths."""

    folder: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_cert_pem: bytes
    client_key_pem: bytes
    client_subject: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "APNs stand-in"),
    ])


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_certificates(folder: Path) -> StandInCertificates:
    """The files ``make_certificates`` wrote to ``folder`` (e.g. in another process)."""
    client_cert_pem = (folder / "client.pem").read_bytes()
    subject = x509.load_pem_x509_certificate(client_cert_pem).subject.rfc4514_string()
    return StandInCertificates(
        folder=folder,
        ca_file=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        client_cert_pem=client_cert_pem,
        client_key_pem=(folder / "client.key").read_bytes(),
        client_subject=subject,
    )


def make_certificates(
    folder: Path,
    *,
    client_common_name: str = "Pass Type ID: pass.com.example.test",
    key_password: bytes | None = None,
) -> StandInCertificates:
    """Create a CA, a server and a client certificate (EC P-256) under ``folder``.

    ``key_password`` encrypts the client key file (and ``client_key_pem``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("APNs stand-in test CA")
    ca_cert = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(_name("localhost"), server_key.public_key(), ca_name, ca_key,
                         server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue(_name(client_common_name), client_key.public_key(), ca_name, ca_key)

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    pem = serialization.Encoding.PEM
    client_cert_pem = client_cert.public_bytes(pem)
    client_key_pem = _key_pem(client_key, key_password)
    return StandInCertificates(
        folder=folder,
        ca_file=write("ca.pem", ca_cert.public_bytes(pem)),
        server_cert=write("server.pem", server_cert.public_bytes(pem)),
        server_key=write("server.key", _key_pem(server_key)),
        client_cert=write("client.pem", client_cert_pem),
        client_key=write("client.key", client_key_pem),
        client_cert_pem=client_cert_pem,
        client_key_pem=client_key_pem,
        client_subject=client_cert.subject.rfc4514_string(),
    )


def make_p8_key() -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """A fresh ES256 key as a .p8 file would hold it (PKCS#8 PEM), and its public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _key_pem(key), key.public_key()


# -- requests and replies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the stand-in answers: a status, an APNs ``reason``, an optional 410 ``timestamp``
    (ms), and an optional ``delay`` in seconds before answering."""

    status: int = 200
    reason: str | None = None
    timestamp: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it, and what it answered."""

    token: str | None
    method: str
    path: str
    headers: dict[str, str]
    header_names: tuple[str, ...]
    body: bytes
    client_subject: str | None
    connection: int
    stream_id: int
    status: int
    reason: str | None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class _Stream:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


# -- the server ------------------------------------------------------------------------------


class ApnsStandIn:
    """An HTTP/2 + TLS server that behaves like APNs for pass pushes. See the module docs."""

    def __init__(
        self,
        *,
        certs: StandInCertificates,
        topic: str | None = None,
        jwt_public_key: ec.EllipticCurvePublicKey | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
        max_concurrent_streams: int = 1000,
        goaway_after: int | None = None,
        default_reply: Reply = Reply(200),
    ) -> None:
        self.certs = certs
        self.topic = topic
        self.jwt_public_key = jwt_public_key
        self.key_id = key_id
        self.team_id = team_id
        self.max_concurrent_streams = max_concurrent_streams
        self.goaway_after = goaway_after
        self.default_reply = default_reply
        #: TLS connections that completed the handshake (failed handshakes are not counted).
        self.connections_accepted = 0
        #: Largest number of requests received but not yet answered at once on a connection.
        self.peak_streams = 0
        #: HTTP/2 protocol errors the client caused (h2's checks, e.g. too many streams).
        self.protocol_errors: list[str] = []
        #: Distinct valid JWTs seen (token auth).
        self.jwts: list[str] = []
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, collections.deque[Reply]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._protocols: set[_ServerConnection] = set()
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ApnsStandIn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``; valid after ``start``."""
        if not self._port:
            raise RuntimeError("the stand-in is not started")
        return f"https://127.0.0.1:{self._port}"

    def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve from a background thread."""
        if self._thread is not None:
            raise RuntimeError("the stand-in is already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(self._protocol, "127.0.0.1", 0, ssl=self._ssl_context())
                )
                self._port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()
                errors.append(exc)
            ready.set()
            if not errors:
                loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="apns-standin", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]

    def stop(self) -> None:
        """Close every connection and the listener, then stop the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for proto in list(self._protocols):
            proto.abort()
        for _ in range(3):
            await asyncio.sleep(0)
        await self._server.wait_closed()

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
        context.load_cert_chain(self.certs.server_cert, self.certs.server_key)
        if self.jwt_public_key is None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.certs.ca_file)
        return context

    def _protocol(self) -> _ServerConnection:
        return _ServerConnection(self)

    # -- test API ---------------------------------------------------------------------------

    def script(self, token: str, *replies: Reply) -> None:
        """Queue ``replies`` for the next requests to ``token`` (then ``default_reply``)."""
        with self._lock:
            self._scripts.setdefault(token, collections.deque()).extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every processed request so far (streams ignored after a GOAWAY are not included)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests, scripts and counters."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self.jwts.clear()
            self.connections_accepted = 0
            self.peak_streams = 0
            self.protocol_errors.clear()

    def drop_connections(self) -> None:
        """Abort every open connection at the TCP level (no GOAWAY), like a network failure."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the stand-in is not started")

        async def drop() -> None:
            for proto in list(self._protocols):
                proto.abort()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(drop(), loop).result(5)

    def _next_reply(self, token: str) -> Reply:
        with self._lock:
            queued = self._scripts.get(token)
            return queued.popleft() if queued else self.default_reply

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _check_jwt(self, value: str | None) -> str | None:
        """``None`` if ``value`` is a valid ``bearer <jwt>``, else the APNs 403 reason."""
        if not value:
            return "MissingProviderToken"
        scheme, _, jwt = value.partition(" ")
        parts = jwt.split(".")
        if scheme.lower() != "bearer" or len(parts) != 3:
            return "InvalidProviderToken"
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except ValueError:
            return "InvalidProviderToken"
        if header.get("alg") != "ES256" or len(signature) != 64:
            return "InvalidProviderToken"
        if self.key_id is not None and header.get("kid") != self.key_id:
            return "InvalidProviderToken"
        if self.team_id is not None and claims.get("iss") != self.team_id:
            return "InvalidProviderToken"
        if not isinstance(claims.get("iat"), int):
            return "InvalidProviderToken"
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        assert self.jwt_public_key is not None
        try:
            self.jwt_public_key.verify(
                encode_dss_signature(r, s),
                f"{parts[0]}.{parts[1]}".encode("ascii"),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return "InvalidProviderToken"
        with self._lock:
            if jwt not in self.jwts:
                self.jwts.append(jwt)
        return None


_SERVER_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: ApnsStandIn) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.h2 = h2.connection.H2Connection(config=_SERVER_CONFIG)
        self.streams: dict[int, _Stream] = {}
        self.client_subject: str | None = None
        self.number = 0
        self.request_count = 0
        self.goaway_last: int | None = None
        self.unanswered: set[int] = set()
        self.authenticated = False
        self.pending_bodies: dict[int, bytes] = {}

    # -- asyncio ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        server._protocols.add(self)
        with server._lock:
            server.connections_accepted += 1
            self.number = server.connections_accepted
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if peer:
            self.client_subject = x509.load_der_x509_certificate(peer).subject.rfc4514_string()
        warmup = server.jwt_public_key is not None
        limit = 1 if warmup else server.max_concurrent_streams
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit},
        )
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            with self.server._lock:
                self.server.protocol_errors.append(f"{type(exc).__name__}: {exc}")
            self.flush()
            self.abort()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._request(event.stream_id, list(event.headers))  # type: ignore[arg-type]
            elif isinstance(event, h2.events.DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.body.extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._complete(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.streams.pop(event.stream_id, None)
                self._answered(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_pending()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.flush()
                self.close()
                return
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._protocols.discard(self)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- requests ---------------------------------------------------------------------------

    def _request(self, stream_id: int, headers: list[tuple[str, str]]) -> None:
        if self.goaway_last is not None and stream_id > self.goaway_last:
            return  # not processed: the client must resend it elsewhere
        self.streams[stream_id] = _Stream(headers)
        self.unanswered.add(stream_id)
        self.request_count += 1
        if len(self.unanswered) > self.server.peak_streams:
            self.server.peak_streams = len(self.unanswered)
        goaway_after = self.server.goaway_after
        if goaway_after is not None and self.request_count == goaway_after:
            self.goaway_last = stream_id
            self.h2.close_connection(
                error_code=h2.errors.ErrorCodes.NO_ERROR,
                last_stream_id=stream_id,
                additional_data=b'{"reason":"Shutdown"}',
            )
            # h2 treats a sent GOAWAY as the end of the connection; RFC 9113 §6.8 lets the
            # streams up to last-stream-id finish, which is what APNs does.
            self.h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN

    def _complete(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        server = self.server
        headers = dict(stream.headers)
        body = bytes(stream.body)
        method = headers.get(":method", "")
        path = headers.get(":path", "")
        token: str | None = None
        reply: Reply
        if method != "POST":
            reply = Reply(405, "MethodNotAllowed")
        elif not path.startswith("/3/device/"):
            reply = Reply(404, "BadPath")
        else:
            token = path.removeprefix("/3/device/")
            reply = self._check(token, headers, body)
        self.server._record(
            RecordedRequest(
                token=token,
                method=method,
                path=path,
                headers={k: v for k, v in stream.headers if not k.startswith(":")},
                header_names=tuple(k for k, _ in stream.headers),
                body=body,
                client_subject=self.client_subject,
                connection=self.number,
                stream_id=stream_id,
                status=reply.status,
                reason=reply.reason,
            )
        )
        if reply.delay > 0:
            assert server._loop is not None
            server._loop.call_later(reply.delay, self._respond_later, stream_id, reply)
        else:
            self._respond(stream_id, reply)

    def _check(self, token: str, headers: dict[str, str], body: bytes) -> Reply:
        server = self.server
        if not token or not _HEX.issuperset(token):
            return Reply(400, "BadDeviceToken")
        if server.jwt_public_key is not None:
            problem = server._check_jwt(headers.get("authorization"))
            if problem is not None:
                return Reply(403, problem)
            if not self.authenticated:
                self.authenticated = True
                self.h2.update_settings({
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                        server.max_concurrent_streams,
                })
        topic = headers.get("apns-topic")
        if not topic:
            return Reply(400, "MissingTopic")
        if server.topic is not None and topic != server.topic:
            return Reply(400, "TopicDisallowed")
        if not body:
            return Reply(400, "PayloadEmpty")
        if body != b"{}":
            return Reply(400, "BadPayload")  # pass pushes carry exactly {} (§4.3)
        return server._next_reply(token)

    def _respond_later(self, stream_id: int, reply: Reply) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._respond(stream_id, reply)
        self.flush()

    def _respond(self, stream_id: int, reply: Reply) -> None:
        headers = [(":status", str(reply.status)), ("apns-id", str(uuid.uuid4()).upper())]
        try:
            if reply.status == 200:
                self.h2.send_headers(stream_id, headers, end_stream=True)
            else:
                payload: dict[str, object] = {"reason": reply.reason}
                if reply.timestamp is not None:
                    payload["timestamp"] = reply.timestamp
                body = json.dumps(payload).encode()
                headers.append(("content-type", "application/json"))
                self.h2.send_headers(stream_id, headers)
                self.pending_bodies[stream_id] = body
                self._send_pending()
        except h2.exceptions.StreamClosedError:
            pass  # the client reset the stream meanwhile
        self._answered(stream_id)

    def _send_pending(self) -> None:
        for stream_id, body in list(self.pending_bodies.items()):
            try:
                if self.h2.local_flow_control_window(stream_id) < len(body):
                    continue
                self.h2.send_data(stream_id, body, end_stream=True)
            except h2.exceptions.StreamClosedError:
                pass
            del self.pending_bodies[stream_id]

    def _answered(self, stream_id: int) -> None:
        self.unanswered.discard(stream_id)
        if self.goaway_last is not None and not self.unanswered and not self.pending_bodies:
            self.flush()
            self.close()


def _main() -> None:
    """Serve until SIGTERM/SIGINT: ``python tests/apns_standin.py --folder DIR`` (certificates
    from ``make_certificates``). Prints ``{"port": N}`` when ready and ``{"requests": N}`` at
    the end; used by ``bench/apns.py``."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--topic")
    parser.add_argument("--max-streams", type=int, default=1000)
    parser.add_argument("--goaway-after", type=int)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    standin = ApnsStandIn(certs=load_certificates(args.folder), topic=args.topic,
                          max_concurrent_streams=args.max_streams,
                          goaway_after=args.goaway_after)
    with standin:
        print(json.dumps({"port": int(standin.url.rsplit(":", 1)[1])}), flush=True)
        stop.wait()
    print(json.dumps({"requests": len(standin.requests)}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    _main()
