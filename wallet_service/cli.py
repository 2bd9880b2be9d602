"""The ``wallet-service`` command."""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import Flask

from .errors import WalletError


def _app() -> Flask:
    from .app import create_app

    try:
        return create_app()
    except WalletError as exc:
        raise click.ClickException(exc.message) from None


def _state(app: Flask) -> Any:
    return app.extensions["wallet"]


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

    app = _app()
    upgrade(_state(app).engine, revision)
    click.echo(f"database at revision {revision}")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from alembic.util import CommandError

    from .migrate import check

    try:
        check(_state(_app()).engine)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("models and migrations agree")


@main.command("create-merchant")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create_merchant(name: str, as_json: bool) -> None:
    """Create a merchant and print its first API key (shown only once)."""
    from .services.merchants import create_merchant as create

    app = _app()
    with _state(app).sessionmaker() as session:
        merchant, _key, raw = create(session, name)
        session.commit()
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant.id, "api_key": raw}))
    else:
        click.echo(f"merchant {merchant.id} created; API key (shown once): {raw}")


@main.command("create-api-key")
@click.option("--merchant-id", type=int, required=True)
@click.option("--name", default="cli")
@click.option("--json", "as_json", is_flag=True)
def create_api_key(merchant_id: int, name: str, as_json: bool) -> None:
    """Issue another API key for a merchant."""
    from .models import Merchant
    from .services.merchants import create_api_key as create

    app = _app()
    with _state(app).sessionmaker() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"merchant {merchant_id} not found")
        key, raw = create(session, merchant_id, name)
        session.commit()
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant_id, "key_id": key.id, "api_key": raw}))
    else:
        click.echo(f"API key {key.id} (shown once): {raw}")


@main.command("revoke-api-key")
@click.option("--merchant-id", type=int, required=True)
@click.argument("key_id", type=int)
def revoke_api_key(merchant_id: int, key_id: int) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from .services.merchants import revoke_api_key as revoke

    app = _app()
    with _state(app).sessionmaker() as session:
        try:
            revoke(session, merchant_id, key_id)
        except WalletError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
    click.echo(f"API key {key_id} revoked")


def _serve_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--threads", default=4, show_default=True, help="Threads per worker.")(f)
    f = click.option("--workers", default=None, type=int,
                     help="Worker processes [default: number of CPUs].")(f)
    f = click.option("--port", default=8000, show_default=True)(f)
    f = click.option("--host", default="127.0.0.1", show_default=True)(f)
    return f


@main.command()
@_serve_options
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """Run the service (web and background workers) on the configured database."""
    app = _app()
    _run_server(app, host, port, workers, threads)


@main.command()
@_serve_options
def demo(host: str, port: int, workers: int | None, threads: int) -> None:
    """First run on the embedded defaults: schema, a demo merchant and program, then serve."""
    from .demo import prepare_demo

    app = _app()
    base = f"http://{host}:{port}"
    for line in prepare_demo(app, base):
        click.echo(line)
    sys.stdout.flush()
    _run_server(app, host, port, workers, threads)


def _run_server(app: Flask, host: str, port: int, workers: int | None, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or multiprocessing.cpu_count())
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", 10)

        def load(self) -> Flask:
            return app

    # Connections must not cross the fork into the worker processes.
    _state(app).engine.dispose()
    _Server().run()


if __name__ == "__main__":  # pragma: no cover
    main()
