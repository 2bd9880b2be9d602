"""The ``wallet-service`` command."""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import click
from flask import Flask

from .errors import WalletError
from .permissions import DEFAULT_SCOPE
from .permissions import Scope

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .config import Settings
    from .state import WalletState
    from .wakeup import Doorbell


def _app(overrides: dict[str, Any] | None = None) -> Flask:
    from .app import create_app

    try:
        return create_app(overrides)
    except WalletError as exc:
        raise click.ClickException(exc.message) from None


def _settings(overrides: dict[str, Any] | None = None) -> Settings:
    from .config import load_settings

    try:
        return load_settings(overrides)
    except WalletError as exc:
        raise click.ClickException(exc.message) from None


def _state(overrides: dict[str, Any] | None = None) -> WalletState:
    """The process's state for a command that needs no web app."""
    from .state import build_state

    return build_state(_settings(overrides))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """wallet-service: loyalty cards in Apple Wallet and Google Wallet, kept live.

    Configuration comes from WALLET_* environment variables (see the README).
    """


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Build the schema, or upgrade it to REVISION (default: the latest)."""
    from .migrate import upgrade

    state = _state()
    try:
        upgrade(state.engine, revision)
    finally:
        state.engine.dispose()
    click.echo(f"database at revision {revision}")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from alembic.util import CommandError

    from .migrate import check

    try:
        check(_state().engine)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("models and migrations agree")


@main.command("create-merchant")
@click.argument("name")
@click.option("--time-zone", default=None, metavar="ZONE",
              help="IANA time zone of the merchant's days, such as Asia/Vladivostok "
                   "(default: WALLET_DEFAULT_TIME_ZONE).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create_merchant(name: str, time_zone: str | None, as_json: bool) -> None:
    """Create a merchant and print its first API key (scope admin, shown only once)."""
    from .services.merchants import create_merchant as create

    state = _state()
    with state.sessions() as session:
        try:
            merchant, key, raw = create(
                session, name, time_zone=time_zone or state.settings.default_time_zone)
        except WalletError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant.id, "api_key": raw,
                               "scope": key.scope, "time_zone": merchant.time_zone}))
    else:
        click.echo(f"merchant {merchant.id} created ({merchant.time_zone}); "
                   f"API key ({key.scope}, shown once): {raw}")


@main.command("create-api-key")
@click.option("--merchant-id", type=int, required=True)
@click.option("--name", default="cli")
@click.option("--scope", type=click.Choice([scope.value for scope in Scope]),
              default=DEFAULT_SCOPE.value, show_default=True,
              help="What the key may do: admin everything, till what a point of sale needs "
                   "(read, enroll, transactions), read only read (README: Permissions).")
@click.option("--json", "as_json", is_flag=True)
def create_api_key(merchant_id: int, name: str, scope: str, as_json: bool) -> None:
    """Issue another API key for a merchant."""
    from .models import Merchant
    from .services.merchants import create_api_key as create

    with _state().sessions() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"merchant {merchant_id} not found")
        key, raw = create(session, merchant_id, name, scope=Scope(scope))
        session.commit()
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant_id, "key_id": key.id, "api_key": raw,
                               "scope": key.scope}))
    else:
        click.echo(f"API key {key.id} ({key.scope}, shown once): {raw}")


@main.command("revoke-api-key")
@click.option("--merchant-id", type=int, required=True)
@click.argument("key_id", type=int)
def revoke_api_key(merchant_id: int, key_id: int) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from .services.merchants import revoke_api_key as revoke

    with _state().sessions() as session:
        try:
            revoke(session, merchant_id, key_id)
        except WalletError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
    click.echo(f"API key {key_id} revoked")


@main.command("dev-certs")
@click.option("--out", type=click.Path(), default=None,
              help="Folder [default: <instance>/certs, where the service looks].")
@click.option("--force", is_flag=True, help="Replace an existing set.")
def dev_certs(out: str | None, force: bool) -> None:
    """Create development certificates: a stand-in WWDR CA and a pass certificate.

    Passes signed with them verify with openssl but do not install on an iPhone; see
    certs.example/README.md for real certificates.
    """
    from .apple.assets import generate_dev_certs

    settings = _settings()
    target = out or str(settings.instance_path / "certs")
    paths = generate_dev_certs(target, settings.apple_pass_type_id, settings.apple_team_id,
                               overwrite=force)
    click.echo(f"pass certificate: {paths.certificate}")
    click.echo(f"private key:      {paths.private_key}")
    click.echo(f"WWDR stand-in:    {paths.wwdr_certificate}")


@main.command()
def doctor() -> None:
    """Check the configuration and explain what is wrong; exits 1 on any error."""
    from .apple.assets import doctor as apple_doctor
    from .config import load_settings

    try:
        settings = load_settings()
    except WalletError as exc:
        click.echo(f"error   settings: {exc.message}")
        sys.exit(1)
    findings: list[tuple[str, str, str]] = []
    if settings.apple_dev_certs:
        findings.append(("warning", "apple", "no Apple certificate configured: using the "
                         "development set, whose passes do not install on an iPhone "
                         "(see certs.example/README.md)"))
        from .services.apple import signer_from_settings

        try:
            signer_from_settings(settings)
        except WalletError as exc:
            findings.append(("error", "apple", exc.message))
    else:
        for f in apple_doctor(
            pass_type_identifier=settings.apple_pass_type_id,
            team_identifier=settings.apple_team_id, wwdr_cert=settings.apple_wwdr_cert,
            p12=settings.apple_p12, cert=settings.apple_cert, key=settings.apple_key,
            password=settings.apple_key_password,
        ):
            findings.append((f.level, f.check, f.message))
    findings.extend(_google_findings(settings))
    if not settings.public_url.startswith("https://"):
        findings.append(("warning", "public url", f"WALLET_PUBLIC_URL is {settings.public_url}: "
                         "iPhones only talk to an https webServiceURL in production"))
    findings.extend(_limit_findings(settings))
    from sqlalchemy import text

    from .db import make_engine

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        findings.append(("ok", "database", "reachable"))
    except Exception as exc:  # any driver error means the same to an operator
        findings.append(("error", "database", f"cannot connect: {type(exc).__name__}"))
    finally:
        engine.dispose()
    for level, check, message in findings:
        click.echo(f"{level:<7} {check}: {message}")
    if any(level == "error" for level, _, _ in findings):
        sys.exit(1)


def _google_findings(settings: Any) -> list[tuple[str, str, str]]:
    """Google Wallet: off, or the key file loads and its token endpoint gives a token."""
    if not settings.google_enabled:
        return [("ok", "google", "Google Wallet is off (WALLET_GOOGLE_ISSUER_ID not set)")]
    from .google import GoogleWalletError
    from .google import load_credentials

    try:
        credentials = load_credentials(settings.google_credentials)
    except (GoogleWalletError, ValueError, OSError) as exc:
        return [("error", "google", f"cannot load WALLET_GOOGLE_CREDENTIALS: {exc}")]
    import google.auth.transport.requests

    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except Exception as exc:  # any transport or auth failure reads the same to an operator
        return [("error", "google", f"no access token from {credentials._token_uri}: "
                 f"{type(exc).__name__}")]
    return [("ok", "google", f"service account {credentials.service_account_email} "
             f"gets access tokens for issuer {settings.google_issuer_id}")]


def _limit_findings(settings: Settings) -> list[tuple[str, str, str]]:
    """Rate limits: where they are counted (and that a shared store answers), and whether a
    TLS proxy in front is trusted to name the client."""
    from urllib.parse import urlsplit

    from .ratelimit import is_shared
    from .ratelimit import make_storage

    findings: list[tuple[str, str, str]] = []
    if settings.public_url.startswith("https://") and not settings.trusted_proxies:
        findings.append(("warning", "proxy", "WALLET_PUBLIC_URL is https but "
                         "WALLET_TRUSTED_PROXIES is 0: behind a TLS proxy every customer counts "
                         "as the proxy's address in the rate limits (see deploy/README.md)"))
    parts = urlsplit(settings.rate_limit_storage)
    where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # no password
    try:
        storage = make_storage(settings.rate_limit_storage)
    except WalletError as exc:
        return [*findings, ("error", "rate limits", exc.message)]
    if not is_shared(storage):
        findings.append(("ok", "rate limits", "counted by each process on its own (memory://); "
                         "with several web processes, share them in Redis"))
    elif storage.check():
        findings.append(("ok", "rate limits", f"shared by all processes in {where}"))
    else:
        findings.append(("error", "rate limits", f"{where} does not answer "
                         "(WALLET_RATE_LIMIT_STORAGE)"))
    return findings


def _serve_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--threads", default=4, show_default=True, help="Threads per worker.")(f)
    f = click.option("--workers", default=None, type=int,
                     help="Worker processes [default: number of CPUs].")(f)
    f = click.option("--port", default=8000, show_default=True)(f)
    f = click.option("--host", default="127.0.0.1", show_default=True)(f)
    return f


@main.command()
@_serve_options
@click.option("--no-worker", is_flag=True,
              help="Web only; run 'wallet-service worker' processes separately.")
def serve(host: str, port: int, workers: int | None, threads: int, no_worker: bool) -> None:
    """Run the service (web and background worker) on the configured database."""
    app = _app()
    _run_server(app, host, port, workers, threads, with_worker=not no_worker)


@main.command()
def worker() -> None:
    """Deliver pass updates: sequence card changes and push to devices. Run as many as
    you like on PostgreSQL; they share the queue."""
    _run_worker(_state())


def _run_worker(state: WalletState, doorbell: Doorbell | None = None) -> None:
    import signal
    import threading

    from .worker import Worker

    try:
        worker = Worker.from_state(state, wakeups=[doorbell] if doorbell else [])
    except WalletError as exc:
        raise click.ClickException(exc.message) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.run(stop)
    finally:
        state.close()


@main.command()
@_serve_options
@click.option("--scenario", type=click.Choice(["coffee-shop"]), default=None,
              help="Play a scripted week of purchases first; then serve its cards.")
def demo(host: str, port: int, workers: int | None, threads: int,
         scenario: str | None) -> None:
    """First run on the embedded defaults: schema, a demo merchant and program, then serve."""
    import os

    from .demo import play_scenario
    from .demo import prepare_demo

    base = f"http://{host}:{port}"
    # Links in the demo's cards should point at the address it serves on.
    app = _app(None if os.environ.get("WALLET_PUBLIC_URL") else {"PUBLIC_URL": base})
    state = app.extensions["wallet"]
    lines = (prepare_demo(state, base) if scenario is None
             else play_scenario(state, scenario, base))
    for line in lines:
        click.echo(line)
    sys.stdout.flush()
    _run_server(app, host, port, workers, threads, with_worker=True)


def _run_server(app: Flask, host: str, port: int, workers: int | None, threads: int, *,
                with_worker: bool) -> None:
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or multiprocessing.cpu_count())
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", "wallet_service.accesslog.RedactingLogger")
            self.cfg.set("graceful_timeout", 10)

        def load(self) -> Flask:
            return app

    # Connections must not cross the fork into the worker processes.
    app.extensions["wallet"].engine.dispose()
    background = None
    if with_worker:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        background = context.Process(target=_worker_process, args=(send,),
                                     name="wallet-service worker", daemon=True)
        background.start()
        send.close()
        _ring_worker_on_commit(app.extensions["wallet"], receive)
    try:
        _Server().run()
    finally:
        if background is not None and background.is_alive():
            background.terminate()
            background.join(10)


def _worker_process(send: Connection) -> None:
    """The background worker beside the web server (a separate process: its own GIL). On
    SQLite it binds a doorbell and sends its address to the server, whose web processes ring
    it after each commit that publishes a change; on PostgreSQL, NOTIFY wakes it."""
    from .wakeup import Doorbell

    doorbell = None
    try:
        state = _state()
        if state.settings.is_sqlite:
            doorbell = Doorbell()
            send.send(doorbell.address)
    finally:
        send.close()
    _run_worker(state, doorbell)


def _ring_worker_on_commit(state: WalletState, receive: Connection) -> None:
    """Before the web processes fork: have them ring the worker's doorbell (SQLite)."""
    from .wakeup import ring_after_commit

    if not state.settings.is_sqlite:
        receive.close()
        return
    try:
        address = receive.recv() if receive.poll(60) else None
    except EOFError:  # the worker exited first; it says why on stderr
        address = None
    finally:
        receive.close()
    if address is not None:
        ring_after_commit(state.sessions, address)
    else:
        click.echo("warning: the background worker did not start in time; pushes wait for "
                   "its poll (WALLET_WORKER_POLL_SECONDS)", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
