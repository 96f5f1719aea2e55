"""The OpenAPI 3.1 document (`/openapi.json`) and Swagger UI (`/docs`), served with no internet.

quart-schema builds the document from the routes; `ApiOpenAPIProvider` adds
what it leaves out, so that the document describes every answer a route can
give:

- security per operation: `bearer` on routes guarded by `api.access.requires`,
  none on the others (login, health);
- the error answers (`ErrorResponse` envelope) that apply to every such
  route: 401/403 when guarded, 400/413/415/422 when it takes a JSON body,
  422 for a query string, 404 when the path has parameters, plus the
  route's own (`@errors(409, 503)`);
- `requestBody.required`, `format: uuid` for `<uuid:...>` parameters and the
  `X-Request-ID` header every answer carries.

Swagger UI's assets come from the `swagger-ui-bundle-v2` package and are
served by the app itself (`/docs/swagger-ui-bundle.js`, `/docs/swagger-ui.css`).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from quart import Blueprint, Response, send_from_directory
from quart_schema import hide
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
)
from werkzeug.routing import BaseConverter, IntegerConverter, Rule, UUIDConverter

from api.errors import ApiError, ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])

#: Set by `api.access.requires` on the handlers it guards (the role it requires).
REQUIRED_ROLE_ATTRIBUTE = "_sovd_hub_required_role"
_ERRORS_ATTRIBUTE = "_sovd_hub_errors"
_EMPTY_ATTRIBUTE = "_sovd_hub_empty"
_STREAMED_ATTRIBUTE = "_sovd_hub_streamed"

_DESCRIPTIONS = {
    400: "malformed_request: the body is not JSON or not UTF-8; json_too_deep: it nests "
    "deeper than max_json_depth",
    401: "the bearer token is missing, expired or invalid (or the credentials are wrong)",
    403: "the caller's role is not allowed to do this",
    404: "no such resource (or not visible to the caller)",
    409: "conflicts with the resource's current state",
    413: "payload_too_large: the body is over max_body_bytes",
    415: "unsupported_media_type: send the body as JSON with Content-Type: application/json",
    422: "validation_failed: the input breaks a rule; `details` names each field",
    429: "too many requests; retry after Retry-After seconds",
    503: "the hub cannot take this now (storage down, vehicle busy); see the message",
}


def errors(*statuses: int) -> Callable[[F], F]:
    """Document error answers a route gives beyond the generic ones (put it below the route)."""

    def decorate(handler: F) -> F:
        known: set[int] = getattr(handler, _ERRORS_ATTRIBUTE, set())
        setattr(handler, _ERRORS_ATTRIBUTE, known | set(statuses))
        return handler

    return decorate


def no_content(status: int = 204) -> Callable[[F], F]:
    """Document a success answer with no body (put it below the route)."""

    def decorate(handler: F) -> F:
        setattr(handler, _EMPTY_ATTRIBUTE, status)
        return handler

    return decorate


def streamed(description: str, *media_types: str, status: int = 200) -> Callable[[F], F]:
    """Document a success answer whose body is a stream of text in one of `media_types`."""

    def decorate(handler: F) -> F:
        setattr(handler, _STREAMED_ATTRIBUTE, (status, description, media_types))
        return handler

    return decorate


class ApiOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider, completed with security, errors and formats (see module doc)."""

    _document: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """The document, built on first use (about 0.2 s) and kept: routes do not change."""
        if self._document is None:
            self._document = super().schema()
        return self._document

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """The path item of `rule`, with every answer its operations can give."""
        paths, components = super().build_paths(rule)
        handler = self._app.view_functions[rule.endpoint]
        guarded = getattr(handler, REQUIRED_ROLE_ATTRIBUTE, None) is not None
        statuses: set[int] = set(getattr(handler, _ERRORS_ATTRIBUTE, set()))
        if guarded:
            statuses |= {401, 403}
        if getattr(handler, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) is not None:
            statuses |= {400, 413, 415, 422}
        if getattr(handler, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None) is not None:
            statuses.add(422)
        if rule.arguments:
            statuses.add(404)
        error_responses = {status: _error_response(status) for status in sorted(statuses)}
        empty = getattr(handler, _EMPTY_ATTRIBUTE, None)
        if empty is not None:
            error_responses[empty] = {"description": "done; no body"}
        stream = getattr(handler, _STREAMED_ATTRIBUTE, None)
        if stream is not None:
            status, description, media_types = stream
            content = {media_type: {"schema": {"type": "string"}} for media_type in media_types}
            error_responses[status] = {"description": description, "content": content}
        for path_item in paths.values():
            for operation in path_item.values():
                operation["security"] = [{"bearer": []}] if guarded else []
                if "requestBody" in operation:
                    operation["requestBody"]["required"] = True
                responses = {**error_responses, **operation["responses"]}
                operation["responses"] = {
                    status: _with_request_id(response) for status, response in responses.items()
                }
        components["ErrorResponse"] = ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["ErrorResponse"].pop("$defs", {}))
        return paths, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """A path parameter; `<uuid:...>` ones say `format: uuid`, `<int(...)>` their range."""
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, UUIDConverter):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        elif isinstance(converter, IntegerConverter):
            low = converter.min if converter.min is not None else None if converter.signed else 0
            if low is not None:
                parameter["schema"]["minimum"] = low
            if converter.max is not None:
                parameter["schema"]["maximum"] = converter.max
        return parameter


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS.get(status, "error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _with_request_id(response: dict[str, Any]) -> dict[str, Any]:
    headers = {
        "X-Request-ID": {
            "description": "the request's correlation id (the client's, if valid, else new)",
            "required": True,
            "schema": {"type": "string"},
        }
    }
    return {**response, "headers": {**response.get("headers", {}), **headers}}


# Swagger UI, served from the installed package: no CDN, so air-gapped sites get it too.
docs = Blueprint("docs", __name__)

_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>sovd-hub API</title>
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png">
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/init.js"></script>
</body>
</html>
"""

# Relative URLs, so the page also works behind a proxy that mounts the hub under a prefix.
_INIT = """window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
});
"""


def swagger_ui_directory() -> Path:
    """Where the installed `swagger-ui-bundle-v2` keeps Swagger UI's files."""
    vendor = Path(str(importlib.resources.files("swagger_ui_bundle"))) / "vendor"
    found = sorted(vendor.glob("swagger-ui-*"))
    if not found:
        raise RuntimeError(f"no Swagger UI in {vendor}: reinstall swagger-ui-bundle-v2")
    return found[-1]


@docs.get("/docs")
@hide
async def swagger_ui() -> Response:
    """Interactive API documentation (Swagger UI)."""
    return Response(_PAGE, content_type="text/html; charset=utf-8")


@docs.get("/docs/init.js")
@hide
async def swagger_ui_init() -> Response:
    """The script that points Swagger UI at `/openapi.json`."""
    return Response(_INIT, content_type="text/javascript; charset=utf-8")


@docs.get("/docs/<asset>")
@hide
async def swagger_ui_asset(asset: str) -> Response:
    """Swagger UI's JavaScript, CSS and icons, from the installed package."""
    if asset not in _ASSETS:
        raise ApiError(404, "not_found", f"no documentation asset {asset!r}")
    # Public, versioned with the package: cacheable (other answers are `no-store`).
    return await send_from_directory(swagger_ui_directory(), asset, cache_timeout=86400)
