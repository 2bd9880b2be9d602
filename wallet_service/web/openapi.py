"""The OpenAPI 3.1 document of the merchant API, built from the registered operations."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..schemas import Problem
from .routing import MERGE_PATCH_MEDIA_TYPE
from .routing import MERGE_PATCH_NOTE
from .routing import Operation
from .routing import openapi_path
from .routing import path_params

REF = "#/components/schemas/{model}"


def build_document(
    operations: list[Operation], *, title: str, version: str, server: str, prefix: str
) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas = defs.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "tags": list(op.tags),
            "parameters": _parameters(op),
            "responses": _responses(op, refs),
        }
        description = " ".join(filter(None, (op.description,
                                             MERGE_PATCH_NOTE if op.merge_patch else "")))
        if description:
            item["description"] = description
        if op.body is not None:
            schema = refs[(op.body, "validation")]
            media_types = (MERGE_PATCH_MEDIA_TYPE, "application/json") if op.merge_patch else (
                "application/json",)
            item["requestBody"] = {
                "required": True,
                "content": {m: {"schema": schema} for m in media_types},
            }
            if op.merge_patch:
                item["requestBody"]["description"] = MERGE_PATCH_NOTE
        if op.media:
            item["requestBody"] = {
                "required": True,
                "content": {m: {"schema": {"type": "string", "format": "binary"}}
                            for m in op.media},
            }
        if not op.auth:
            item["security"] = []
        paths.setdefault(prefix + openapi_path(op.rule), {})[op.method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Loyalty programs, members, cards and the points ledger. "
            "Authenticate with `Authorization: Bearer <API key>`. Errors are "
            "RFC 9457 problem documents whose `errors` list names each field.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
    }


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name, converter in path_params(op.rule):
        params.append({
            "name": name, "in": "path", "required": True,
            "schema": {"type": "integer" if converter == "int" else "string"},
        })
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({
                "name": name, "in": "query", "required": name in required,
                "schema": {k: v for k, v in prop.items() if k != "title"},
                **({"description": prop["description"]} if "description" in prop else {}),
            })
    for name, description in op.headers.items():
        params.append({"name": name, "in": "header", "required": False,
                       "description": description, "schema": {"type": "string"}})
    return params


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    responses = {str(op.status): ok}
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    codes = set(op.errors)
    if op.auth:
        codes.add(401)
    if op.body is not None or op.query is not None or op.media:
        codes.update((400, 422))
    if op.body is not None or op.media:
        codes.add(413)  # over the body cap (web/limits.py)
    for code in sorted(codes):
        responses[str(code)] = {"description": HTTPStatus(code).phrase, "content": problem}
    return responses
