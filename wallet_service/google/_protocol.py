"""What the service needs of Google Wallet's REST API, and the implementation for when
Google Wallet is switched off (no ``WALLET_GOOGLE_ISSUER_ID``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any
from typing import Protocol


class WalletObjects(Protocol):
    """Classes, objects, messages and save links (``GoogleWalletClient`` is the real one)."""

    def upsert_class(self, payload: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch_class(self, class_id: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_object(self, object_id: str) -> dict[str, Any]: ...

    def upsert_object(self, payload: Mapping[str, Any], *,
                      notify: bool = False) -> dict[str, Any]: ...

    def patch_object(self, object_id: str, payload: Mapping[str, Any], *,
                     notify: bool = False) -> dict[str, Any]: ...

    def add_message(self, object_id: str, header: str | Mapping[str, str],
                    body: str | Mapping[str, str], *, notify: bool,
                    message_id: str | None = None) -> dict[str, Any]: ...

    def save_url(self, object_ids: Sequence[str], origins: Sequence[str], *,
                 now: float | None = None) -> str: ...

    def urgent(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class NullWalletObjects:
    """Google Wallet is off: nothing is sent, and there is no save link to give."""

    def upsert_class(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def patch_class(self, class_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def get_object(self, object_id: str) -> dict[str, Any]:
        return {}

    def upsert_object(self, payload: Mapping[str, Any], *,
                      notify: bool = False) -> dict[str, Any]:
        return {}

    def patch_object(self, object_id: str, payload: Mapping[str, Any], *,
                     notify: bool = False) -> dict[str, Any]:
        return {}

    def add_message(self, object_id: str, header: str | Mapping[str, str],
                    body: str | Mapping[str, str], *, notify: bool,
                    message_id: str | None = None) -> dict[str, Any]:
        return {}

    def save_url(self, object_ids: Sequence[str], origins: Sequence[str], *,
                 now: float | None = None) -> str:
        raise RuntimeError("Google Wallet is off: there is no save link")

    def urgent(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        return None
