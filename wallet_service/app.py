"""The application factory: the one place where configuration, database and blueprints meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask import Response
from flask import jsonify
from flask import request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import logs
from . import web
from .config import load_settings
from .state import build_state
from .web.problems import from_http_exception
from .web.problems import from_unexpected


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``WALLET_*`` variables, then ``config`` (setting names without the
    prefix, e.g. ``{"DATABASE_URL": ...}``).

    :raises ConfigurationError: a setting is missing or wrong; the message names it.
    """
    settings = load_settings(config)
    logs.configure(settings.log_level, settings.log_format)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        # Behind TLS proxies: the client's address (rate limits, device logs), https
        # (request.is_secure, secure cookies) and the host come from the headers the proxies
        # set; only the last ``trusted_proxies`` entries count, so a client cannot forge them.
        # X-Forwarded-Prefix is not trusted: the service is served at the root of its host.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=0)
    # The one key of this app's state (typed: see wallet_service.state).
    app.extensions["wallet"] = build_state(settings)

    web.init_app(app)
    from .web import observe

    observe.init_app(app)  # request ids, request metrics, /metrics; before the limits
    _register_input_limits(app)
    from .web import api
    from .web import apple
    from .web import enroll
    from .web import google
    from .web import posters
    from .web import public

    app.register_blueprint(api.bp)
    app.register_blueprint(apple.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(enroll.bp)
    app.register_blueprint(google.bp)
    app.register_blueprint(posters.bp)
    from .web import console

    app.register_blueprint(console.bp)
    from .web import till

    app.register_blueprint(till.bp)
    _register_app_handlers(app)
    return app


def _register_input_limits(app: Flask) -> None:
    """Bounds on requests and the security headers of responses (web/limits.py,
    web/headers.py); before the blueprints, whose routes take the id converter."""
    from .web import headers
    from .web import limits

    app.request_class = limits.LimitedRequest
    app.config["MAX_CONTENT_LENGTH"] = limits.SMALL_BODY  # raised per route family
    app.url_map.converters["int"] = limits.Int64Converter
    app.url_value_preprocessor(limits.reject_huge_ids)
    app.before_request(limits.cap_body)
    app.after_request(headers.secure_headers)


def _register_app_handlers(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness and database reachability, for load balancers and process managers."""
        try:
            with web.wallet(app).engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return jsonify(status="unavailable", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        # Routing errors (unknown path, wrong method, body too large) under the API are JSON.
        if request.path.startswith("/api/"):
            return from_http_exception(exc)
        return exc

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        return from_unexpected(exc)
