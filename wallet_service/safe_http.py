"""Outbound HTTP to addresses a merchant gives (webhook endpoints), kept out of the hosting
network.

A name is resolved **once**; the request connects to that address, and the address the
socket actually connected to is checked before a byte is sent. Checking the name and then
letting a client resolve it again would let DNS rebinding (a name that answers a public
address to the check and ``127.0.0.1`` to the connection) reach the service's own network;
here there is no second resolution. Private, loopback, link-local, multicast and other
non-global addresses (IPv4-mapped IPv6 included) are refused unless the operator allows them
(``WALLET_WEBHOOKS_ALLOW_PRIVATE``). Redirects are not followed: a 3xx is an answer, not a
new address to visit. Proxies from the environment are not used.

Failures come back as values (:class:`Answer`), never as exceptions, so the caller records
every try the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Most bytes of an answer read (and thrown away): a receiver's body says nothing we keep.
MAX_ANSWER = 64 * 1024

Resolver = Callable[..., list[tuple[Any, ...]]]


class AddressRefused(Exception):
    """The destination is in a network the service does not send to."""


@dataclass(frozen=True)
class Answer:
    """What one request got: the HTTP ``status`` (None when there was no answer), how long
    it took, and why it failed (None on a 2xx). ``refused``: the address was refused, so
    trying again will not help."""

    status: int | None
    latency_ms: int
    error: str | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP address as text) is a globally routable unicast address:
    not private, loopback, link-local, shared, reserved or multicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """``host`` if it is an IP address literal, else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float,
         allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> Answer:
    """POST ``body`` to ``url`` through one checked address (module docstring)."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        address = _pick_address(host, port, allow_private, resolve)
        connection: http.client.HTTPConnection
        if https:
            connection = _PinnedHTTPSConnection(host, port, address=address, timeout=timeout,
                                                allow_private=allow_private)
        else:
            connection = _PinnedHTTPConnection(host, port, address=address, timeout=timeout,
                                               allow_private=allow_private)
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(MAX_ANSWER)
            status = response.status
        finally:
            connection.close()
    except AddressRefused as exc:
        return Answer(None, took(), f"refused: {exc}", refused=True)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: an IDNA label
        return Answer(None, took(), f"{type(exc).__name__}: {exc}"[:200])
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Answer(status, took(), error)


def _pick_address(host: str, port: int, allow_private: bool, resolve: Resolver) -> str:
    """The one address to connect to: ``host`` resolved once, the first allowed answer.

    :raises AddressRefused: every answer is in a refused network.
    :raises OSError: the name does not resolve.
    """
    infos = resolve(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if allow_private or is_public(address):
            return address
    raise AddressRefused(f"{host} is at a private, loopback or link-local address "
                         f"({', '.join(sorted(set(addresses)))})")


def _connect(address: str, port: int, timeout: float, allow_private: bool) -> socket.socket:
    """A TCP connection to ``address``, refused once connected if the peer is not allowed
    (the address connected to, not the name)."""
    sock = socket.create_connection((address, port), timeout=timeout)
    peer = str(sock.getpeername()[0])
    if not allow_private and not is_public(peer):
        sock.close()
        raise AddressRefused(f"connected to {peer}, a private, loopback or link-local address")
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to one checked address; ``Host`` stays the URL's name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float,
                 allow_private: bool) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._allow_private = allow_private

    def connect(self) -> None:
        self.sock = _connect(self._address, self.port, self.timeout, self._allow_private)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one checked address; the certificate is verified for the URL's name (SNI and
    hostname check), with the system's trust store."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float,
                 allow_private: bool) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address
        self._allow_private = allow_private

    def connect(self) -> None:
        sock = _connect(self._address, self.port, self.timeout, self._allow_private)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
