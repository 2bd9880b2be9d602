"""Shared pieces for tests that push through the APNs stand-in."""

from __future__ import annotations

import os

PASS_TYPE = "pass.dev.wallet-service.loyalty"

def worker_env(app, apns, lease: float) -> dict[str, str]:
    settings = app.extensions["wallet"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({
        "WALLET_DATABASE_URL": settings.database_url,
        "WALLET_INSTANCE_PATH": str(settings.instance_path),
        "WALLET_SECRET_KEY": "test-secret-key",
        "WALLET_PUSH_BACKEND": "apns",
        "WALLET_APNS_URL": apns.url,
        "WALLET_APNS_CA_FILE": str(apns.certs.ca_file),
        "WALLET_PUSH_DEBOUNCE_SECONDS": "0",
        "WALLET_WORKER_LEASE_SECONDS": str(lease),
        "WALLET_LOG_LEVEL": "INFO",
    })
    return env
