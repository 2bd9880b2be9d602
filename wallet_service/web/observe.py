"""Request ids, request metrics and the ``/metrics`` page (README: Logs, Metrics).

Every request gets an id: a valid incoming ``X-Request-Id`` (a proxy's) or a fresh one. It
is on every log line written meanwhile, on the card changes the request makes
(``services.outbox``), and in the answer's ``X-Request-Id``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time
from typing import Any

from flask import Flask
from flask import Response
from flask import abort
from flask import g
from flask import request

from .. import metrics
from .. import tracing
from ..services import outbox
from . import get_session
from . import wallet

HEADER = "X-Request-Id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(_unbind)
    app.add_url_rule("/metrics", "metrics", _metrics_page, methods=["GET"])


def _begin() -> None:
    g.request_id_token = tracing.bind(request.headers.get(HEADER))
    g.request_started = time.perf_counter()


def _end(response: Response) -> Response:
    response.headers[HEADER] = tracing.current_request_id() or ""
    started = g.get("request_started")
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        metrics.HTTP_REQUESTS.labels(method, rule, str(response.status_code)).inc()
        metrics.HTTP_SECONDS.labels(method, rule).observe(time.perf_counter() - started)
    return response


def _unbind(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        tracing.unbind(token)


def _metrics_page() -> Any:
    """Prometheus text format, for a scraper that sends ``WALLET_METRICS_TOKEN`` as its
    bearer token; 404 while the setting is unset (the page does not exist)."""
    state = wallet()
    expected = state.settings.metrics_token
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()):
        return Response("a bearer token is required\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    stats = outbox.queue_stats(get_session(), dt.datetime.now(dt.UTC))
    families = metrics.scrape_families(
        stats, certificates=state.passes.days_left(),
        google_rate=state.settings.google_rate_per_second if state.settings.google_enabled
        else None)
    return Response(metrics.render(families), 200, content_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})
