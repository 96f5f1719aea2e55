"""The Quart-Trio application: routes, WebSocket, OpenAPI, error envelope, correlation ids.

Every request gets a correlation id (the client's `X-Request-ID` if it is
short and printable, else a new one), echoed in `X-Request-ID` and in every
error envelope, and bound, with the caller's `user` and the path's `vin` /
`command_id`, to every log line written while it runs (structlog
contextvars, cleared when it ends). It is timed for `/metrics`, checked
against `max_body_bytes` and, with `cors_allow_origins`, answered with CORS
headers; every answer gets the security headers of `api.security_headers`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress

import structlog
import trio
from quart import Response, g, request, websocket
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.accounts import accounts
from api.audit import audit
from api.auth import TokenIssuer
from api.bodies import DiscardingRequest, ShieldedEndConnection, finish_oversized_body
from api.catalog import catalog
from api.config import ApiConfig
from api.console import install_console
from api.cors import CorsPolicy
from api.errors import install_error_handlers
from api.health import health
from api.json_depth import limit_json_depth
from api.metrics import Metrics, attach_metrics, serve_metrics
from api.openapi import ApiOpenAPIProvider, docs
from api.ratelimit import install_rate_limits
from api.routes import api
from api.security_headers import add_security_headers
from api.session_check import ActiveSessions, Lookup, SessionFacts
from api.shedding import RequestShedding
from api.state import AppState, attach_state
from api.users import users
from api.vehicles import vehicles
from api.websocket import ws
from hub import Hub, HubConfig
from storage import Database, KeyValue

log = structlog.get_logger("api.http")

#: An `X-Request-ID` we echo must be short and printable; others are replaced.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(
    hub: Hub,
    db: Database,
    config: ApiConfig,
    hub_config: HubConfig,
    keyvalue: KeyValue | None = None,
) -> QuartTrio:
    """The operator API of one hub node (`keyvalue`: Redis, shared with other nodes)."""
    app = QuartTrio("sovd-hub")
    app.request_class = DiscardingRequest  # sees the end of a body over max_body_bytes
    app.asgi_http_class = ShieldedEndConnection  # `Connection: close` really closes
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    QuartSchema(
        app,
        info=Info(title="sovd-hub", version="0.1.0"),
        openapi_path="/openapi.json",
        swagger_ui_path=None,  # ours (api.openapi.docs) serves its assets itself: no CDN
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}},
        openapi_provider_class=ApiOpenAPIProvider,  # security per operation, every error answer
    )
    tokens = TokenIssuer(
        config.jwt_secret,
        config.access_token_ttl_s,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
    )
    tokens.sessions = sessions = ActiveSessions(_session_lookup(db), config.session_recheck_s)
    tokens.revocations.forget = sessions.forget
    limit_json_depth(app, config.max_json_depth)  # wraps quart-schema's JSON provider
    attach_state(
        app.extensions,
        AppState(
            hub,
            db,
            tokens,
            config,
            hub_config,
            keyvalue=keyvalue,
            ws_reads=trio.CapacityLimiter(config.ws_max_concurrent_reads),
        ),
    )
    app.register_blueprint(accounts)
    app.register_blueprint(users)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(vehicles)
    app.register_blueprint(audit)
    app.register_blueprint(catalog)
    app.register_blueprint(ws)
    app.register_blueprint(docs)
    install_console(app, config.console_dir)
    install_error_handlers(app)
    shedding = RequestShedding(
        app.asgi_app, config.max_concurrent_requests, config.max_drain_bytes, config.drain_timeout_s
    )
    _install_request_hooks(app, Metrics(hub, db, shedding), config)
    install_rate_limits(app, config, keyvalue)
    app.asgi_app = shedding  # type: ignore[method-assign]  # the ASGI middleware pattern
    return app


def _session_lookup(db: Database) -> Lookup:
    async def lookup(session_id: uuid.UUID) -> SessionFacts | None:
        found = await db.accounts.session_of(session_id)
        if found is None:
            return None
        user, session = found
        return SessionFacts(user.username, user.role, user.enabled, session.revoked_at is not None)

    return lookup


def _install_request_hooks(app: QuartTrio, metrics: Metrics, config: ApiConfig) -> None:
    """Correlation ids, log context, metrics, the body limit and CORS, for every request."""
    attach_metrics(app.extensions, metrics)
    metrics.hub.journal.observer = metrics
    if config.metrics_enabled:
        app.add_url_rule("/metrics", "metrics", serve_metrics)
    cors = CorsPolicy.from_config(config)
    max_body = config.max_body_bytes

    @app.before_request
    async def begin_request() -> Response | None:
        g.started = time.perf_counter()
        g.correlation_id = _correlation_id(request.headers.get("X-Request-ID", ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            correlation_id=g.correlation_id, **_path_context(request.view_args)
        )
        length = request.content_length
        if length is not None and length > max_body:  # also for routes that read no body
            raise RequestEntityTooLarge()
        return cors.preflight() if cors is not None else None

    @app.after_request
    async def end_request(response: Response) -> Response:
        if request.content_length or "chunked" in request.headers.get("Transfer-Encoding", ""):
            await _drain_body()
            await finish_oversized_body(
                request.body, response, config.max_drain_bytes, config.drain_timeout_s
            )
        response.headers["X-Request-ID"] = g.get("correlation_id") or ""
        add_security_headers(response.headers, request.path)
        if cors is not None:
            cors.decorate(response)
        started = g.get("started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else None
            seconds = time.perf_counter() - started
            metrics.observe_request(rule, request.method, response.status_code, seconds)
            log.debug(
                "http.request",
                method=request.method,
                route=rule,
                status=response.status_code,
                ms=round(seconds * 1000, 3),
            )
        return response

    @app.teardown_request
    async def forget_request(exc: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()

    @app.before_websocket
    async def begin_websocket() -> None:
        g.correlation_id = _correlation_id(websocket.headers.get("X-Request-ID", ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=g.correlation_id)
        metrics.websockets.inc()
        g.websocket_counted = True

    @app.teardown_websocket
    async def end_websocket(exc: BaseException | None) -> None:
        if g.get("websocket_counted"):
            metrics.websockets.dec()
        structlog.contextvars.clear_contextvars()


async def _drain_body() -> None:
    """Read what is left of the request body before answering (cached if a handler read it).

    An answer sent before the body has arrived (a 401 or a bad header is found
    first) would otherwise leave hypercorn's keep-alive connection stuck: the
    client's next request on it never gets an answer.
    """
    with suppress(HTTPException):  # too large or too slow: the answer says so already
        await request.get_data(cache=True)


def _correlation_id(given: str) -> str:
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _path_context(view_args: Mapping[str, object] | None) -> dict[str, str]:
    """The `vin` and `command_id` of the request's path, for its log lines."""
    if not view_args:
        return {}
    return {key: str(view_args[key]) for key in ("vin", "command_id") if key in view_args}
