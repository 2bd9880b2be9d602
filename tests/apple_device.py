"""A simulated iPhone: speaks the pass web service protocol to the app under test."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any


class Device:
    def __init__(self, client: Any, library_id: str, push_token: str,
                 pass_type: str = "pass.dev.wallet-service.loyalty") -> None:
        self.client = client
        self.library_id = library_id
        self.push_token = push_token
        self.pass_type = pass_type
        self.tag: str | None = None
        self.passes: dict[str, dict[str, Any]] = {}  # serial -> pass.json
        self.last_modified: dict[str, str] = {}

    def _reg_url(self, serial: str) -> str:
        return f"/apple/v1/devices/{self.library_id}/registrations/{self.pass_type}/{serial}"

    def register(self, serial: str, token: str, push_token: str | None = None) -> Any:
        return self.client.post(self._reg_url(serial), json={"pushToken": push_token or self.push_token},
                                headers={"Authorization": f"ApplePass {token}"})

    def unregister(self, serial: str, token: str) -> Any:
        return self.client.delete(self._reg_url(serial), headers={"Authorization": f"ApplePass {token}"})

    def changed(self, tag: str | None = None) -> Any:
        url = f"/apple/v1/devices/{self.library_id}/registrations/{self.pass_type}"
        query = {} if tag is None else {"passesUpdatedSince": tag}
        return self.client.get(url, query_string=query)

    def fetch(self, serial: str, token: str, *, conditional: bool = True) -> Any:
        headers = {"Authorization": f"ApplePass {token}"}
        if conditional and serial in self.last_modified:
            headers["If-Modified-Since"] = self.last_modified[serial]
        r = self.client.get(f"/apple/v1/passes/{self.pass_type}/{serial}", headers=headers)
        if r.status_code == 200:
            with zipfile.ZipFile(io.BytesIO(r.data)) as z:
                self.passes[serial] = json.loads(z.read("pass.json"))
            self.last_modified[serial] = r.headers["Last-Modified"]
        return r

    def sync(self, tokens: dict[str, str]) -> list[str]:
        """What Wallet does on a push: ask what changed since the tag, fetch each, keep the tag."""
        r = self.changed(self.tag)
        if r.status_code == 204:
            return []
        assert r.status_code == 200, r.status_code
        body = r.json
        assert body["lastUpdated"] != self.tag
        for serial in body["serialNumbers"]:
            got = self.fetch(serial, tokens[serial])
            # 304 is possible when the device already fetched this change early (it landed
            # between an earlier list and fetch); Wallet then keeps its copy.
            assert got.status_code in (200, 304), (serial, got.status_code)
        self.tag = body["lastUpdated"]
        return list(body["serialNumbers"])


def balance_of(pass_json: dict[str, Any]) -> int:
    return next(f["value"] for f in pass_json["storeCard"]["primaryFields"])
