"""Schemathesis hooks of the fuzzing gate (``run_fuzz.py`` loads them through
``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis

OWN_KEY_ID = int(os.environ["FUZZ_OWN_KEY_ID"])
SPARE_KEY_ID = int(os.environ["FUZZ_SPARE_KEY_ID"])


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """``DELETE /api-keys/{key_id}`` of the key the fuzzer authenticates with revokes it, and
    every later request would get 401: that request is sent for the spare key instead (the
    revocation of a key, the run's own included, is covered by tests/test_auth.py)."""
    if (case.method.upper() == "DELETE" and case.operation.path == "/api-keys/{key_id}"
            and isinstance(case.path_parameters, dict)
            and str(case.path_parameters.get("key_id")) == str(OWN_KEY_ID)):
        case.path_parameters["key_id"] = SPARE_KEY_ID
