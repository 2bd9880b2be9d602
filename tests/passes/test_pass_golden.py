"""Golden pass.json per built-in template, for one fixed member.

The expected files live in ``tests/passes/golden/<template>.json``. After an intended change
to templates or pass building, regenerate them and review the diff::

    UPDATE_GOLDEN=1 python -m pytest tests/passes/test_pass_golden.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from pass_helpers import TEMPLATE_NAMES
from pass_helpers import make_content
from pass_helpers import make_design

from wallet_service.apple import assets as apple_assets
from wallet_service.apple import build_pass_json

GOLDEN_DIR = Path(__file__).parent / "golden"


def golden_member(template: str) -> dict:
    content = make_content(
        locale="ru",
        expiration_date=dt.datetime(2026, 12, 31, 21, 0, tzinfo=dt.UTC)
        if template == "stamps"
        else None,
    )
    design = make_design(currency_code="RUB" if template == "cashback" else None)
    return build_pass_json(apple_assets.load_template(template), design, content)


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_pass_json_matches_golden(template: str) -> None:
    actual = golden_member(template)
    path = GOLDEN_DIR / f"{template}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected
    # Key order is part of the output too (it is what gets hashed and signed).
    assert list(actual) == list(expected)
