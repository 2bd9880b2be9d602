"""Private card links never reach the access log."""

from __future__ import annotations

from wallet_service.accesslog import redact


def test_card_tokens_are_masked():
    assert redact("GET /passes/AbC-123_xyz HTTP/1.1") == "GET /passes/… HTTP/1.1"
    assert redact("GET /c/AbC-123_xyz?lang=en HTTP/1.1") == "GET /c/…?lang=en HTTP/1.1"
    assert redact("https://wallet.example/c/tok") == "https://wallet.example/c/…"
    assert redact("GET /api/v1/programs/5 HTTP/1.1") == "GET /api/v1/programs/5 HTTP/1.1"
