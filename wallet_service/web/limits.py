"""Bounds on what a request may carry, checked before any view reads it.

* **Body size per route family** (``body_limit``): Apple's devices and Google post a few
  hundred bytes (a push token, a device log, a signed callback), the customer's pages post a
  short form; the merchant API posts documents; an image upload posts the picture. A body
  over its family's cap is answered 413 from ``Content-Length`` without being read, and a
  body without one stops being read at the cap.
* **JSON** (``LimitedRequest``): nesting deeper than ``safe_json.MAX_DEPTH`` is a 400 that
  says so, and numbers are read exactly (``Decimal``), so an amount is never rounded on
  the way in.
* **Integer ids in paths** (``Int64Converter``, ``reject_huge_ids``): ids are 64-bit; a
  larger number names nothing and answers 404 instead of reaching the database driver.
"""

from __future__ import annotations

from typing import Any

from flask import Request
from flask import request
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from .. import safe_json
from ..apple.images import MAX_IMAGE_BYTES
from ..errors import InvalidInput
from ..schemas import MAX_ID

KB = 1024
#: Apple's web service, Google's callbacks, the customer's pages, and anything unrouted.
SMALL_BODY = 64 * KB
#: The merchant API's JSON documents (a program, a receipt of 500 lines, 1000 member ids).
API_BODY = 1024 * KB
#: An image upload: the picture itself plus a multipart envelope.
IMAGE_BODY = MAX_IMAGE_BYTES + 64 * KB
#: A customer base imported in one request (about 100,000 members of a plain CSV file);
#: larger ones go through the command line.
IMPORT_BODY = 10 * 1024 * KB + 64 * KB

_IMAGE_ENDPOINTS = frozenset({"merchant_api.put_program_image"})
_API_BLUEPRINTS = frozenset({"merchant_api"})
_IMPORT_ENDPOINTS = frozenset({"merchant_api.import_members", "console.import_members"})


def body_limit(blueprint: str | None, endpoint: str | None) -> int:
    """The most bytes a request to ``endpoint`` (of ``blueprint``) may send."""
    if endpoint in _IMAGE_ENDPOINTS:
        return IMAGE_BODY
    if endpoint in _IMPORT_ENDPOINTS:
        return IMPORT_BODY
    if blueprint in _API_BLUEPRINTS:
        return API_BODY
    return SMALL_BODY


def cap_body() -> None:
    """``before_request``: refuse a body over its route family's cap before it is read.

    :raises RequestEntityTooLarge: ``Content-Length`` is over the cap.
    """
    limit = body_limit(request.blueprint, request.endpoint)
    request.max_content_length = limit  # a body without Content-Length stops here
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the body is larger than {limit // KB} KB")


class _BoundedJSON:
    """``json_module`` of ``LimitedRequest``: ``safe_json`` with exact numbers."""

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        try:
            return safe_json.loads(data, exact_numbers=True)
        except safe_json.JSONTooDeep as exc:
            # Not a ValueError to Flask: even get_json(silent=True) reports it as such.
            raise InvalidInput(f"body: {exc}", field="body") from None


class LimitedRequest(Request):
    """Flask's request, with ``get_json`` reading through ``safe_json``.

    :raises InvalidInput: from ``get_json``: the JSON nests too deeply.
    """

    @property
    def json_module(self) -> Any:
        return _BoundedJSON

    @json_module.setter
    def json_module(self, _provider: Any) -> None:
        # Flask hands every request the app's JSON provider, which also reads the test
        # client's responses; request bodies alone are read through safe_json.
        pass


class Int64Converter(IntegerConverter):
    """``<int:...>`` of at most 19 digits: a longer number does not match the route (404)
    and is never converted. 19-digit numbers over ``MAX_ID`` are left to
    ``reject_huge_ids``: a converter refusing them would make werkzeug answer 405 where
    another method's route has the same path."""

    regex = r"\d{1,19}"


def reject_huge_ids(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """``url_value_preprocessor``: an id over ``MAX_ID`` names nothing.

    :raises NotFound: a path's integer is larger than a 64-bit id.
    """
    if values and any(type(v) is int and v > MAX_ID for v in values.values()):
        raise NotFound()
