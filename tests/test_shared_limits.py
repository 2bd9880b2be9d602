"""Rate limits across processes: two `serve` processes count one client's requests together
when they share Redis (``WALLET_RATE_LIMIT_STORAGE``), and each on its own in memory.

The Redis test needs a Redis server (``WALLET_TEST_REDIS_URL``, default db 13 of the local
one) and skips, saying why, when none answers. Each run uses a client address of its own and
deletes its keys afterwards, so runs on the same Redis do not meet."""

from __future__ import annotations

import http.client
import os
import secrets
from collections.abc import Iterator

import pytest
from serve_support import Served
from serve_support import free_port
from serve_support import service_env

from wallet_service.ratelimit import KEY_PREFIX

REDIS_URL = os.environ.get("WALLET_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
JOIN_LIMIT = 3


@pytest.fixture
def network() -> str:
    """Client addresses no other run uses, ``<network>.1`` and ``.2`` (the processes trust
    one proxy: the test plays it)."""
    return "10." + ".".join(str(b) for b in secrets.token_bytes(2))


@pytest.fixture
def redis_url(network: str) -> Iterator[str]:
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed (pip install 'wallet-service[redis]')")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"no Redis answers at {REDIS_URL} ({type(exc).__name__}); "
                    "set WALLET_TEST_REDIS_URL to run the shared rate-limit test")
    try:
        yield REDIS_URL
    finally:
        mine = list(client.scan_iter(match=f"{KEY_PREFIX}*/{network}.*"))
        if mine:
            client.delete(*mine)
        client.close()


def _submit(port: int, address: str) -> tuple[int, str | None]:
    """A sign-up submission as it arrives from a proxy for the client at ``address``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/join/no-such-program", body="phone=1",
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "X-Forwarded-For": address})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After")
    finally:
        conn.close()


def _two_processes(app, tmp_path, storage: str) -> tuple[Served, Served]:
    env = service_env(app, RATE_LIMIT_STORAGE=storage, TRUSTED_PROXIES="1",
                      JOIN_RATE_LIMIT_PER_MINUTE=str(JOIN_LIMIT))
    return (Served(env, free_port(), tmp_path / "a.log").start(),
            Served(env, free_port(), tmp_path / "b.log").start())


@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_sign_up_limit_across_two_processes(app, tmp_path, network, request, storage):
    url = request.getfixturevalue("redis_url") if storage == "redis" else "memory://"
    servers = _two_processes(app, tmp_path, url)
    try:
        for server in servers:
            server.wait()
        # Spread over both processes in turn: 1st, 3rd, 5th... to one; 2nd, 4th... to the other.
        answers = [_submit(servers[i % 2].port, f"{network}.1")
                   for i in range(2 * JOIN_LIMIT + 1)]
        other = _submit(servers[0].port, f"{network}.2")
    finally:
        for server in servers:
            server.stop()
    codes = [status for status, _ in answers]
    # Shared: the limit holds for the client whichever process answers. In memory: each
    # process allows the limit, so the client gets twice as many.
    allowed = JOIN_LIMIT if storage == "redis" else 2 * JOIN_LIMIT
    assert codes == [404] * allowed + [429] * (len(codes) - allowed), codes
    assert all(0 < int(retry) <= 60 for status, retry in answers if status == 429)
    assert other[0] == 404  # another client has its own budget
