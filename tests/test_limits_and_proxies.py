"""Rate-limit and proxy settings in one process: which client the limits count, when proxy
headers are believed, what happens when the shared storage fails, and the settings' checks.
(tests/test_shared_limits.py runs two processes on Redis; tests/deploy/test_nginx.py runs
behind a real nginx.)"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from flask import Flask
from serve_support import free_port
from sqlalchemy import select

from wallet_service import create_app
from wallet_service.cli import main
from wallet_service.config import load_settings
from wallet_service.errors import ConfigurationError
from wallet_service.models import DeviceLog
from wallet_service.ratelimit import RateLimiter
from wallet_service.ratelimit import make_storage


@pytest.fixture
def proxied_app(app: Flask, app_config) -> Iterator[Flask]:
    """The service behind one trusted proxy, on the test database."""
    proxied = create_app({**app_config, "TRUSTED_PROXIES": "1", "JOIN_RATE_LIMIT_PER_MINUTE": "2",
                          "DB_POOL_SIZE": "2"})
    yield proxied
    proxied.extensions["wallet"].engine.dispose()


def _join(client, forwarded_for: str | None = None) -> int:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return client.post("/join/no-such-program", data={"phone": "1"}, headers=headers,
                       environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code  # the proxy


def test_limits_count_the_client_the_trusted_proxy_names(proxied_app):
    client = proxied_app.test_client()
    assert [_join(client, "192.0.2.10") for _ in range(2)] == [404, 404]
    assert _join(client, "192.0.2.10") == 429
    # Only the last entry is the proxy's word; what the client wrote before it is not.
    assert _join(client, "198.51.100.1, 192.0.2.10") == 429
    assert _join(client, "192.0.2.11") == 404


def _logged_addresses(app: Flask) -> list[str | None]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(DeviceLog.remote_addr)))


def test_proxy_headers_give_the_address_and_https(proxied_app, app, api):
    join_path = "/join/" + api.program()["join_url"].rsplit("/", 1)[1]
    proxied = proxied_app.test_client()
    headers = {"X-Forwarded-For": "192.0.2.20", "X-Forwarded-Proto": "https"}
    r = proxied.post("/apple/v1/log", json={"logs": ["from a phone"]}, headers=headers,
                     environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert r.status_code == 200
    cookie = proxied.get(join_path + "?lang=en", headers=headers).headers["Set-Cookie"]
    assert cookie.startswith("lang=en") and "; Secure" in cookie  # request.is_secure
    assert _logged_addresses(app) == ["192.0.2.20"]


def test_without_trusted_proxies_the_headers_are_ignored(app, client, api):
    join_path = "/join/" + api.program()["join_url"].rsplit("/", 1)[1]
    headers = {"X-Forwarded-For": "192.0.2.30", "X-Forwarded-Proto": "https"}
    client.post("/apple/v1/log", json={"logs": ["x"]}, headers=headers,
                environ_base={"REMOTE_ADDR": "10.0.0.1"})
    cookie = client.get(join_path + "?lang=en", headers=headers).headers["Set-Cookie"]
    assert cookie.startswith("lang=en") and "; Secure" not in cookie
    assert _logged_addresses(app) == ["10.0.0.1"]


def test_join_limit_is_a_setting_of_its_own(app_config):
    settings = load_settings({**app_config, "JOIN_RATE_LIMIT_PER_MINUTE": "45"}, environ={})
    assert settings.join_rate_limit_per_minute == 45 and settings.rate_limit_per_minute == 120
    assert load_settings(app_config, environ={}).join_rate_limit_per_minute == 30
    other = create_app({**app_config, "JOIN_RATE_LIMIT_PER_MINUTE": "45", "DB_POOL_SIZE": "1"})
    limiters = other.extensions["wallet"].limiters
    assert (limiters.join.per_minute, limiters.pages.per_minute) == (45, 120)
    other.extensions["wallet"].engine.dispose()


@pytest.mark.parametrize(("name", "value", "says"), [
    ("RATE_LIMIT_STORAGE", "memcached://u:secret@127.0.0.1:11211", "memory:// or a Redis URL"),
    ("TRUSTED_PROXIES", "-1", "0 to 5"),
    ("TRUSTED_PROXIES", "one", "invalid literal"),
    ("JOIN_RATE_LIMIT_PER_MINUTE", "0", "1 or more"),
])
def test_bad_settings_are_named(tmp_path, name, value, says):
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path), f"WALLET_{name}": value})
    assert info.value.field == f"WALLET_{name}" and says in info.value.message
    assert "secret" not in info.value.message  # a storage URL may hold a password


def test_redis_storage_without_the_redis_package_is_a_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed
    with pytest.raises(ConfigurationError) as info:
        make_storage("redis://127.0.0.1:6379/0")
    assert info.value.field == "WALLET_RATE_LIMIT_STORAGE"
    assert "wallet-service[redis]" in info.value.message


def test_unreachable_shared_storage_falls_back_to_the_process(caplog):
    pytest.importorskip("redis")
    limiter = RateLimiter(2, storage=make_storage(f"redis://127.0.0.1:{free_port()}/0"),
                          name="join")
    with caplog.at_level(logging.WARNING, logger="wallet_service.ratelimit"):
        answers = [limiter.allow("192.0.2.40") for _ in range(3)]
    assert answers[:2] == [0, 0] and answers[2] > 0  # still limited, never an error
    assert len(caplog.records) == 1 and "count per process" in caplog.records[0].getMessage()


def test_doctor_reports_the_limits_and_the_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    monkeypatch.setenv("WALLET_PUBLIC_URL", "https://wallet.example.com")
    r = CliRunner().invoke(main, ["doctor"])
    assert "warning proxy: WALLET_PUBLIC_URL is https but WALLET_TRUSTED_PROXIES is 0" in r.output
    assert "ok      rate limits: counted by each process on its own" in r.output

    pytest.importorskip("redis")
    monkeypatch.setenv("WALLET_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("WALLET_RATE_LIMIT_STORAGE", f"redis://:pw@127.0.0.1:{free_port()}/0")
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1
    assert "proxy" not in r.output and "pw" not in r.output
    assert "error   rate limits: redis://127.0.0.1:" in r.output
