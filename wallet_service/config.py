"""Settings: read from ``WALLET_*`` environment variables, validated once at start-up.

Every setting is declared once in ``SETTINGS`` (name, parser, default, help); the README's
configuration table is generated from the same list, so the two cannot drift.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

PREFIX = "WALLET_"


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql")):
        raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of 1 or more")
    return number


def _log_level(value: str) -> str:
    value = value.upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return value


def _region(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("must be a two-letter country code such as RU")
    return value.upper()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_PATH", _text, "instance",
            "Folder for the embedded database, generated secrets and development certificates."),
    Setting("DATABASE_URL", _database_url, None,
            "SQLAlchemy URL. Unset: SQLite file `<instance>/wallet.db`. "
            "PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("DB_POOL_SIZE", _positive_int, 10, "Connections per process (PostgreSQL)."),
    Setting("PUBLIC_URL", _url, "http://127.0.0.1:8000",
            "The address customers and phones reach the service at (links, webServiceURL)."),
    Setting("SECRET_KEY", _text, None,
            "Signs browser sessions and download links. Unset: generated once into the "
            "instance folder.", secret=True),
    Setting("DEFAULT_REGION", _region, "RU",
            "Country assumed for phone numbers written without a country code."),
    Setting("LOG_LEVEL", _log_level, "INFO", "Logging level."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process."""

    instance_path: Path
    database_url: str
    db_pool_size: int
    public_url: str
    secret_key: str = field(repr=False)
    default_region: str
    log_level: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build ``Settings`` from the environment, then ``overrides`` (keys without the prefix).

    :raises ConfigurationError: naming the first setting that is wrong.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        env_name = PREFIX + setting.name
        if setting.name in overrides:
            raw = overrides.pop(setting.name)
        elif env_name in environ and environ[env_name] != "":
            raw = environ[env_name]
        else:
            values[setting.name] = setting.default
            continue
        if raw is None or not isinstance(raw, str):
            values[setting.name] = raw
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise ConfigurationError(
                f"{env_name}={shown} is not valid: {exc}", field=env_name
            ) from None

    instance = Path(values["INSTANCE_PATH"]).resolve()
    database_url = values["DATABASE_URL"] or f"sqlite:///{instance / 'wallet.db'}"
    secret_key = values["SECRET_KEY"] or _instance_secret(instance)
    return Settings(
        instance_path=instance,
        database_url=database_url,
        db_pool_size=values["DB_POOL_SIZE"],
        public_url=values["PUBLIC_URL"],
        secret_key=secret_key,
        default_region=values["DEFAULT_REGION"],
        log_level=values["LOG_LEVEL"],
        extra=overrides,
    )


def _instance_secret(instance: Path) -> str:
    """A secret generated on first start and kept in the instance folder (mode 0600)."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def settings_table() -> str:
    """The configuration table for the README, in Markdown."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = "—" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{PREFIX}{s.name}` | {default} | {s.help} |")
    return "\n".join(rows)


def describe(name: str) -> Setting:
    return _BY_NAME[name]
