"""Start-up configuration and the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from wallet_service.cli import main
from wallet_service.config import load_settings
from wallet_service.errors import ConfigurationError


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WALLET_PUBLIC_URL": "example.com"}, "WALLET_PUBLIC_URL"),
        ({"WALLET_DATABASE_URL": "mysql://x"}, "WALLET_DATABASE_URL"),
        ({"WALLET_DB_POOL_SIZE": "zero"}, "WALLET_DB_POOL_SIZE"),
        ({"WALLET_DEFAULT_REGION": "Russia"}, "WALLET_DEFAULT_REGION"),
        ({"WALLET_LOG_LEVEL": "LOUD"}, "WALLET_LOG_LEVEL"),
    ],
)
def test_bad_setting_is_named(tmp_path, env, name):
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path), **env})
    assert name in str(info.value)


def test_secret_value_is_not_echoed(tmp_path):
    settings = load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path),
                                      "WALLET_SECRET_KEY": "hunter2-very-secret"})
    assert "hunter2" not in repr(settings)


def test_embedded_defaults(tmp_path):
    settings = load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'wallet.db'}"
    assert settings.is_sqlite
    first = settings.secret_key
    assert len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path)}).secret_key == first


def test_cli_creates_schema_and_merchant(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["db", "check"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["create-merchant", "Bakery", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["merchant_id"] >= 1 and out["api_key"].startswith("wsk_")

    from wallet_service import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    client = app.test_client()
    auth = {"Authorization": f"Bearer {out['api_key']}"}
    assert client.get("/api/v1/programs", headers=auth).status_code == 200

    r = runner.invoke(main, ["create-api-key", "--merchant-id", str(out["merchant_id"]), "--json"])
    second = json.loads(r.output)
    r = runner.invoke(main, ["revoke-api-key", "--merchant-id", str(out["merchant_id"]),
                             str(second["key_id"])])
    assert r.exit_code == 0, r.output
    assert client.get("/api/v1/programs",
                      headers={"Authorization": f"Bearer {second['api_key']}"}).status_code == 401
    app.extensions["wallet"].engine.dispose()


def test_cli_reports_bad_configuration_plainly(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("WALLET_PUBLIC_URL", "not a url")
    r = CliRunner().invoke(main, ["db", "upgrade"])
    assert r.exit_code != 0
    assert "WALLET_PUBLIC_URL" in r.output
    assert "Traceback" not in r.output


def test_demo_prepares_merchant_program_and_key(tmp_path):
    from wallet_service import create_app
    from wallet_service.demo import prepare_demo

    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    lines = list(prepare_demo(app.extensions["wallet"], "http://127.0.0.1:8000"))
    key = next(line for line in lines if line.startswith("API key")).split(": ")[1]
    again = list(prepare_demo(app.extensions["wallet"], "http://127.0.0.1:8000"))  # re-runnable
    assert any("program 1" in line for line in again)
    client = app.test_client()
    programs = client.get("/api/v1/programs", headers={"Authorization": f"Bearer {key}"}).json
    assert len(programs["items"]) == 1
    assert programs["items"][0]["tiers"][1]["name"] == "Silver"
    app.extensions["wallet"].engine.dispose()


def test_dev_certs_and_doctor(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["dev-certs"])
    assert r.exit_code == 0, r.output
    certs = tmp_path / "certs"
    assert (certs / "pass-key.pem").stat().st_mode & 0o077 == 0
    r = runner.invoke(main, ["doctor"])
    assert r.exit_code == 0, r.output
    assert "development set" in r.output

    monkeypatch.setenv("WALLET_APPLE_CERT", str(certs / "pass-cert.pem"))
    monkeypatch.setenv("WALLET_APPLE_KEY", str(certs / "pass-key.pem"))
    monkeypatch.setenv("WALLET_APPLE_WWDR_CERT", str(certs / "wwdr.pem"))
    r = runner.invoke(main, ["doctor"])
    assert r.exit_code == 0, r.output
    assert "error" not in r.output

    monkeypatch.setenv("WALLET_APPLE_PASS_TYPE_ID", "pass.com.someone.else")
    r = runner.invoke(main, ["doctor"])
    assert r.exit_code == 1
    assert "pass.com.someone.else" in r.output

    monkeypatch.setenv("WALLET_APPLE_PASS_TYPE_ID", "pass.dev.wallet-service.loyalty")
    monkeypatch.setenv("WALLET_APPLE_KEY", str(certs / "wwdr-key.pem"))
    r = runner.invoke(main, ["doctor"])
    assert r.exit_code == 1
    assert "private" in r.output.lower()
    assert "BEGIN" not in r.output  # no key material in the explanation


def test_real_certificate_settings_go_together(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path), "WALLET_APPLE_CERT": str(cert)})
    assert "WALLET_APPLE_KEY" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={"WALLET_INSTANCE_PATH": str(tmp_path),
                               "WALLET_APPLE_CERT": str(tmp_path / "missing.pem")})
    assert "WALLET_APPLE_CERT" in str(info.value) and "no such file" in str(info.value)
