"""The ``wallet-service`` command."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import click
from flask import Flask

from .errors import WalletError
from .permissions import DEFAULT_SCOPE
from .permissions import Role
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


@main.command("create-user")
@click.argument("email")
@click.option("--merchant-id", type=int, required=True)
@click.option("--role", type=click.Choice([role.value for role in Role]), default="owner",
              show_default=True, help="What the user may do in the console (README: "
                                      "Permissions).")
@click.option("--locale", type=click.Choice(["ru", "en"]), default="ru", show_default=True,
              help="The console's language for the user.")
def create_user(email: str, merchant_id: int, role: str, locale: str) -> None:
    """Create a console user. The password is read from standard input (one line); with
    nothing there, one is generated and printed once."""
    from .services.accounts import create_user as create
    from .services.accounts import generate_password

    typed = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.readline().strip()
    password = typed or generate_password()
    state = _state()
    try:
        with state.sessions() as session:
            try:
                user = create(session, merchant_id, email, Role(role), password=password,
                              locale=locale)
            except WalletError as exc:
                raise click.ClickException(exc.message) from None
            session.commit()
    finally:
        state.engine.dispose()
    click.echo(f"console user {user.id} ({user.email}, {user.role}) created")
    if not typed:
        click.echo(f"password (shown once): {password}")


@contextlib.contextmanager
def _disposing(state: WalletState) -> Iterator[None]:
    """Close the state's database connections at the end of a command."""
    try:
        yield
    finally:
        state.engine.dispose()


