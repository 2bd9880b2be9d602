"""`wallet-service serve` as an operator runs it: gunicorn plus the background worker in one
command; a points change posted over HTTP reaches the phone's APNs stand-in."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

from apns_standin import ApnsStandIn
from push_support import PASS_TYPE
from push_support import worker_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, None if body is None else json.dumps(body),
                 {"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (json.loads(data) if data and r.getheader("Content-Type", "").endswith("json")
                      else data)


def test_serve_runs_web_and_worker(app, apns_certs, tmp_path):
    from wallet_service.services.merchants import create_merchant

    with app.extensions["wallet"].sessions() as s:
        _, _, key = create_merchant(
            s, "Serve test", time_zone=app.extensions["wallet"].settings.default_time_zone)
        s.commit()
    auth = {"Authorization": f"Bearer {key}"}
    port = free_port()
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE) as standin:
        env = worker_env(app, standin, lease=5.0)
        env["WALLET_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        log_path = tmp_path / "server.log"
        log = log_path.open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "wallet_service.cli", "serve", "--port", str(port),
             "--workers", "1", "--threads", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if call(port, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
            _, program = call(port, "POST", "/api/v1/programs", {"name": "P", "kind": "points"}, auth)
            _, member = call(port, "POST", f"/api/v1/programs/{program['id']}/members",
                             {"name": "A", "phone": "+79123456789"}, auth)
            with app.extensions["wallet"].sessions() as s:
                from sqlalchemy import select

                from wallet_service.models import LoyaltyCard
                token = s.scalar(select(LoyaltyCard.authentication_token))
            status, _ = call(port, "POST",
                             f"/apple/v1/devices/lib-1/registrations/{PASS_TYPE}/{member['serial_number']}",
                             {"pushToken": "ab" * 32}, {"Authorization": f"ApplePass {token}"})
            assert status == 201
            status, _ = call(port, "POST", f"/api/v1/members/{member['id']}/transactions",
                             {"type": "earn", "points": 3}, auth)
            assert status == 201
            deadline = time.monotonic() + 20
            while not standin.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [r.token for r in standin.requests] == ["ab" * 32]
            download = member["apple_pass_url"].rsplit("/", 1)[1]
            assert call(port, "GET", f"/passes/{download}")[0] == 200
            assert call(port, "GET", f"/c/{download}")[0] == 200
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
        logged = log_path.read_text()
        assert "GET /passes/" in logged  # the access log is on...
        assert download not in logged and key not in logged  # ...without secrets
