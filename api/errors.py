"""One error envelope for every failure: `{"error": {"code", "message", "correlation_id"}}`.

The API's exceptions (every one it raises on purpose):

```
EdgeError                an operator's request or message cannot be served as it came
├── ApiError             an HTTP error with a stable `code` and a message for people (here)
├── InvalidToken         a bearer or refresh token is missing, malformed, forged, expired
│                        or revoked; `code` is what the API answers (`api.auth`)
├── WeakPassword         a new password breaks a rule, named by `rule`; also a ValueError
│                        (`api.passwords`, applied by the CLI too)
├── ClientError          a WebSocket message we cannot act on: an error frame (`api.ws_frames`)
└── NotReady             a part the node needs does not answer: `/health/ready` 503 (`api.health`)
```

The handlers here turn an `ApiError`, quart-schema's validation errors,
werkzeug's HTTP errors, undecodable bodies and anything unexpected (a logged
500) into the envelope; the others are caught where they are raised.

Codes of the generic failures: `not_found` (404, no such route),
`method_not_allowed` (405, with `Allow`), `malformed_request` (400, a body
that is not JSON or not UTF-8), `json_too_deep` (400, JSON nested deeper
than `max_json_depth`), `payload_too_large` (413, a body over
`max_body_bytes`, also when sent chunked), `unsupported_media_type` (415, a
JSON body sent without `Content-Type: application/json`),
`validation_failed` (422, with `details`), `internal_error` (500).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from pydantic import BaseModel, Field, JsonValue, ValidationError
from quart import Quart, Response, current_app, g, jsonify, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from hub import JSON

log = structlog.get_logger("api")


class EdgeError(Exception):
    """Base of every exception the API raises on purpose."""


class ApiError(EdgeError):
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


class ErrorBody(BaseModel):
    """What went wrong: a stable `code` for programs, a `message` for people."""

    code: str = Field(description="stable, machine-readable, e.g. validation_failed")
    message: str = Field(description="what was expected, what came, and what to change")
    correlation_id: str | None = Field(description="the request's X-Request-ID; quote it")
    details: list[dict[str, JsonValue]] | None = Field(
        default=None, description="per-field problems: field, rule, message"
    )


class ErrorResponse(BaseModel):
    """The one envelope of every error answer."""

    error: ErrorBody


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


def _path_exists(methods: Iterable[str]) -> bool:
    """True if the request's path matches a route for one of `methods`."""
    adapter = current_app.create_url_adapter(request)
    for method in methods:
        try:
            if adapter is not None:
                adapter.match(method=method)
                return True
        except HTTPException:
            continue
    return False


def install_error_handlers(app: Quart) -> None:
    """Map every failure to the envelope."""

    @app.errorhandler(ApiError)
    async def api_error(err: ApiError) -> Response:
        return _respond(err)

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(err: RequestSchemaValidationError) -> Response:
        if type(err) is RequestSchemaValidationError and not request.is_json:  # a body, not JSON
            given = request.mimetype or "no Content-Type"
            return _respond(
                ApiError(
                    415,
                    "unsupported_media_type",
                    f"the request body must be JSON sent with Content-Type: application/json; "
                    f"got {given}",
                )
            )
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
        if isinstance(err, MethodNotAllowed) and not _path_exists(err.valid_methods or ()):
            err = NotFound()  # werkzeug says 405 when a path matched no rule's converters
            status = 404
        code = (err.name or "error").lower().replace(" ", "_")
        message = err.description or err.name or "error"
        if status == 400:
            code, message = "malformed_request", "the request body is not valid JSON"
        elif status == 413:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            code = "payload_too_large"
            message = f"the request body is over {limit} bytes (max_body_bytes); send less"
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        return _respond(ApiError(status, code, message, headers=headers))

    @app.errorhandler(UnicodeDecodeError)
    async def decode_error(err: UnicodeDecodeError) -> Response:
        return _respond(ApiError(400, "malformed_request", "the request body is not UTF-8"))

    @app.errorhandler(Exception)
    async def unexpected(err: Exception) -> Response:
        log.exception("api.unexpected_error")
        return _respond(ApiError(500, "internal_error", "internal error; quote the correlation id"))
