"""JSON Merge Patch (RFC 7396): objects merge key by key, everything else replaces whole,
``null`` removes the key."""

from __future__ import annotations

import copy
from typing import Any

MEDIA_TYPE = "application/merge-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """The result of applying ``patch`` to ``target`` (RFC 7396 §2); neither is changed.

    A patch that is not an object replaces the target whole (lists included, with any
    ``null`` inside them kept as values). An object patch merges into the target (an
    object, or ``{}`` when the target is anything else): a ``null`` member removes the
    key, any other member is merged into the target's value of that key.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
