"""The composition root: everything a process builds once from its settings.

``build_state(settings)`` makes the database engine and sessions, the Apple pass factory
(signer and cache), the push client, the Google Wallet adapter and the rate limiters. The
web app (``create_app``) and the worker (``wallet-service worker``) both start from it, so
neither needs the other: the worker runs without a Flask app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from limits.storage import Storage
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from .config import Settings
from .db import make_engine
from .db import make_sessionmaker
from .push import PushClient
from .ratelimit import RateLimiter
from .ratelimit import SharedRequestRate
from .ratelimit import make_storage
from .services.apple import PassFactory
from .services.google import GoogleWallet
from .wakeup import Notifier
from .wakeup import notify_after_commit


@dataclass
class Limiters:
    """Per-client request budgets of the unauthenticated endpoints, one field per kind of
    request: ``wallet().limiters.<name>.allow(client)`` gives the seconds to wait (0: go
    ahead). A new kind is one more field, built in ``build_state`` with ``limiter(name, n)``
    so that it shares the configured storage under its own name."""

    apple: RateLimiter  # Apple's web service: device logs, registrations, pass fetches
    pages: RateLimiter  # the customer's pages
    join: RateLimiter  # sign-up submissions
    google: RateLimiter  # Google's save/delete callbacks, charged before verification
    sign_in: RateLimiter  # console sign-ins and one-time links, per client address


@dataclass
class WalletState:
    """What one process shares between requests or jobs."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    passes: PassFactory
    google: GoogleWallet
    limiters: Limiters
    openapi: dict[str, Any] | None = None
    _push: PushClient | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Stops waking the workers after commits (``wakeup.notify_after_commit``).
    _stop_waking: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def push(self) -> PushClient:
        """The push client the settings ask for, made on first use (web processes never
        push, so they never load APNs credentials).

        :raises ConfigurationError: the APNs settings are unusable.
        """
        if self._push is None:
            with self._lock:
                if self._push is None:
                    self._push = make_push_client(self.settings, self.passes)
        return self._push

    def close(self) -> None:
        """Release connections: the push client, Google's, the database pool."""
        if self._stop_waking is not None:
            self._stop_waking()
        if self._push is not None:
            self._push.close()
        self.google.client.close()
        if self.google.root_keys is not None:
            self.google.root_keys.close()
        self.engine.dispose()


def build_state(settings: Settings) -> WalletState:
    """Everything a process needs, built from ``settings`` without connecting anywhere."""
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    storage = make_storage(settings.rate_limit_storage)

    def limiter(name: str, per_minute: int) -> RateLimiter:
        return RateLimiter(per_minute, storage=storage, name=name)

    sessions = make_sessionmaker(engine)
    stop_waking = None
    if engine.dialect.name == "postgresql":
        # On SQLite, ``serve`` has its web processes ring the worker's doorbell instead.
        notifier = Notifier(engine)
        unhook = notify_after_commit(sessions, notifier)

        def stop_waking() -> None:
            unhook()
            notifier.close()
    return WalletState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        _stop_waking=stop_waking,
        passes=PassFactory(settings),
        google=make_google(settings, storage),
        limiters=Limiters(
            apple=limiter("apple", settings.rate_limit_per_minute),
            pages=limiter("pages", settings.rate_limit_per_minute),
            join=limiter("join", settings.join_rate_limit_per_minute),
            google=limiter("google", settings.rate_limit_per_minute),
            sign_in=limiter("sign-in", settings.sign_in_rate_limit_per_minute),
        ),
    )


def make_google(settings: Settings, storage: Storage | None = None) -> GoogleWallet:
    """Google Wallet as configured: the REST client and callback keys, or the null client
    while ``WALLET_GOOGLE_ISSUER_ID`` is not set. The client's requests count in the rate
    limit ``storage`` (``WALLET_RATE_LIMIT_STORAGE``), so that every process sharing it keeps
    to one ``WALLET_GOOGLE_RATE_PER_SECOND`` together."""
    from .google import GoogleRootKeys
    from .google import NullWalletObjects

    if not settings.google_enabled:
        return GoogleWallet(None, settings.public_url, NullWalletObjects())
    from .google import GoogleWalletClient

    budget = SharedRequestRate(settings.google_rate_per_second, storage=storage,
                               name="google-api")
    client = GoogleWalletClient.from_service_account_file(
        settings.google_credentials or "", base_url=settings.google_api_url,
        rate=settings.google_rate_per_second, budget=budget)
    return GoogleWallet(settings.google_issuer_id, settings.public_url, client,
                        GoogleRootKeys(url=settings.google_root_keys_url),
                        id_prefix=settings.google_id_prefix)


def make_push_client(settings: Settings, passes: PassFactory) -> PushClient:
    """The push client the settings ask for (``WALLET_PUSH_BACKEND``): APNs authenticated
    with the pass certificate and key (Apple's documented way, spec §4.2), or with a .p8
    key; ``null`` when there is nothing APNs would accept (development certificates)."""
    from .push import ApnsPushClient
    from .push import CertificateAuth
    from .push import NullPushClient
    from .push import TokenAuth

    backend = settings.push_backend
    if backend == "auto":
        backend = "null" if settings.apple_dev_certs and not settings.apns_p8 else "apns"
    if backend == "null":
        return NullPushClient()
    auth: CertificateAuth | TokenAuth
    if settings.apns_p8 and settings.apns_key_id:
        auth = TokenAuth(key_id=settings.apns_key_id, team_id=settings.apple_team_id,
                         private_key=settings.apns_p8)
    else:
        signer = passes.signer
        auth = CertificateAuth(certificate=signer.certificate, private_key=signer.private_key)
    return ApnsPushClient(topic=settings.apple_pass_type_id, auth=auth,
                          base_url=settings.apns_url, ca_file=settings.apns_ca_file,
                          connections=settings.apns_connections)
