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

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from pydantic import BaseModel

from ..errors import InvalidInput
from ..validation import validate


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


class ApiBlueprint(Blueprint):
    """A blueprint that remembers its operations for the OpenAPI document."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operations: list[Operation] = []
        self.auth_decorator: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None

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
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            op = Operation(
                rule=rule, method=method, endpoint=view.__name__, summary=summary,
                description=(view.__doc__ or "").strip(), body=body, query=query,
                response=response, status=int(status), errors=errors, tags=tags,
                headers=headers or {}, auth=auth, media=media,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def wrapper(**kwargs: Any) -> Response:
                if body is not None:
                    kwargs["body"] = validate(body, json_body())
                if query is not None:
                    kwargs["query"] = validate(query, request.args.to_dict())
                result = view(**kwargs)
                return to_response(result, op.status)

            target = wrapper
            if auth and self.auth_decorator is not None:
                target = self.auth_decorator(wrapper)
            self.add_url_rule(rule, view.__name__, target, methods=[method])
            return view

        return decorator


def json_body() -> Any:
    """The parsed JSON object of the request.

    :raises InvalidInput: the body is missing, not JSON, or not an object.
    """
    if not request.is_json:
        raise InvalidInput("body: send a JSON object with Content-Type: application/json",
                           field="body")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("body: must be a JSON object", field="body")
    return data


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
