"""``wallet-service backup`` / ``restore``: a backup of a running embedded service, restored
into a fresh folder, serves the same links, passes that still verify, and updates that still
reach the phone. SQLite only: PostgreSQL is backed up with pg_dump (README: Backups)."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from api_support import Api
from api_support import make_merchant
from apns_standin import ApnsStandIn
from apns_standin import make_certificates
from apple_device import Device
from apple_device import balance_of
from click.testing import CliRunner
from push_support import PASS_TYPE
from push_support import WorkerFactory
from push_support import tokens_of
from wallet_pass import BASE

from wallet_service import create_app
from wallet_service.cli import main
from wallet_service.migrate import upgrade


@pytest.fixture
def clean_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("WALLET_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def embedded_app(folder: Path):
    """A service on its embedded defaults in ``folder``: SQLite, generated secret key and
    development certificates."""
    app = create_app({"INSTANCE_PATH": str(folder), "PUBLIC_URL": BASE})
    app.config["TESTING"] = True
    upgrade(app.extensions["wallet"].engine)
    return app


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def verify_signature(pkpass: bytes, wwdr: Path, work: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(pkpass)) as archive:
        for name in ("manifest.json", "signature"):
            (work / name).write_bytes(archive.read(name))
    verify = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(work / "signature"),
         "-content", str(work / "manifest.json"), "-CAfile", str(wwdr), "-purpose", "any",
         "-out", "/dev/null"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_a_restored_backup_serves_the_same_cards_and_pushes(tmp_path, clean_env):
    old, new = tmp_path / "old", tmp_path / "new"
    source = embedded_app(old)
    client = source.test_client()
    merchant_id, key = make_merchant(source, "Bakery")
    api = Api(client, key, merchant_id)
    member = api.member(api.program()["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 40})
    assert client.get(member["apple_pass_url"].removeprefix(BASE)).status_code == 200
    tokens = tokens_of(source)
    phone = Device(client, "lib-1", "ab" * 32)
    serial = member["serial_number"]
    assert phone.register(serial, tokens[serial]).status_code == 201

    # Online: the source service still has its connections open.
    archive = tmp_path / "wallet-backup.tar.gz"
    result = run({"WALLET_INSTANCE_PATH": str(old)}, "backup", str(archive))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "database/wallet.db", "instance/secret_key",
            "instance/certs/pass-key.pem", "instance/certs/wwdr.pem"} <= names
    assert not any(n.startswith("instance/wallet.db") for n in names)
    # A second backup to the same name is refused, the first is kept.
    assert run({"WALLET_INSTANCE_PATH": str(old)}, "backup", str(archive)).exit_code != 0
    source.extensions["wallet"].engine.dispose()

    result = run({"WALLET_INSTANCE_PATH": str(new)}, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert (new / "secret_key").read_text() == (old / "secret_key").read_text()
    assert stat.S_IMODE((new / "certs" / "pass-key.pem").stat().st_mode) == 0o600
    # Restoring over it again is refused unless forced.
    again = run({"WALLET_INSTANCE_PATH": str(new)}, "restore", str(archive))
    assert again.exit_code != 0 and "would replace" in again.output

    restored = embedded_app(new)
    client = restored.test_client()
    # The links the customer already has still open, and the pass still verifies.
    assert client.get(member["card_url"].removeprefix(BASE)).status_code == 200
    download = client.get(member["apple_pass_url"].removeprefix(BASE))
    assert download.status_code == 200
    verify_signature(download.data, new / "certs" / "wwdr.pem", tmp_path)
    # The same API key works; an update reaches the registered phone through APNs.
    api = Api(client, key, merchant_id)
    assert api.post(f"/members/{member['id']}/transactions",
                    {"type": "earn", "points": 2}).status_code == 201
    certs = make_certificates(tmp_path / "apns")
    bundle = certs.folder / "trusted.pem"
    bundle.write_bytes(certs.ca_file.read_bytes() + (new / "certs" / "wwdr.pem").read_bytes())
    with ApnsStandIn(certs=dataclasses.replace(certs, ca_file=bundle), topic=PASS_TYPE) as apns:
        workers = WorkerFactory(restored, apns)
        try:
            workers().run_once()
        finally:
            workers.close()
        assert [r.token for r in apns.requests] == [phone.push_token]
    phone.client = client
    assert phone.sync(tokens_of(restored)) == [member["serial_number"]]
    assert balance_of(phone.passes[member["serial_number"]]) == 42
    restored.extensions["wallet"].engine.dispose()


def test_restore_refuses_what_is_not_a_backup(tmp_path, clean_env):
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        data = b"hello"
        info = tarfile.TarInfo("readme.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = run({"WALLET_INSTANCE_PATH": str(tmp_path / "x")}, "restore", str(bogus))
    assert result.exit_code != 0 and "not a wallet-service backup" in result.output
