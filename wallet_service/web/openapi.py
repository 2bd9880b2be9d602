"""The OpenAPI 3.1 document of the merchant API, built from the registered operations.

The document is the contract the fuzzing gate (tests/fuzz/run_fuzz.py) holds the service to:
every status an operation can answer is declared (the common ones derived here from what the
operation is, see :func:`error_statuses`), and every schema describes what the service takes,
JSON Merge Patch bodies included (:func:`patch_schema`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..permissions import requirement
from ..permissions import scopes_summary
from ..schemas import DOCUMENTED_ALONE
from ..schemas import MAX_ID
from ..schemas import Problem
from .routing import MERGE_PATCH_MEDIA_TYPE
from .routing import MERGE_PATCH_NOTE
from .routing import Operation
from .routing import openapi_path
from .routing import path_params

REF = "#/components/schemas/{model}"

#: Headers operations read, checked as ``_blueprint.idempotency_key`` checks them: 1 to 255
#: printable ASCII characters (HTTP trims spaces at either end, so none are there).
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$"},
}
#: A raw body sent as a multipart form instead: the file in its ``file`` field.
MULTIPART_FILE = {"type": "object", "required": ["file"],
                  "properties": {"file": {"type": "string", "format": "binary"}}}


def build_document(
    operations: list[Operation], *, title: str, version: str, server: str, prefix: str
) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    # Schemas a request checks part by part (a batch's items), named in descriptions.
    models.extend((model, "validation") for model in DOCUMENTED_ALONE)
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas = _number_bounds(defs.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "tags": list(op.tags),
            "parameters": _parameters(op),
            "responses": _responses(op, refs),
        }
        description = " ".join(filter(None, (
            op.description, MERGE_PATCH_NOTE if op.merge_patch else "",
            requirement(op.permission) if op.permission is not None else "")))
        if description:
            item["description"] = description
        if op.permission is not None:
            item["x-permission"] = str(op.permission)
        if op.body is not None:
            schema = refs[(op.body, "validation")]
            if op.merge_patch:
                schema = patch_schema(schema, schemas)
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
                "content": {m: {"schema": MULTIPART_FILE if m == "multipart/form-data"
                                else {"type": "string", "format": "binary"}}
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
            "Authenticate with `Authorization: Bearer <API key>`. Each operation needs "
            "one permission (`x-permission`), which the key's scope must hold, or the "
            f"answer is 403 naming it: {scopes_summary()} Errors are "
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
        # Ids are 64-bit and start at 1; any other number names nothing (404).
        schema: dict[str, Any] = ({"type": "integer", "minimum": 1, "maximum": MAX_ID}
                                  if converter == "int" else {"type": "string"})
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {**schema, **op.path.get(name, {})}})
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({
                "name": name, "in": "query", "required": name in required,
                "schema": _number_bounds({k: v for k, v in prop.items() if k != "title"}),
                **({"description": prop["description"]} if "description" in prop else {}),
            })
    for name, description in op.headers.items():
        params.append({"name": name, "in": "header", "required": False,
                       "description": description,
                       "schema": HEADER_SCHEMAS.get(name, {"type": "string"})})
    return params


def error_statuses(op: Operation) -> set[int]:
    """Every error status ``op`` can answer: those it declares (``errors=``, what its
    service raises: 404 for a missing resource, 409 for a conflict...) and those that follow
    from what the operation is:

    - authenticated: 401 (no key, or an unknown or revoked one) and 403 (a key whose scope
      lacks the operation's permission);
    - path parameters: 404 (an id or name that names nothing, or another merchant's);
    - a body (JSON or raw): 400 (malformed: not JSON, nested too deeply, not an object, a
      value the service cannot read), 413 (over the body cap, web/limits.py), 415 (another
      media type) and 422 (a rule broken);
    - query parameters: 422 (a value out of its schema);
    - headers: 400 for a malformed value; ``Idempotency-Key`` also 422 for a key used for
      another request (another body, member or operation).
    """
    codes = set(op.errors)
    if op.auth:
        codes.update((401, 403))
    if path_params(op.rule):
        codes.add(404)
    if op.body is not None or op.media:
        codes.update((400, 413, 415, 422))
    if op.query is not None:
        codes.add(422)
    if op.headers:
        codes.add(400)
    if "Idempotency-Key" in op.headers:
        codes.add(422)
    return codes


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
        # The same answer in another media type (a CSV of the numbers), as the request asks.
        ok["content"].update({m: {"schema": {"type": "string"}} for m in op.produces})
    elif op.produces:
        ok["content"] = {m: {"schema": {"type": "string"} if m.startswith("text/")
                             or m.endswith("+xml") else {"type": "string", "format": "binary"}}
                         for m in op.produces}
    responses = {str(op.status): ok}
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    for code in sorted(error_statuses(op)):
        responses[str(code)] = {"description": HTTPStatus(code).phrase, "content": problem}
    return responses


_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _number_bounds(schema: Any) -> Any:
    """``schema`` with the bounds pydantic leaves as ``gt``/``ge``/``lt``/``le`` beside the
    ``anyOf`` of an optional decimal (number or text), which JSON Schema does not know, put
    on its number branch as ``exclusiveMinimum``/``minimum``/...; changed in place."""
    if isinstance(schema, list):
        for item in schema:
            _number_bounds(item)
    elif isinstance(schema, dict):
        for value in schema.values():
            _number_bounds(value)
        bounds = {_BOUNDS[k]: float(schema.pop(k)) for k in list(schema) if k in _BOUNDS}
        for branch in schema.get("anyOf", ()) if bounds else ():
            if branch.get("type") in ("number", "integer"):
                branch.update(bounds)
    return schema


def patch_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of a JSON Merge Patch (RFC 7396) body whose top level is ``schema`` (a
    patch model: its fields optional, ``null`` where the field can be cleared).

    The objects it holds merge key by key, so they are patches too: a ``<Name>Patch`` copy
    of each model (added to ``defs``) where no key is required and ``null`` removes one
    (back to its default, or to ``null`` where that is a value): every key may be ``null``
    but the required ones, which cannot be removed, and a key the model does not know may
    only be ``null`` (removing nothing). Values of a map (``{"coffee": 5}``) likewise. Lists
    and other values replace whole and keep their schemas.
    """
    top = defs[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
    patched = dict(top)
    patched["properties"] = {name: _patched(prop, defs)
                             for name, prop in top.get("properties", {}).items()}
    name = schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else None
    if name is None:
        return patched
    defs[name] = patched
    return schema


def _patched(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of a value inside a merge patch: objects become patches of themselves."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = defs[name]
        if target.get("type") != "object" or name.endswith("Patch"):
            return schema
        patch_name = name.removesuffix("-Input") + "Patch"
        if patch_name not in defs:
            defs[patch_name] = {}  # a model that holds itself stops here
            defs[patch_name] = _object_patch(target, defs)
        return {**schema, "$ref": schema["$ref"].rsplit("/", 1)[0] + "/" + patch_name}
    if "anyOf" in schema:
        return {**schema, "anyOf": [_patched(s, defs) for s in schema["anyOf"]]}
    if schema.get("type") == "object":
        return _object_patch(schema, defs)
    return schema


def _object_patch(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", ()))
    out = {k: v for k, v in schema.items()
           if k not in ("required", "minProperties", "properties", "additionalProperties")}
    if "properties" in schema:
        out["properties"] = {
            name: (_patched(prop, defs) if name in required
                   else _nullable(_patched(prop, defs)))
            for name, prop in schema["properties"].items()}
    extra = schema.get("additionalProperties", True if "properties" not in schema else None)
    if isinstance(extra, dict):
        out["additionalProperties"] = _nullable(_patched(extra, defs))
    elif extra is False:
        out["additionalProperties"] = {"type": "null"}
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    branches = schema.get("anyOf", [schema])
    if any(b.get("type") == "null" for b in branches):
        return schema
    outer = {k: schema[k] for k in ("title", "description", "default") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in outer}
    return {"anyOf": [inner, {"type": "null"}], **outer}
