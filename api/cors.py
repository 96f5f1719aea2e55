"""CORS, for a browser console served from another origin (`cors_allow_origins`; empty: off).

A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed
origin is answered 204 with the allowed methods, headers and max-age; from
another origin, 403 in the error envelope. Every other answer to an allowed
origin, errors included, carries `Access-Control-Allow-Origin` and exposes the
headers a client needs (`X-Request-ID`, `Retry-After`, `Location`,
`RateLimit-*`, `WWW-Authenticate`). With `*`, any origin may call and no
credentials (cookies) are allowed; the API itself authenticates with the
`Authorization` header, which needs no credentials mode. The WebSocket is not
subject to CORS and authenticates with its first message, not a cookie.
"""

from __future__ import annotations

from dataclasses import dataclass

from quart import Response, request

from api.config import ApiConfig
from api.errors import ApiError

#: Response headers a browser script may read.
EXPOSED_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "WWW-Authenticate",
)

_EXPOSED = ", ".join(EXPOSED_HEADERS)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may call, and the header values answered to them (computed once)."""

    origins: frozenset[str]
    any_origin: bool
    allow_methods: str
    allow_headers: str
    max_age: str
    credentials: bool

    @classmethod
    def from_config(cls, config: ApiConfig) -> CorsPolicy | None:
        """The policy of `config`, or None when CORS is off (no origins)."""
        if not config.cors_allow_origins:
            return None
        return cls(
            origins=frozenset(o for o in config.cors_allow_origins if o != "*"),
            any_origin="*" in config.cors_allow_origins,
            allow_methods=", ".join(config.cors_allow_methods),
            allow_headers=", ".join(config.cors_allow_headers),
            max_age=str(config.cors_max_age_s),
            credentials=config.cors_allow_credentials,
        )

    def allows(self, origin: str) -> bool:
        """True if a page of `origin` may call the API."""
        return self.any_origin or origin in self.origins

    def preflight(self) -> Response | None:
        """(before_request) The answer to a CORS preflight, or None for any other request."""
        origin = request.headers.get("Origin")
        if (
            request.method != "OPTIONS"
            or origin is None
            or "Access-Control-Request-Method" not in request.headers
        ):
            return None
        if not self.allows(origin):
            raise ApiError(
                403,
                "cors_origin_refused",
                f"origin {origin} may not call this API; add it to cors_allow_origins "
                "(SOVD_HUB_CORS_ALLOW_ORIGINS) if it should",
            )
        response = Response("", status=204)
        response.headers["Access-Control-Allow-Methods"] = self.allow_methods
        response.headers["Access-Control-Allow-Headers"] = self.allow_headers
        response.headers["Access-Control-Max-Age"] = self.max_age
        return response

    def decorate(self, response: Response) -> None:
        """(after_request) Add the CORS headers when the request came from an allowed origin."""
        if not self.any_origin:
            response.vary.add("Origin")  # the answer depends on the origin: caches must know
        origin = request.headers.get("Origin")
        if origin is None or not self.allows(origin):
            return
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
        headers["Access-Control-Expose-Headers"] = _EXPOSED
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
