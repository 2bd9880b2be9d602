"""Declaring API operations once: validation of the input, serialization of the output and
the OpenAPI document all come from the same pydantic models."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from http import HTTPStatus
from typing import Any
from typing import get_args

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from pydantic import BaseModel

from ..errors import InvalidInput
from ..errors import UnsupportedMediaType
from ..errors import ValidationFailed
from ..merge_patch import MEDIA_TYPE as MERGE_PATCH_MEDIA_TYPE
from ..permissions import Permission
from ..validation import validate

MERGE_PATCH_NOTE = ("The body is a JSON Merge Patch (RFC 7396): objects merge key by key, "
                    "lists and other values replace whole, null clears a field (back to its "
                    "default); fields left out keep their value.")


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    tags: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    media: tuple[str, ...] = ()  # a raw (non-JSON) request body of these types
    merge_patch: bool = False  # ``body`` is a JSON Merge Patch of that model (RFC 7396)
    #: JSON schemas of path parameters narrower than their converter's (an enum of kinds)
    path: dict[str, dict[str, Any]] = field(default_factory=dict)
    produces: tuple[str, ...] = ()  # the media types of a successful answer that is not JSON
    permission: Permission | None = None  # what the caller must hold; None: no caller (auth off)


class ApiBlueprint(Blueprint):
    """A blueprint that remembers its operations for the OpenAPI document.

    ``auth_decorator(permission)`` wraps each authenticated operation's view: it checks the
    caller's credential and that it holds the operation's permission (``permissions.py``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operations: list[Operation] = []
        self.auth_decorator: Callable[
            [Permission], Callable[[Callable[..., Any]], Callable[..., Any]]] | None = None

    def operation(
        self,
        rule: str,
        method: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = HTTPStatus.OK,
        errors: tuple[int, ...] = (),
        tags: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        auth: bool = True,
        media: tuple[str, ...] = (),
        merge_patch: bool = False,
        permission: Permission | str | None,
        path: dict[str, dict[str, Any]] | None = None,
        produces: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare an operation. ``permission`` is required: what the caller must hold
        (``None`` only with ``auth=False``, an operation without a caller).

        :raises TypeError: at import, an operation that names no permission, or names one
            without authentication.
        :raises ValueError: at import, a permission that does not exist.
        """
        if auth and permission is None:
            raise TypeError(f"{method} {rule}: an authenticated operation needs a permission")
        if not auth and permission is not None:
            raise TypeError(f"{method} {rule}: a permission needs auth=True")
        needed = None if permission is None else Permission(permission)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            op = Operation(
                rule=rule, method=method, endpoint=view.__name__, summary=summary,
                description=(view.__doc__ or "").strip(), body=body, query=query,
                response=response, status=int(status), errors=errors, tags=tags,
                headers=headers or {}, auth=auth, media=media, merge_patch=merge_patch,
                permission=needed, path=path or {}, produces=produces,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def wrapper(**kwargs: Any) -> Response:
                if body is not None and merge_patch:
                    kwargs["body"] = merge_patch_body(body)
                elif body is not None:
                    kwargs["body"] = validate(body, json_body())
                elif media:
                    require_media_type(media)
                if query is not None:
                    # Query values are text by nature: "50" is the number 50 there.
                    kwargs["query"] = validate(query, request.args.to_dict(), strict=False)
                result = view(**kwargs)
                return to_response(result, op.status)

            target = wrapper
            if needed is not None and self.auth_decorator is not None:
                target = self.auth_decorator(needed)(wrapper)
            self.add_url_rule(rule, view.__name__, target, methods=[method])
            return view

        return decorator


def json_body(*, merge_patch: bool = False) -> Any:
    """The parsed JSON object of the request.

    :raises UnsupportedMediaType: a body (or a ``Content-Type``) of another media type.
    :raises InvalidInput: the body is missing, not JSON, nested too deeply (web/limits.py),
        or not an object.
    """
    if not (request.is_json or (merge_patch and request.mimetype == MERGE_PATCH_MEDIA_TYPE)):
        types = "application/json" + (f" or {MERGE_PATCH_MEDIA_TYPE}" if merge_patch else "")
        message = f"body: send a JSON object with Content-Type: {types}"
        if request.mimetype or request.content_length:
            raise UnsupportedMediaType(message, field="body")
        raise InvalidInput(message, field="body")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("body: must be a JSON object", field="body")
    return data


def require_media_type(media: tuple[str, ...]) -> None:
    """Refuse a raw body whose ``Content-Type`` is none of ``media``.

    :raises UnsupportedMediaType: another media type, or none.
    """
    if request.mimetype not in media:
        raise UnsupportedMediaType(
            f"body: send the body with Content-Type: {' or '.join(media)}", field="body")


def merge_patch_body(model: type[BaseModel]) -> dict[str, Any]:
    """The request's JSON Merge Patch of ``model``, as sent (the caller merges it and
    validates the result).

    Checked here: the top-level keys are fields of ``model``; ``null`` only on fields whose
    type allows it; other values that are not objects have the field's type. Objects are
    partial by nature and are checked once merged.

    :raises InvalidInput: the body is missing, not JSON, or not an object.
    :raises ValidationFailed: an unknown key, a ``null`` on a field that cannot be cleared,
        a value of the wrong type.
    """
    data: dict[str, Any] = json_body(merge_patch=True)
    for key, value in data.items():
        spec = model.model_fields.get(key)
        if value is None and spec is not None and not _allows_none(spec.annotation):
            raise ValidationFailed(f"{key}: required; null cannot clear it", field=key)
    validate(model, {k: v for k, v in data.items()
                     if not (isinstance(v, dict) and k in model.model_fields)})
    return data


def _allows_none(annotation: Any) -> bool:
    return annotation is None or annotation is type(None) or type(None) in get_args(annotation)


def to_response(result: Any, default_status: int) -> Response:
    headers: dict[str, str] = {}
    status = default_status
    if isinstance(result, tuple):
        result, status, *rest = result
        if rest:
            headers = rest[0]
    if isinstance(result, Response):
        return result
    if result is None:
        response = Response(status=status)
    else:
        payload = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        response = jsonify(payload)
        response.status_code = status
    response.headers.update(headers)
    return response


_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def path_params(rule: str) -> list[tuple[str, str]]:
    return [(m.group(2), m.group(1) or "string") for m in _PATH_PARAM.finditer(rule)]
