"""A downloaded pass as a phone shows it: pass.json with its texts looked up in the
pass.strings of the phone's language (apple-wallet spec §1.5). Importable from any test."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from wallet_service.apple import decode_strings

BASE = "https://wallet.example.test"
AREAS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields")


@dataclass
class DownloadedPass:
    pass_json: dict[str, Any]
    strings: dict[str, dict[str, str]]  # language → pass.strings

    @property
    def languages(self) -> list[str]:
        return sorted(self.strings)

    def fields(self, lang: str, area: str | None = None) -> dict[str, dict[str, Any]]:
        """The fields (of ``area``, or of every area) by key, with label and text value as a
        phone in ``lang`` shows them."""
        strings = self.strings[lang]
        shown = {}
        for name in (area,) if area else AREAS:
            for field in self.pass_json["storeCard"].get(name, ()):
                out = dict(field)
                for attribute in ("label", "value"):
                    if isinstance(out.get(attribute), str):
                        out[attribute] = strings.get(out[attribute], out[attribute])
                shown[field["key"]] = out
        return shown

    def raw_fields(self) -> dict[str, dict[str, Any]]:
        return {f["key"]: f for name in AREAS for f in self.pass_json["storeCard"].get(name, ())}


def download(client: Any, member: dict[str, Any]) -> DownloadedPass:
    r = client.get(member["apple_pass_url"].removeprefix(BASE))
    assert r.status_code == 200, r.status_code
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        names = archive.namelist()
        strings = {name.split(".lproj/")[0]: decode_strings(archive.read(name))
                   for name in names if name.endswith(".lproj/pass.strings")}
        manifest = json.loads(archive.read("manifest.json"))
        # Every file is in the manifest, and every pass.strings has the same keys (§1.2, §1.5).
        assert set(manifest) == set(names) - {"manifest.json", "signature"}
        assert len({frozenset(s) for s in strings.values()}) == 1
        return DownloadedPass(json.loads(archive.read("pass.json")), strings)


def card_page(client: Any, member: dict[str, Any], lang: str) -> str:
    r = client.get(member["card_url"].removeprefix(BASE) + f"?lang={lang}")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def join_page(client: Any, program: dict[str, Any], lang: str) -> str:
    r = client.get(program["join_url"].removeprefix(BASE) + f"?lang={lang}")
    assert r.status_code == 200
    return r.get_data(as_text=True)
