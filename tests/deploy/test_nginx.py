"""The deployment the README recommends, run for real: Debian's nginx with
deploy/nginx/wallet-service.conf (ports, certificate and log paths replaced) terminating TLS
in front of `wallet-service serve` with ``WALLET_PUBLIC_URL=https://127.0.0.1:<nginx port>``
and ``WALLET_TRUSTED_PROXIES=1``.

nginx runs in the foreground, not as root, from a folder of its own. Clients connect from
127.0.0.2 and 127.0.0.3, so the service must learn the address nginx saw. Without nginx these
tests skip, except in CI (``CI`` set), where they fail: .ci/run installs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import io
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import make_merchant
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from serve_support import Served
from serve_support import free_port
from serve_support import service_env
from sqlalchemy import select

from wallet_service.models import DeviceLog
from wallet_service.models import LoyaltyCard

NGINX = os.environ.get("WALLET_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "wallet-service.conf"
PASS_TYPE = "pass.dev.wallet-service.loyalty"
JOIN_LIMIT = 2
ALICE, BOB = "127.0.0.2", "127.0.0.3"  # two clients, as nginx sees them


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the deployment test is required in CI")
    pytest.skip(reason)


@dataclass
class Proxied:
    """nginx on ``port`` (https) and ``http_port`` in front of ``served``."""

    port: int
    http_port: int
    served: Served
    context: ssl.SSLContext
    access_log: Path
    api_key: str = ""

    @property
    def public_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, *, source: str = ALICE, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        """A request through nginx over TLS from the client address ``source``."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=15,
                                           context=self.context, source_address=(source, 0))
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body, headers)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, _, data = self.request(method, "/api/v1" + path, body=body,
                                       headers={"Authorization": f"Bearer {self.api_key}"})
        assert status in (200, 201), (status, data)
        return json.loads(data)


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    """Replace ``old``, which the shipped file must hold ``count`` times (else the test no
    longer runs what it ships)."""
    assert text.count(old) == count, f"deploy/nginx/wallet-service.conf: {old!r} changed"
    return text.replace(old, new)


def _nginx_config(folder: Path, *, port: int, http_port: int, upstream: int) -> Path:
    cert, key = _certificate(folder)
    site = CONF.read_text()
    site = _replace(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    site = _replace(site, "listen [::]:443 ssl http2;\n", "")
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace(site, "listen [::]:80;\n", "")
    site = _replace(site, "/etc/letsencrypt/live/wallet.example.com/fullchain.pem", str(cert))
    site = _replace(site, "/etc/letsencrypt/live/wallet.example.com/privkey.pem", str(key))
    site = _replace(site, "/var/log/nginx/wallet-service.access.log",
                    str(folder / "access.log"), count=2)
    (folder / "wallet-service.conf").write_text(site)
    (folder / "temp").mkdir()
    temp = "\n".join(f"    {kind}_temp_path {folder / 'temp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(f"""daemon off;
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} info;
events {{ worker_connections 64; }}
http {{
{temp}
    include {folder / 'wallet-service.conf'};
}}
""")
    return main


def _as_nobody(folder: Path) -> dict[str, Any]:
    """Popen arguments that run nginx as ``nobody`` when the tests run as root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, f"nginx exited:\n{log.read_text(errors='replace')}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def deployment(app, tmp_path_factory) -> Iterator[Proxied]:
    """nginx and `serve`, started once for the module."""
    if not (os.path.isfile(NGINX) or shutil.which(NGINX)):
        _unavailable(f"no nginx at {NGINX} (apt-get install -y nginx)")
    port, http_port, upstream = free_port(), free_port(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="wallet-nginx-"))
    served = Served(service_env(app, PUBLIC_URL=f"https://127.0.0.1:{port}", TRUSTED_PROXIES="1",
                                JOIN_RATE_LIMIT_PER_MINUTE=str(JOIN_LIMIT)),
                    upstream, tmp_path_factory.mktemp("serve") / "serve.log").start()
    nginx = None
    try:
        config = _nginx_config(folder, port=port, http_port=http_port, upstream=upstream)
        run_as = _as_nobody(folder)
        command = [NGINX, "-p", f"{folder}/", "-c", str(config), "-e", str(folder / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, **run_as)
        assert check.returncode == 0, check.stderr
        with (folder / "stderr.log").open("wb") as err:
            nginx = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT,
                                     start_new_session=True, **run_as)
        _wait_for_port(port, nginx, folder / "error.log")
        assert os.stat(f"/proc/{nginx.pid}").st_uid != 0  # not as root
        served.wait()
        context = ssl.create_default_context(cafile=str(folder / "cert.pem"))
        yield Proxied(port, http_port, served, context, folder / "access.log")
    finally:
        served.stop()
        if nginx is not None and nginx.poll() is None:
            os.killpg(nginx.pid, signal.SIGTERM)
            nginx.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def proxied(deployment: Proxied, app) -> Proxied:
    """The deployment with a merchant of this test's own (tables are emptied after each)."""
    _, key = make_merchant(app, "Proxied coffee")
    return dataclasses.replace(deployment, api_key=key)


