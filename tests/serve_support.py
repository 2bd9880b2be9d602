"""`wallet-service serve` as a subprocess, for tests that need real server processes (several of
them, or behind a real proxy) on the test database and instance folder."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(app: Any, **settings: str) -> dict[str, str]:
    """The environment of a ``serve`` process on the test app's database and instance folder
    (so it signs with the same development certificates), plus ``settings`` (names without
    the ``WALLET_`` prefix)."""
    state = app.extensions["wallet"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({
        "WALLET_DATABASE_URL": state.database_url,
        "WALLET_INSTANCE_PATH": str(state.instance_path),
        "WALLET_SECRET_KEY": "test-secret-key",
        "WALLET_DB_POOL_SIZE": "3",
        "WALLET_LOG_LEVEL": "WARNING",
    })
    env.update({f"WALLET_{name}": value for name, value in settings.items()})
    return env


class Served:
    """``wallet-service serve --no-worker`` (one gunicorn worker) on ``port`` of 127.0.0.1.

    ``start()`` returns at once, so several can boot side by side; ``wait()`` returns when
    ``/healthz`` answers. ``stop()`` ends the process group."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Served:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wallet_service.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1", "--threads", "2", "--no-worker"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float = 30.0) -> Served:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serve exited:\n{self.log_path.read_text()}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve did not come up:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
