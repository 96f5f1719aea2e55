"""One error envelope for every failure: `{"error": {"code", "message", "correlation_id"}}`.

ApiError                 an HTTP error with a stable `code` and a message for people
(plus handlers here for quart-schema validation, werkzeug HTTP errors,
undecodable bodies and anything unexpected, which becomes a logged 500)
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError
from quart import Quart, Response, g, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from hub.model import JSON

log = structlog.get_logger("api")


class ApiError(Exception):
    """An error answered with `status` and the envelope; `details` adds machine-readable hints."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, JSON]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def envelope(code: str, message: str, details: list[dict[str, JSON]] | None = None) -> JSON:
    """The error body, carrying the request's correlation id."""
    error: dict[str, JSON] = {
        "code": code,
        "message": message,
        "correlation_id": g.get("correlation_id"),
    }
    if details:
        error["details"] = list(details)
    return {"error": error}


def _respond(err: ApiError) -> Response:
    response = jsonify(envelope(err.code, err.message, err.details))
    response.status_code = err.status
    response.headers.update(err.headers)
    return response


def _validation_details(exc: ValidationError) -> list[dict[str, JSON]]:
    return [
        {
            "field": ".".join(str(part) for part in e["loc"]) or "body",
            "rule": e["type"],
            "message": e["msg"],
        }
        for e in exc.errors(include_url=False)
    ]


def install_error_handlers(app: Quart) -> None:
    """Map every failure to the envelope."""

    @app.errorhandler(ApiError)
    async def api_error(err: ApiError) -> Response:
        return _respond(err)

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(err: RequestSchemaValidationError) -> Response:
        cause: Any = err.validation_error
        if isinstance(cause, ValidationError):
            details = _validation_details(cause)
            first = details[0]
            message = f"{first['field']}: {first['message']}"
        else:
            details, message = [], f"invalid request: {cause}"
        return _respond(ApiError(422, "validation_failed", message, details=details))

    @app.errorhandler(HTTPException)
    async def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        code = (err.name or "error").lower().replace(" ", "_")
        message = err.description or err.name or "error"
        if status == 400:
            code, message = "malformed_request", "the request body is not valid JSON"
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        return _respond(ApiError(status, code, message, headers=headers))

    @app.errorhandler(UnicodeDecodeError)
    async def decode_error(err: UnicodeDecodeError) -> Response:
        return _respond(ApiError(400, "malformed_request", "the request body is not UTF-8"))

    @app.errorhandler(Exception)
    async def unexpected(err: Exception) -> Response:
        log.exception("api.unexpected_error")
        return _respond(ApiError(500, "internal_error", "internal error; quote the correlation id"))