@main.command("import-members")
@click.argument("file", type=click.File("rb"))
@click.option("--program-id", type=int, required=True, help="The program to import into.")
@click.option("--mapping", "mappings", multiple=True, metavar="HEADER=FIELD",
              help="Map a column to a field (phone, name, last_name, first_name, middle_name, "
                   "email, birthday, external_id, balance, stamps, tier, joined); HEADER= ignores "
                   "it. Repeat it, or give a JSON object. Columns left out are mapped by "
                   "their names (Телефон, ФИО, Баланс, phone, name, points ...).")
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rejected rows (row, field, reason) to this CSV file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_members(file: Any, program_id: int, mappings: tuple[str, ...], dry_run: bool,
                   rejected_path: Path | None, as_json: bool) -> None:
    """Import members with their balances, stamps, tiers and birthdays from a CSV FILE
    (UTF-8 or Windows-1251, comma or semicolon; "-" reads standard input). Rows are
    checked whole: the rejected ones are listed with their reasons, the others go in. The
    phone is the key: members already in the program are left as they are, so running the
    same file again adds nothing. Progress goes to standard error."""
    import csv

    from .models import LoyaltyProgram
    from .services import audit
    from .services.imports import import_members as run_import
    from .services.imports import iter_rejected_csv
    from .services.imports import parse_mapping

    data = file.read()
    state = _state()
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="importing", file=sys.stderr,
                                    show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    with _disposing(state), state.sessions() as session:
        program = session.get(LoyaltyProgram, program_id)
        if program is None:
            raise click.ClickException(f"program {program_id} not found")
        try:
            report = run_import(session, program.merchant_id, program.id, data,
                                default_region=state.settings.default_region,
                                mapping=parse_mapping(mappings), dry_run=dry_run,
                                progress=progress)
        except WalletError as exc:
            raise click.ClickException(exc.message) from None
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        if dry_run:
            session.rollback()
        else:
            audit.record(session, merchant_id=program.merchant_id,
                         actor=audit.Actor("system", None, "wallet-service import-members"),
                         action="members.import", target=f"program:{program.id}",
                         changes={"rows": report.rows, "imported": report.imported,
                                  "existing": report.existing,
                                  "rejected": len(report.rejected)})
            session.commit()
    if rejected_path is not None:
        with rejected_path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(iter_rejected_csv(report))
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps(asdict(report), ensure_ascii=False))
        return
    verb = "would import" if dry_run else "imported"
    click.echo(f"{report.rows} rows ({report.encoding}, '{report.delimiter}'): {verb} "
               f"{report.imported}, already in the program {report.existing}, rejected "
               f"{len(report.rejected)}; balance {report.points}, stamps {report.stamps}")
    click.echo("columns: " + ", ".join(f"{h} → {f}" for h, f in report.columns.items())
               + ("; ignored: " + ", ".join(report.ignored) if report.ignored else ""))
    for r in report.rejected[:50]:
        click.echo(f"row {r.row}: {r.field}: {r.reason}", err=True)
    if len(report.rejected) > 50:
        more = f"; all of them in {rejected_path}" if rejected_path else " (--rejected FILE)"
        click.echo(f"... {len(report.rejected) - 50} more rejected rows{more}", err=True)


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
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a backup to PATH (a new .tar.gz): the SQLite database, copied online while the
    service runs, and the instance folder's secret key and development certificates. On
    PostgreSQL only the instance folder: back the database up with pg_dump (README)."""
    from .backup import backup as make_backup

    settings = _settings()
    try:
        report = make_backup(path, instance=settings.instance_path,
                             database_url=settings.database_url)
    except WalletError as exc:
        raise click.ClickException(exc.message) from None
    what = "the database and " if report.database else ""
    click.echo(f"{path}: {what}{len(report.files)} instance files "
               f"({', '.join(report.files) or 'none'})")
    if not report.database:
        click.echo("the database is PostgreSQL: back it up with pg_dump (README: Backups)")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace an existing database and instance files (stop the service first).")
def restore(path: Path, force: bool) -> None:
    """Restore a backup made by 'wallet-service backup' into the configured instance folder
    and SQLite database (WALLET_INSTANCE_PATH, WALLET_DATABASE_URL); then run
    'wallet-service db upgrade' when the backup is from an older release."""
    from .backup import restore as put_back

    # A placeholder key: loading the settings must not generate a secret the backup's
    # would then have to replace.
    settings = _settings({"SECRET_KEY": "restoring"})
    try:
        report = put_back(path, instance=settings.instance_path,
                          database_url=settings.database_url, force=force)
    except WalletError as exc:
        raise click.ClickException(exc.message) from None
    what = "the database and " if report.database else ""
    click.echo(f"restored {what}{len(report.files)} instance files into "
               f"{settings.instance_path}")


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
        from .apple.assets import expiry_findings
        from .services.apple import signer_from_settings

        try:
            signer = signer_from_settings(settings)
        except WalletError as exc:
            findings.append(("error", "apple", exc.message))
        else:
            for f in expiry_findings(signer.certificate, signer.wwdr_certificate):
                findings.append((f.level, f.check, f.message))
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
    _metrics_folder()
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

    from . import logs
    from .worker import Worker

    logs.configure(state.settings.log_level, state.settings.log_format)
    try:
        worker = Worker.from_state(state, wakeups=[doorbell] if doorbell else [])
    except WalletError as exc:
        raise click.ClickException(exc.message) from None
    stop = threading.Event()

    def stopping(*_: object) -> None:
        # Not ``stop.set()`` here: the handler runs on the main thread, which may be inside
        # ``stop.set()`` already (holding the event's lock) when the signal arrives.
        threading.Thread(target=stop.set, name="worker-stop", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
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
    _metrics_folder()
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

    from .accesslog import ACCESS_LOG_FORMAT

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or multiprocessing.cpu_count())
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            json_logs = app.extensions["wallet"].settings.log_format == "json"
            self.cfg.set("logger_class", "wallet_service.accesslog." + (
                "JsonRedactingLogger" if json_logs else "RedactingLogger"))
            self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("child_exit", _child_exit)

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


def _metrics_folder() -> None:
    """With ``WALLET_METRICS_TOKEN`` set, the web processes and the worker beside them
    count into one folder (prometheus_client's multi-process mode): the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, else a private one made now, before anything imports
    prometheus_client, and inherited by every process ``serve`` starts."""
    import atexit
    import os
    import shutil
    import tempfile

    if not _settings().metrics_token or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="wallet-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    owner = os.getpid()  # forked web processes inherit the hook; only this one removes it
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))


def _child_exit(_server: Any, worker: Any) -> None:
    from .metrics import mark_process_dead

    mark_process_dead(worker.pid)


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
