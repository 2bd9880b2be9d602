"""The ``.pkpass`` archive: ``pass.json``, images, ``.lproj`` strings, manifest, signature (§1).

Everything a program's passes share (images, ``pass.strings``, their SHA-1 digests and their
finished zip records) is prepared once per (template, design) and cached; a pass then costs
one ``pass.json``, one manifest, one signature and a few hundred bytes of zip headers. A pass
with texts of its own per language carries its own ``pass.strings`` files instead of the
shared ones (the design's strings and its own, §1.5).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ConfigurationError
from .content import build_pass_json
from .content import localized_strings
from .model import IMAGE_KINDS
from .model import CardContent
from .model import Design
from .model import PassTemplate
from .signing import SignerCredentials
from .signing import sign_manifest
from .strings import encode_strings

#: The media type to serve a pass with (§1.1).
PKPASS_MEDIA_TYPE = "application/vnd.apple.pkpass"

# Every entry gets the same timestamp (1980-01-01 00:00, the DOS epoch) so archives depend
# only on their content.
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
_UTF8_NAMES = 0x0800
_STORED, _DEFLATED = 0, 8
_UNIX_FILE = 0o100644 << 16


@dataclass(frozen=True)
class _Entry:
    """One zip member: its local record, and its central-directory record up to the offset."""

    name: str
    sha1: str
    local: bytes
    central_head: bytes  # the central record lacks the local-header offset and the name

    def central(self, offset: int) -> bytes:
        """The full central-directory record for a local record at ``offset``."""
        return self.central_head + struct.pack("<I", offset) + self.name.encode()


def build_pkpass(
    template: PassTemplate,
    design: Design,
    content: CardContent,
    signer: SignerCredentials,
    *,
    customize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    strings: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """Build and sign one member's ``.pkpass`` (serve it as :data:`PKPASS_MEDIA_TYPE`).

    ``customize`` may add to the finished ``pass.json`` before it is hashed and signed (the
    service adds back fields of its program mechanics there). ``strings`` adds this pass's
    own ``pass.strings`` entries per language (the keys ``customize`` used, see
    :func:`~wallet_service.apple.content.localize_fields`); a shipped language they lack
    gets the first language's text, so every file has the same keys (§1.5).

    :raises ConfigurationError: the card's pass type or team identifier differs from the
        signing certificate (§1.3, pitfall 3).
    :raises InvalidInput: see :func:`build_pass_json`.
    """
    check_identity(content, signer)
    pass_json = build_pass_json(template, design, content)
    if customize is not None:
        pass_json = customize(pass_json)
    if not strings or not any(strings.values()):
        return package(pass_json, _shared_files(template, design), signer)
    own = [_entry(f"{language}.lproj/pass.strings", encode_strings(texts), compress=True)
           for language, texts in _with_card_strings(template, design, strings).items()]
    return package(pass_json, _shared_files(template, design, with_strings=False), signer, own)


def _with_card_strings(template: PassTemplate, design: Design,
                       extra: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The design's ``pass.strings`` per shipped language with the pass's own entries."""
    result = localized_strings(template, design)
    first = next((extra[lang] for lang in result if extra.get(lang)),
                 next(iter(extra.values())))
    for language, strings in result.items():
        strings.update(first)
        strings.update(extra.get(language, {}))
    return result


def check_identity(content: CardContent, signer: SignerCredentials) -> None:
    """The pass must name the certificate's pass type and team identifiers (§2.1).

    :raises ConfigurationError: they differ.
    """
    for name, ours, certificate_value in (
        ("pass_type_identifier", content.pass_type_identifier, signer.pass_type_identifier),
        ("team_identifier", content.team_identifier, signer.team_identifier),
    ):
        if certificate_value is not None and ours != certificate_value:
            raise ConfigurationError(
                f"{name} {ours!r} does not match the signing certificate ({certificate_value!r})"
            )


def package(pass_json: Mapping[str, Any], shared: SharedFiles, signer: SignerCredentials,
            own: Sequence[_Entry] = ()) -> bytes:
    """Serialize, hash, sign and zip a pass whose other files are ``shared`` and ``own``
    (§1.1–§1.3)."""
    pass_bytes = json.dumps(pass_json, ensure_ascii=False, separators=(",", ":")).encode()
    pass_entry = _entry("pass.json", pass_bytes, compress=True)
    manifest = shared.manifest_with(pass_entry.sha1, own)
    signature = sign_manifest(manifest, signer)
    return _zip(
        shared,
        (
            *own,
            pass_entry,
            _entry("manifest.json", manifest, compress=True),
            _entry("signature", signature),
        ),
    )


