"""Constants and helpers shared by the push tests."""

from __future__ import annotations

TOPIC = "pass.com.example.test"


def tokens(count: int, prefix: str = "a") -> list[str]:
    """``count`` distinct device tokens of 64 hex digits."""
    return [f"{prefix}{i:063x}" for i in range(count)]
