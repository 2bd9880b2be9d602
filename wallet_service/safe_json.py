"""Reading JSON that strangers send: bounded nesting, and numbers read exactly.

``json.loads`` recurses once per level of nesting, so a body of 100,000 ``[`` raises
``RecursionError`` (an error no caller expects) instead of ``ValueError``; documents that
parse but nest deeper than any request of this service needs are refused as well.
``exact_numbers`` keeps ``1.0000000000000000001`` as that ``Decimal`` instead of the float
``1.0``, and refuses ``NaN`` and ``Infinity``, which are not JSON.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

__all__ = ["MAX_DEPTH", "JSONTooDeep", "depth", "loads"]

#: No request of this service nests deeper (a program document: about 5 levels).
MAX_DEPTH = 32


class JSONTooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH,
          exact_numbers: bool = False) -> Any:
    """Parse ``data`` like ``json.loads``.

    :raises JSONTooDeep: arrays and objects nest deeper than ``max_depth``.
    :raises ValueError: not JSON (with ``exact_numbers``: also ``NaN`` or ``Infinity``).
    """
    options: dict[str, Any] = {}
    if exact_numbers:
        options = {"parse_float": Decimal, "parse_constant": _not_json}
    try:
        value = json.loads(data, **options)
    except RecursionError:
        raise JSONTooDeep(max_depth) from None
    if depth(value, limit=max_depth) > max_depth:
        raise JSONTooDeep(max_depth)
    return value


def depth(value: Any, *, limit: int | None = None) -> int:
    """How deep arrays and objects nest in a parsed document (a scalar is 0); counting stops
    just past ``limit``. Iterative, so any parsed document can be measured."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if limit is not None and deepest > limit:
            break
        stack.extend((child, level) for child in children
                     if isinstance(child, dict | list))
    return deepest
