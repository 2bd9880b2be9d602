"""wallet-service: loyalty cards in Apple Wallet and Google Wallet, kept live."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported lazily so the pure parts (``wallet_service.apple``) load without Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
