"""``pass.strings`` files: the label strings of one language (§1.5).

Written as UTF-16 little-endian with a byte-order mark, the safest encoding Apple accepts;
``"`` and ``\\`` are escaped and newlines written as ``\\n``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

from ..errors import InvalidInput

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_ENTRY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)"\s*;')
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def encode_strings(strings: Mapping[str, str]) -> bytes:
    """Serialize ``{key: text}`` as a ``pass.strings`` file: UTF-16LE with BOM (§1.5)."""
    body = "".join(f'"{_escape(k)}" = "{_escape(v)}";\n' for k, v in strings.items())
    return codecs.BOM_UTF16_LE + body.encode("utf-16-le")


def decode_strings(data: bytes) -> dict[str, str]:
    """Parse a ``pass.strings`` file (UTF-16 with BOM, or UTF-8) into ``{key: text}``.

    :raises InvalidInput: the file cannot be decoded or has a malformed line.
    """
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"pass.strings is not UTF-16 or UTF-8: {exc}", field="strings") from exc
    text = _COMMENT.sub("", text)
    result: dict[str, str] = {}
    position = 0
    for match in _ENTRY.finditer(text):
        if text[position : match.start()].strip():
            raise InvalidInput(
                f"pass.strings has a malformed entry near {text[position : match.start()][:40]!r}",
                field="strings",
            )
        result[_unescape(match.group(1))] = _unescape(match.group(2))
        position = match.end()
    if text[position:].strip():
        raise InvalidInput(
            f"pass.strings has a malformed entry near {text[position:][:40]!r}", field="strings"
        )
    return result