def manifest_bytes(files: Mapping[str, bytes]) -> bytes:
    """``manifest.json`` for ``files`` (path → bytes): lowercase SHA-1 hex per file (§1.2)."""
    digests = {name: hashlib.sha1(data).hexdigest() for name, data in files.items()}
    return json.dumps(digests, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SharedFiles:
    """Files every pass of a (template, design) carries, ready to copy into archives.

    Their records open every archive, so their offsets, and so their whole central-directory
    records, are the same in every pass.
    """

    names: tuple[str, ...]
    local: bytes  # the local records, back to back
    central: bytes  # their central-directory records
    manifest_tail: bytes  # ``,"icon.png":"…",…}``: the manifest after the pass.json digest

    def manifest_with(self, pass_sha1: str, own: Sequence[_Entry] = ()) -> bytes:
        """The manifest: pass.json's digest first, then the pass's own files', then the
        shared files' (§1.2)."""
        extra = "".join(f',"{e.name}":"{e.sha1}"' for e in own).encode()
        return b'{"pass.json":"' + pass_sha1.encode() + b'"' + extra + self.manifest_tail


@lru_cache(maxsize=64)
def _shared_files(template: PassTemplate, design: Design, *,
                  with_strings: bool = True) -> SharedFiles:
    """Images (design overrides win per kind) and, unless the pass brings its own,
    ``pass.strings`` files, hashed and zipped."""
    files: dict[str, tuple[bytes, str | None]] = {}
    overridden = {kind for kind in IMAGE_KINDS if any(n.startswith(kind) for n in design.images)}
    for name, file in template.images.items():
        if name.split("@")[0].removesuffix(".png") not in overridden:
            files[name] = (file.data, file.sha1)
    for name, data in design.images.items():
        files[name] = (data, None)
    if with_strings:
        for language, strings in localized_strings(template, design).items():
            files[f"{language}.lproj/pass.strings"] = (encode_strings(strings), None)
    entries = [
        _entry(name, files[name][0], compress=not name.endswith(".png"), sha1=files[name][1])
        for name in sorted(files)
    ]
    offsets = [0]
    for entry in entries:
        offsets.append(offsets[-1] + len(entry.local))
    return SharedFiles(
        names=tuple(e.name for e in entries),
        local=b"".join(e.local for e in entries),
        central=b"".join(e.central(offset) for e, offset in zip(entries, offsets, strict=False)),
        manifest_tail=("".join(f',"{e.name}":"{e.sha1}"' for e in entries) + "}").encode(),
    )


def _entry(name: str, data: bytes, *, compress: bool = False, sha1: str | None = None) -> _Entry:
    """A zip member. PNGs are stored as they are: deflating them again gains nothing."""
    crc = zlib.crc32(data)
    if compress:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = packer.compress(data) + packer.flush()
        method = _DEFLATED
    else:
        body, method = data, _STORED
    encoded = name.encode()
    common = struct.pack(
        "<HHHHHIII", 20, _UTF8_NAMES, method, _DOS_TIME, _DOS_DATE, crc, len(body), len(data)
    )
    local = b"PK\x03\x04" + common + struct.pack("<HH", len(encoded), 0) + encoded + body
    central_head = (
        b"PK\x01\x02"
        + struct.pack("<H", (3 << 8) | 20)
        + common
        + struct.pack("<HHHHHI", len(encoded), 0, 0, 0, 0, _UNIX_FILE)
    )
    return _Entry(name, sha1 or hashlib.sha1(data).hexdigest(), local, central_head)


def _zip(shared: SharedFiles, own: Sequence[_Entry]) -> bytes:
    """Shared records first (their offsets are fixed), then this pass's, then the directory."""
    offset = len(shared.local)
    locals_, centrals = [shared.local], [shared.central]
    for entry in own:
        locals_.append(entry.local)
        centrals.append(entry.central(offset))
        offset += len(entry.local)
    directory = b"".join(centrals)
    count = len(shared.names) + len(own)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(directory), offset, 0)
    return b"".join(locals_) + directory + end
