"""The OpenAPI document of the merchant API and its HTML page."""

from __future__ import annotations

from typing import Any

from flask import render_template

from .. import wallet
from ..openapi import build_document
from ._blueprint import PREFIX
from ._blueprint import bp


def openapi_document() -> dict[str, Any]:
    state = wallet()
    if state.openapi is None:
        state.openapi = build_document(
            bp.operations, title="wallet-service merchant API", version="1",
            server=state.settings.public_url + PREFIX, prefix="",
        )
    doc: dict[str, Any] = state.openapi
    return doc


@bp.route("/openapi.json")
def openapi_json() -> Any:
    return openapi_document()


@bp.route("/docs")
def docs() -> str:
    return render_template("api_docs.html", doc=openapi_document())

