"""Settings: read from ``WALLET_*`` environment variables, validated once at start-up.

Every setting is declared once in ``SETTINGS`` (name, parser, default, help); the README's
configuration table is generated from the same list, so the two cannot drift.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .local_time import DEFAULT_TIME_ZONE
from .local_time import is_time_zone

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


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number of 0 or more")
    return number


def _log_level(value: str) -> str:
    value = value.upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return value


def _log_format(value: str) -> str:
    value = value.lower()
    if value not in ("text", "json"):
        raise ValueError("must be text or json")
    return value


def _metrics_token(value: str) -> str:
    if len(value) < 16 or any(c.isspace() for c in value):
        raise ValueError("must be at least 16 characters without spaces")
    return value


def _region(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("must be a two-letter country code such as RU")
    return value.upper()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _time_zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError("must be an IANA time zone name such as Europe/Moscow")
    return value


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 86400:
        raise ValueError("must be a number of seconds between 0 and 86400")
    return number


def _pass_type_id(value: str) -> str:
    if not value.startswith("pass.") or " " in value:
        raise ValueError("must look like pass.com.example.loyalty")
    return value


def _team_id(value: str) -> str:
    if len(value) != 10 or not value.isalnum() or not value.isupper() and not value.isdigit():
        raise ValueError("must be the 10-character Apple Team ID, such as ABCDE12345")
    return value


def _file(value: str) -> str:
    if not Path(value).is_file():
        raise ValueError(f"no such file: {value}")
    return value


def _issuer_id(value: str) -> str:
    if not value.isdigit():
        raise ValueError("must be the numeric Google Wallet issuer id")
    return value


def _rate(value: str) -> float:
    number = float(value)
    if not 0 < number <= 1000:
        raise ValueError("must be a number of requests per second between 0 and 1000")
    return number


def _id_prefix(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise ValueError("must be 1 to 40 letters, digits, _ or - (such as staging)")
    return value


def _push_backend(value: str) -> str:
    if value not in ("auto", "apns", "null"):
        raise ValueError("must be auto, apns or null")
    return value


def _proxy_count(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 5:
        raise ValueError("must be the number of reverse proxies in front, 0 to 5")
    return number


#: Storage URL schemes of ``WALLET_RATE_LIMIT_STORAGE`` (see wallet_service/ratelimit.py).
RATE_LIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix")


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false (1/0, yes/no, on/off)")


def _hours(value: str) -> float:
    number = float(value)
    if not 0 < number <= 24 * 365:
        raise ValueError("must be a number of hours above 0, at most a year")
    return number


def _rate_limit_storage(value: str) -> str:
    if urlsplit(value).scheme not in RATE_LIMIT_STORAGE_SCHEMES:
        raise ValueError("must be memory:// or a Redis URL such as redis://127.0.0.1:6379/0")
    return value


def _smtp_port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError("must be a port number, 1 to 65535")
    return number


def _smtp_security(value: str) -> str:
    if value not in ("starttls", "tls", "none"):
        raise ValueError("must be starttls, tls or none")
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
    Setting("DEFAULT_TIME_ZONE", _time_zone, DEFAULT_TIME_ZONE,
            "IANA time zone of a merchant created without one (birthdays, expiry dates and "
            "the daily job follow the merchant's local date; each merchant can change it)."),
    Setting("LOG_LEVEL", _log_level, "INFO", "Logging level."),
    Setting("LOG_FORMAT", _log_format, "text",
            "`text` (one line per event) or `json` (one JSON object per line, for a log "
            "collector); either way each line carries the request id (README: Logs)."),
    Setting("METRICS_TOKEN", _metrics_token, None,
            "Bearer token a Prometheus scraper sends for `/metrics` (16 characters or more). "
            "Unset: `/metrics` answers 404.", secret=True),
    Setting("RATE_LIMIT_PER_MINUTE", _positive_int, 120,
            "Requests per minute and client address on the unauthenticated endpoints."),
    Setting("JOIN_RATE_LIMIT_PER_MINUTE", _positive_int, 30,
            "Sign-up submissions per minute and client address. A café's customers share "
            "one Wi-Fi address; a script trying phone numbers still gets few tries."),
    Setting("RATE_LIMIT_STORAGE", _rate_limit_storage, "memory://",
            "Where rate limits are counted: `memory://` (each process alone) or a Redis URL "
            "such as `redis://127.0.0.1:6379/0`, shared by all processes (needs "
            "`pip install 'wallet-service[redis]'`).", secret=True),
    Setting("TRUSTED_PROXIES", _proxy_count, 0,
            "Reverse proxies in front of the service (e.g. `1` behind nginx): their "
            "`X-Forwarded-For/-Proto/-Host/-Port` give the client address and https. "
            "`0`: the headers are ignored."),
    Setting("APPLE_PASS_TYPE_ID", _pass_type_id, "pass.dev.wallet-service.loyalty",
            "Pass Type ID of the signing certificate."),
    Setting("APPLE_TEAM_ID", _team_id, "DEVTEAM000", "Apple Developer Team ID."),
    Setting("APPLE_P12", _file, None,
            "Pass Type ID certificate and key as a .p12 file (instead of the PEM pair)."),
    Setting("APPLE_CERT", _file, None,
            "Pass Type ID certificate (PEM). Unset (and no .p12): development certificates "
            "generated into `<instance>/certs`."),
    Setting("APPLE_KEY", _file, None, "Private key of the certificate (PEM)."),
    Setting("APPLE_KEY_PASSWORD", _text, None, "Password of the key or the .p12.", secret=True),
    Setting("APPLE_WWDR_CERT", _file, None, "Apple WWDR G4 intermediate certificate (PEM or DER)."),
    Setting("PUSH_BACKEND", _push_backend, "auto",
            "`apns`, `null` (no pushes), or `auto`: APNs when real certificates are configured."),
    Setting("APNS_URL", _url, "https://api.push.apple.com", "APNs base URL (HTTP/2)."),
    Setting("APNS_CA_FILE", _file, None,
            "CA bundle that verifies the APNs server. Unset: the system's trust store."),
    Setting("APNS_KEY_ID", _text, None, "Token auth instead of the certificate: the .p8 key id."),
    Setting("APNS_P8", _file, None, "Token auth: the .p8 key file (same team as the pass type)."),
    Setting("APNS_CONNECTIONS", _positive_int, 4,
            "Most HTTP/2 connections to APNs: a large fan-out opens more while every open one "
            "is full (its concurrent streams in use)."),
    Setting("GOOGLE_ISSUER_ID", _issuer_id, None,
            "Google Wallet issuer id. Unset: Google Wallet is off and `google_save_url` is null."),
    Setting("GOOGLE_CREDENTIALS", _file, None,
            "Service-account JSON key file of the issuer (its `token_uri` gives access tokens)."),
    Setting("GOOGLE_API_URL", _url, "https://walletobjects.googleapis.com",
            "Google Wallet REST API base URL."),
    Setting("GOOGLE_RATE_PER_SECOND", _rate, 15.0,
            "Most requests per second the service sends to the Google Wallet API (Google "
            "allows 20), all processes together when `WALLET_RATE_LIMIT_STORAGE` is Redis; "
            "with `memory://` each process keeps it alone. A customer's tap on the save link "
            "goes ahead of background updates."),
    Setting("GOOGLE_ID_PREFIX", _id_prefix, None,
            "Namespace in the ids of Google Wallet classes and objects (`<issuer>.<prefix>."
            "program-1`), so that staging and production can share one issuer. Unset: "
            "`<issuer>.program-1`. Set it before the first card is saved and keep it: saved "
            "cards keep the ids they were saved with."),
    Setting("GOOGLE_ROOT_KEYS_URL", _url, "https://pay.google.com/gp/m/issuer/keys",
            "Where the root keys that sign save/delete callbacks are fetched from."),
    Setting("PUSH_DEBOUNCE_SECONDS", _seconds, 1.0,
            "Coalescing window per device: a card's first change is pushed at once; changes "
            "within this long after a push wait for one more push at the window's end."),
    Setting("WORKER_POLL_SECONDS", _seconds, 5.0,
            "How often an idle worker looks for work in case a wake-up was lost (a commit "
            "wakes it: PostgreSQL `NOTIFY`, or `serve`'s own signal on SQLite)."),
    Setting("WORKER_LEASE_SECONDS", _seconds, 60.0,
            "A claimed job returns to the queue after this long if its worker died."),
    Setting("SIGNING_PROCESSES", _count, 1,
            "Processes each worker signs new passes in ahead of the downloads its pushes "
            "cause, beside the pushes and at a lower CPU priority (PostgreSQL). 0, and always "
            "on SQLite: the worker signs them itself once the pushes are out."),
    Setting("PUSH_MAX_ATTEMPTS", _positive_int, 10, "Tries before a push is marked failed."),
    Setting("WEBHOOKS_ALLOW_PRIVATE", _flag, False,
            "Let webhook endpoints be at private, loopback or link-local addresses (an "
            "intranet receiver). Off: such addresses are refused, checked on the address "
            "each request connects to, so a name cannot be made to point inside later."),
    Setting("WEBHOOK_TIMEOUT_SECONDS", _seconds, 10.0,
            "How long a webhook endpoint has to connect and answer before the try fails."),
    Setting("WEBHOOK_DISABLE_AFTER_HOURS", _hours, 120.0,
            "A webhook endpoint whose deliveries have failed without a success for this "
            "long is disabled, with the reason shown to the merchant."),
    # --- the merchant console -----------------------------------------------------------
    Setting("SIGN_IN_RATE_LIMIT_PER_MINUTE", _positive_int, 10,
            "Console sign-in attempts per client address per minute (a user is also locked "
            "for 15 minutes after 5 wrong passwords in a row)."),
    Setting("SMTP_HOST", _text, None,
            "Outgoing mail server; when set, console invitations, password resets and "
            "members' card links can also go by e-mail."),
    Setting("SMTP_PORT", _smtp_port, 587, "Port of the mail server."),
    Setting("SMTP_SECURITY", _smtp_security, "starttls",
            "How to talk to the mail server: `starttls`, `tls` (implicit TLS, port 465) or "
            "`none` (a local relay only)."),
    Setting("SMTP_USER", _text, None, "User name at the mail server (none: no sign-in)."),
    Setting("SMTP_PASSWORD", _text, None, "Password at the mail server.", secret=True),
    Setting("SMTP_FROM", _text, None,
            "Sender address of the console's e-mails (default: the SMTP user)."),
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
    default_time_zone: str
    log_level: str
    log_format: str
    metrics_token: str | None = field(repr=False)
    rate_limit_per_minute: int
    join_rate_limit_per_minute: int
    rate_limit_storage: str = field(repr=False)
    trusted_proxies: int
    apple_pass_type_id: str
    apple_team_id: str
    apple_p12: str | None
    apple_cert: str | None
    apple_key: str | None
    apple_key_password: str | None = field(repr=False)
    apple_wwdr_cert: str | None
    push_backend: str
    apns_url: str
    apns_ca_file: str | None
    apns_key_id: str | None
    apns_p8: str | None
    apns_connections: int
    google_issuer_id: str | None
    google_credentials: str | None
    google_api_url: str
    google_rate_per_second: float
    google_id_prefix: str | None
    google_root_keys_url: str
    push_debounce_seconds: float
    worker_poll_seconds: float
    worker_lease_seconds: float
    signing_processes: int
    push_max_attempts: int
    webhooks_allow_private: bool
    webhook_timeout_seconds: float
    webhook_disable_after_hours: float
    sign_in_rate_limit_per_minute: int
    smtp_host: str | None
    smtp_port: int
    smtp_security: str
    smtp_user: str | None
    smtp_password: str | None = field(repr=False)
    smtp_from: str | None

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_issuer_id and self.google_credentials)

    @property
    def apple_dev_certs(self) -> bool:
        """True when no real Apple certificate is configured (development set in use)."""
        return not (self.apple_p12 or self.apple_cert)

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
    _check_apple(values)
    plain = {k.lower(): v for k, v in values.items()
             if k not in ("INSTANCE_PATH", "DATABASE_URL", "SECRET_KEY")}
    return Settings(
        instance_path=instance,
        database_url=database_url,
        secret_key=secret_key,
        **plain,
    )


def _check_apple(values: dict[str, Any]) -> None:
    """Settings that only make sense together."""
    if values["APPLE_CERT"] and not values["APPLE_KEY"]:
        raise ConfigurationError("WALLET_APPLE_KEY is required with WALLET_APPLE_CERT",
                                 field="WALLET_APPLE_KEY")
    if values["APPLE_KEY"] and not values["APPLE_CERT"]:
        raise ConfigurationError("WALLET_APPLE_CERT is required with WALLET_APPLE_KEY",
                                 field="WALLET_APPLE_CERT")
    if (values["APPLE_CERT"] or values["APPLE_P12"]) and not values["APPLE_WWDR_CERT"]:
        raise ConfigurationError(
            "WALLET_APPLE_WWDR_CERT is required with real certificates (Apple WWDR G4)",
            field="WALLET_APPLE_WWDR_CERT")
    if values["APPLE_CERT"] and values["APPLE_P12"]:
        raise ConfigurationError("set WALLET_APPLE_P12 or WALLET_APPLE_CERT, not both",
                                 field="WALLET_APPLE_P12")
    if bool(values["GOOGLE_ISSUER_ID"]) != bool(values["GOOGLE_CREDENTIALS"]):
        raise ConfigurationError(
            "WALLET_GOOGLE_ISSUER_ID and WALLET_GOOGLE_CREDENTIALS go together",
            field="WALLET_GOOGLE_CREDENTIALS")
    if bool(values["APNS_KEY_ID"]) != bool(values["APNS_P8"]):
        raise ConfigurationError("WALLET_APNS_KEY_ID and WALLET_APNS_P8 go together",
                                 field="WALLET_APNS_P8")


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
