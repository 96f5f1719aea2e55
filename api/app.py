"""The Quart-Trio application: routes, WebSocket, OpenAPI, error envelope, correlation ids."""

from __future__ import annotations

import re
import uuid

import structlog
from quart import Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from api.auth import TokenIssuer
from api.config import ApiConfig
from api.errors import install_error_handlers
from api.routes import api, health
from api.state import AppState, attach_state
from api.vehicles import vehicles
from api.websocket import ws
from hub import Hub, HubConfig
from storage import Database

#: An `X-Request-ID` we echo must be short and printable; others are replaced.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(hub: Hub, db: Database, config: ApiConfig, hub_config: HubConfig) -> QuartTrio:
    """The operator API of one hub node."""
    app = QuartTrio("sovd-hub")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    QuartSchema(
        app,
        info=Info(title="sovd-hub", version="0.1.0"),
        openapi_path="/openapi.json",
        swagger_ui_path=None,  # its assets come from a CDN; air-gapped sites cannot load them
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}},
        security=[{"bearer": []}],
    )
    attach_state(
        app.extensions,
        AppState(
            hub, db, TokenIssuer(config.jwt_secret, config.access_token_ttl_s), config, hub_config
        ),
    )
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(vehicles)
    app.register_blueprint(ws)
    install_error_handlers(app)

    @app.before_request
    async def bind_correlation_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.correlation_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(correlation_id=g.correlation_id)

    @app.after_request
    async def echo_correlation_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("correlation_id") or ""
        structlog.contextvars.unbind_contextvars("correlation_id")
        return response

    return app
