"""The README's settings table is generated from the settings themselves."""

from __future__ import annotations

from pathlib import Path

from wallet_service.config import settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_settings_table_is_current():
    text = README.read_text()
    block = text.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert block == settings_table(), (
        "README settings table is stale; paste the output of "
        "python -c 'from wallet_service.config import settings_table; print(settings_table())'"
    )


def test_quick_start_has_exactly_two_commands():
    quick = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert quick.count("```bash") == 2