def _member(proxied: Proxied) -> tuple[dict[str, Any], dict[str, Any]]:
    program = proxied.api("POST", "/programs", {"name": "Zerno", "kind": "points"})
    member = proxied.api("POST", f"/programs/{program['id']}/members",
                         {"name": "Anna", "phone": "+79123456789"})
    return program, member


def _path(url: str, proxied: Proxied) -> str:
    assert url.startswith(proxied.public_url + "/"), url
    return url.removeprefix(proxied.public_url)


def test_links_are_https_and_the_pass_downloads_through_the_proxy(proxied):
    program, member = _member(proxied)
    assert member["apple_pass_url"].startswith(f"{proxied.public_url}/passes/")
    assert program["join_url"].startswith(f"{proxied.public_url}/join/")
    status, headers, data = proxied.request("GET", _path(member["apple_pass_url"], proxied))
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.pkpass"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pass_json = json.loads(z.read("pass.json"))
    assert pass_json["webServiceURL"] == f"{proxied.public_url}/apple"
    assert headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]  # once


def test_apple_web_service_through_the_proxy(proxied, app):
    _, member = _member(proxied)
    serial = member["serial_number"]
    with app.extensions["wallet"].sessions() as s:
        token = s.scalar(select(LoyaltyCard.authentication_token)
                         .where(LoyaltyCard.serial_number == serial))
    auth = {"Authorization": f"ApplePass {token}"}
    registration = f"/apple/v1/devices/phone-1/registrations/{PASS_TYPE}/{serial}"
    status, _, _ = proxied.request("POST", registration, body={"pushToken": "ab" * 32},
                                   headers=auth)
    assert status == 201
    status, _, data = proxied.request("GET", f"/apple/v1/devices/phone-1/registrations/{PASS_TYPE}")
    assert status == 200 and json.loads(data)["serialNumbers"] == [serial]
    status, headers, data = proxied.request("GET", f"/apple/v1/passes/{PASS_TYPE}/{serial}",
                                            headers=auth)
    assert status == 200 and zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    status, _, _ = proxied.request("GET", f"/apple/v1/passes/{PASS_TYPE}/{serial}",
                                   headers={"If-Modified-Since": headers["Last-Modified"], **auth})
    assert status == 304
    # Device logs record the phone's address, not nginx's, even when the phone claims another.
    status, _, _ = proxied.request("POST", "/apple/v1/log", body={"logs": ["hello"]},
                                   source=BOB, headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    with app.extensions["wallet"].sessions() as s:
        assert s.scalars(select(DeviceLog.remote_addr)).all() == [BOB]


def test_rate_limit_counts_each_client_behind_the_proxy(proxied):
    def submit(source: str, **headers: str) -> int:
        return proxied.request("POST", "/join/no-such-program", body="phone=1", source=source,
                               headers={"Content-Type": "application/x-www-form-urlencoded",
                                        **headers})[0]

    assert [submit(ALICE) for _ in range(JOIN_LIMIT)] == [404] * JOIN_LIMIT
    assert submit(ALICE) == 429
    # A forged X-Forwarded-For does not buy a new budget: nginx appends what it saw.
    assert submit(ALICE, **{"X-Forwarded-For": "198.51.100.7"}) == 429
    assert submit(BOB) == 404  # another customer in the same city is not refused


def test_the_service_knows_the_request_came_over_https(proxied):
    program, _ = _member(proxied)
    join = _path(program["join_url"], proxied) + "?lang=en"
    _, headers, _ = proxied.request("GET", join)
    cookies = [c for c in headers.get_all("Set-Cookie") if c.startswith("lang=")]
    assert len(cookies) == 1 and "; Secure" in cookies[0]  # request.is_secure
    # The same request straight to the service, past nginx, is plain http: no Secure flag.
    conn = http.client.HTTPConnection("127.0.0.1", proxied.served.port, timeout=10)
    conn.request("GET", join)
    direct = [c for c in conn.getresponse().headers.get_all("Set-Cookie") if c.startswith("lang=")]
    conn.close()
    assert len(direct) == 1 and "; Secure" not in direct[0]


def test_plain_http_is_redirected_and_nginx_logs_no_secrets(proxied):
    conn = http.client.HTTPConnection("127.0.0.1", proxied.http_port, timeout=10)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    conn.close()
    assert r.status == 301 and r.headers["Location"] == "https://127.0.0.1/healthz"
    program, member = _member(proxied)
    path = _path(member["apple_pass_url"], proxied)
    serial = member["serial_number"]
    assert proxied.request("GET", path)[0] == 200
    assert proxied.request("GET", path.replace("/passes/", "/c/"))[0] == 200
    assert proxied.request("GET", f"/apple/v1/passes/{PASS_TYPE}/{serial}")[0] == 401
    found = proxied.api("GET", f"/programs/{program['id']}/members?phone=%2B79123456789")
    assert found is not None
    token = path.rsplit("/", 1)[1]
    lookup = f"GET /api/v1/programs/{program['id']}/members "
    deadline = time.monotonic() + 5
    while lookup not in proxied.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx writes the line after the answer
    logged = proxied.access_log.read_text()
    assert "GET /passes/... " in logged and "GET /c/... " in logged
    assert f"GET /apple/v1/passes/{PASS_TYPE}/... " in logged
    assert lookup in logged
    assert token not in logged and serial not in logged and "79123456789" not in logged
