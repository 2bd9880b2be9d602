"""Validation of walletobjects JSON against the official Discovery document (spec §6.5).

``walletobjects.v1.json`` next to this module is Google's Discovery document for the Google
Wallet API, revision ``20260806``, as shipped in ``google-api-python-client`` 2.202.0
(``googleapiclient/discovery_cache/documents/``; Apache License 2.0, Copyright Google LLC). It is
data only; the client library is not used.

``validate(kind, payload)`` walks the payload against ``schemas[kind]``: it resolves ``$ref``,
checks JSON types and Discovery formats (``int32`` range, ``int64`` as digit strings),
enums, and rejects every field the schema does not know, naming the JSON path of the first
problem in a ``SchemaViolation``. Discovery has no ``required`` lists and no cross-field rules,
so a few are added from the spec (§2.1.1, §2.2, §2.3, §7.3, §7.5, §7.15):

* always: the id format ``<issuer id>.<[A-Za-z0-9._-]+>``; text-module ids without dots;
  ``loyaltyPoints.balance`` present with exactly one of int/double/string/money; an image with
  exactly one of ``sourceUri``/``privateImageId``; at most 10 ``merchantLocations`` and
  ``messages``; latitude/longitude in range;
* unless ``partial`` (a PATCH body): the required top-level fields of a class or object;
* when ``strict`` (what this service sends; the default): no deprecated fields or deprecated
  enum aliases (§7.17), no fields only Google sets (``classReference``, ``hasUsers``, …), and a
  class ``reviewStatus`` of ``UNDER_REVIEW`` or ``DRAFT`` only (§2.1.2). ``strict=False`` is what
  Google itself accepts, used by the test stand-in.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import SchemaViolation

__all__ = ["DISCOVERY_FILE", "DISCOVERY_REVISION", "discovery_document", "validate"]

DISCOVERY_FILE = Path(__file__).with_name("walletobjects.v1.json")
#: The ``revision`` of the vendored Discovery document.
DISCOVERY_REVISION = "20260806"

#: ``<issuer id>.<suffix>``: the issuer id is numeric, the suffix ASCII letters, digits,
#: ``.``, ``_`` and ``-`` only (§2.1.1, §2.2, §7.3).
RESOURCE_ID = re.compile(r"\A[0-9]+\.[A-Za-z0-9._-]+\Z")
#: Text-module ids: no dots, they separate fieldPath segments (§2.2).
TEXT_MODULE_ID = re.compile(r"\A[A-Za-z0-9_-]+\Z")

_REQUIRED_TOP = {
    "LoyaltyClass": ("id", "issuerName", "programName", "programLogo", "reviewStatus"),
    "LoyaltyObject": ("id", "classId", "state"),
    "AddMessageRequest": ("message",),
}
_OUTPUT_ONLY = {
    "LoyaltyObject": frozenset({"classReference", "hasUsers", "hasLinkedDevice"}),
    "LoyaltyClass": frozenset({"review"}),
}
_SENDABLE_REVIEW_STATUS = frozenset({"UNDER_REVIEW", "DRAFT"})
_MAX_ITEMS = {"merchantLocations": 10, "messages": 10}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}
_BASE64 = re.compile(r"\A[A-Za-z0-9+/_-]*={0,2}\Z")


@functools.cache
def discovery_document() -> dict[str, Any]:
    """The vendored walletobjects v1 Discovery document (parsed once)."""
    with DISCOVERY_FILE.open(encoding="utf-8") as f:
        document: dict[str, Any] = json.load(f)
    return document


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = discovery_document()["schemas"]
    return schemas


def validate(kind: str, payload: Any, *, partial: bool = False, strict: bool = True) -> None:
    """Check ``payload`` against Discovery schema ``kind`` (``"LoyaltyClass"``,
    ``"LoyaltyObject"``, ``"AddMessageRequest"``, or any other schema name) (§6.5).

    ``partial=True`` for PATCH bodies (top-level required fields may be missing);
    ``strict=False`` accepts deprecated fields and aliases, as Google does. Raises
    ``SchemaViolation`` naming the JSON path of the first problem; returns None when valid.
    """
    schemas = _schemas()
    if kind not in schemas:
        raise ValueError(f"unknown Discovery schema {kind!r}")
    _Walker(strict=strict).value({"$ref": kind}, payload, "$")
    if not partial:
        for name in _REQUIRED_TOP.get(kind, ()):
            if name not in payload:
                raise SchemaViolation(f"required field missing for {kind} (spec §2)",
                                      path=f"$.{name}")


class _Walker:
    def __init__(self, *, strict: bool) -> None:
        self.strict = strict

    def value(self, spec: Mapping[str, Any], value: Any, path: str) -> None:
        if "$ref" in spec:
            name = spec["$ref"]
            self.object(name, _schemas()[name], value, path)
            return
        kind = spec.get("type")
        if kind == "object":
            if not isinstance(value, Mapping):
                raise SchemaViolation("expected a JSON object", path=path)
            extra = spec.get("additionalProperties")
            if extra is None:
                self.object(spec.get("id", "object"), spec, value, path)
            else:
                for key, item in value.items():
                    self.value(extra, item, f"{path}.{key}")
        elif kind == "array":
            if not isinstance(value, list):
                raise SchemaViolation("expected a JSON array", path=path)
            for index, item in enumerate(value):
                self.value(spec["items"], item, f"{path}[{index}]")
        elif kind == "string":
            self.string(spec, value, path)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaViolation("expected an integer", path=path)
            low, high = _INT_RANGES.get(spec.get("format", ""), (-math.inf, math.inf))
            if not low <= value <= high:
                raise SchemaViolation(f"out of {spec.get('format')} range", path=path)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaViolation("expected a number", path=path)
            if not math.isfinite(value):
                raise SchemaViolation("expected a finite number", path=path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise SchemaViolation("expected true or false", path=path)
        elif kind == "any":
            pass
        else:  # pragma: no cover - the document uses only the types above
            raise SchemaViolation(f"unsupported Discovery type {kind!r}", path=path)

    def string(self, spec: Mapping[str, Any], value: Any, path: str) -> None:
        fmt = spec.get("format")
        if fmt in ("int64", "uint64"):
            # Google's JSON mapping writes 64-bit integers as strings; numbers are accepted too.
            text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(text, str) or not re.fullmatch(r"-?[0-9]+", text) or (
                    fmt == "uint64" and text.startswith("-")):
                raise SchemaViolation(f"expected a {fmt} (decimal string)", path=path)
            return
        if not isinstance(value, str):
            raise SchemaViolation("expected a string", path=path)
        if fmt == "byte" and not _BASE64.match(value):
            raise SchemaViolation("expected base64 bytes", path=path)
        if "enum" in spec:
            values = spec["enum"]
            if value not in values:
                raise SchemaViolation(f"{value!r} is not one of {_allowed(spec)}", path=path)
            deprecated = spec.get("enumDeprecated") or [False] * len(values)
            if self.strict and deprecated[values.index(value)]:
                raise SchemaViolation(f"{value!r} is a deprecated alias; use one of "
                                      f"{_allowed(spec)} (spec §7.17)", path=path)

    def object(self, name: str, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise SchemaViolation(f"expected a JSON object ({name})", path=path)
        properties: Mapping[str, Any] = schema.get("properties", {})
        for key, item in value.items():
            where = f"{path}.{key}"
            if key not in properties:
                raise SchemaViolation(f"unknown field {key!r} for {name}", path=where)
            spec = properties[key]
            if self.strict and spec.get("deprecated"):
                raise SchemaViolation(f"deprecated field {key!r} (spec §7.17)", path=where)
            if self.strict and key in _OUTPUT_ONLY.get(name, ()):
                raise SchemaViolation(f"{key!r} is set by Google; never send it (spec §2.2)",
                                      path=where)
            if key in _MAX_ITEMS and isinstance(item, list) and len(item) > _MAX_ITEMS[key]:
                raise SchemaViolation(f"at most {_MAX_ITEMS[key]} entries (spec §1.8)",
                                      path=where)
            self.value(spec, item, where)
        self.rules(name, value, path)

    def rules(self, name: str, value: Mapping[str, Any], path: str) -> None:
        """Cross-field rules Discovery states only in prose."""
        if name in ("LoyaltyClass", "LoyaltyObject"):
            for key in ("id", "classId"):
                if key in value and not RESOURCE_ID.match(value[key]):
                    raise SchemaViolation(
                        f"{value[key]!r} is not '<issuer id>.<suffix>' with a suffix of "
                        "A-Z a-z 0-9 . _ - only (spec §7.3)", path=f"{path}.{key}")
        if name == "LoyaltyClass" and self.strict and "reviewStatus" in value and \
                value["reviewStatus"] not in _SENDABLE_REVIEW_STATUS:
            raise SchemaViolation("send UNDER_REVIEW (or DRAFT), never a status Google sets "
                                  "(spec §2.1.2)", path=f"{path}.reviewStatus")
        elif name == "TextModuleData" and "id" in value and not TEXT_MODULE_ID.match(value["id"]):
            raise SchemaViolation("text module ids allow A-Z a-z 0-9 _ - only, no dots (spec §2.2)",
                                  path=f"{path}.id")
        elif name == "LoyaltyPoints" and "balance" not in value:
            raise SchemaViolation("balance is required in loyalty points (spec §2.2)",
                                  path=f"{path}.balance")
        elif name == "LoyaltyPointsBalance":
            forms = [k for k in ("int", "double", "string", "money") if k in value]
            if len(forms) != 1:
                raise SchemaViolation("exactly one of int, double, string, money (spec §2.3)",
                                      path=path)
        elif name == "Image":
            sources = [k for k in ("sourceUri", "privateImageId") if k in value]
            if len(sources) != 1:
                raise SchemaViolation("exactly one of sourceUri, privateImageId (spec §2.3)",
                                      path=path)
        elif name == "ImageUri" and "uri" not in value:
            raise SchemaViolation("uri is required", path=f"{path}.uri")
        elif name == "LocalizedString" and "defaultValue" not in value:
            raise SchemaViolation("defaultValue is required", path=f"{path}.defaultValue")
        elif name == "TranslatedString":
            for key in ("language", "value"):
                if key not in value:
                    raise SchemaViolation(f"{key} is required", path=f"{path}.{key}")
        elif name in ("MerchantLocation", "LatLongPoint"):
            for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
                if key in value and not -limit <= value[key] <= limit:
                    raise SchemaViolation(f"{key} outside ±{limit:g}", path=f"{path}.{key}")


def _allowed(spec: Mapping[str, Any]) -> str:
    deprecated = spec.get("enumDeprecated") or [False] * len(spec["enum"])
    return ", ".join(v for v, old in zip(spec["enum"], deprecated, strict=True) if not old)
