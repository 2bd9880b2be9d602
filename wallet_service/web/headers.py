"""The security headers of every response, applied once by ``create_app``.

HTML pages (the customer's pages, posters, the API's docs page, error pages) and SVG images
get a policy that loads nothing from elsewhere and runs no script: the pages style
themselves inline or from ``/static`` and show images from here or ``data:`` URLs. Every
response says HTTPS-only (HSTS) when the service is published over HTTPS.
"""

from __future__ import annotations

from flask import Response

from . import wallet

#: A year; no ``includeSubDomains``: other services may share the parent domain.
HSTS = "max-age=31536000"

_DOCUMENT_TYPES = frozenset({"text/html", "image/svg+xml"})


def content_security_policy(public_url: str) -> str:
    """No scripts, nothing external, no framing, forms only back to the service."""
    return ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"form-action 'self' {public_url}; base-uri 'none'; frame-ancestors 'none'")


def secure_headers(response: Response) -> Response:
    """No framing, no sniffing, no referrer (a card link is a secret), nothing external;
    HSTS behind HTTPS. Headers a view set itself are kept."""
    public_url = wallet().settings.public_url
    if public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype in _DOCUMENT_TYPES:
        response.headers.setdefault("Content-Security-Policy",
                                    content_security_policy(public_url))
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
