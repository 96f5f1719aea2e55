"""Settings of the operator edge (HTTP + WebSocket), for one hub node.

Storage's settings are `storage.StorageConfig`.
"""

from __future__ import annotations

import dataclasses
import re

from hub import ConfigError, check_port, check_positive

#: HS256 keys shorter than this are refused (joserfc only warns).
MIN_JWT_SECRET_BYTES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class ApiConfig:
    """The REST and WebSocket API: where it listens and how it authenticates operators."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    jwt_secret: str = ""
    #: Access tokens carry these as `iss` and `aud`; a token with others is refused.
    jwt_issuer: str = "sovd-hub"
    jwt_audience: str = "sovd-hub-api"
    access_token_ttl_s: int = 900
    #: A token's session and user are read again from the database after this long.
    session_recheck_s: float = 60.0
    #: A session's refresh token expires when unused this long (each refresh renews it).
    refresh_token_ttl_s: int = 14 * 24 * 3600
    #: Reverse proxies in front of the node whose `X-Forwarded-For` is trusted (0: ignore it).
    forwarded_for_hops: int = 0
    ws_auth_timeout_s: float = 5.0
    #: Frames queued per WebSocket; a client that lets it fill is told `lagged` and closed (1013).
    ws_buffer_messages: int = 256
    #: How often a WebSocket re-checks its access token: expired or revoked closes it (4401).
    ws_token_check_s: float = 5.0
    #: Topics one WebSocket may follow at once; a subscribe beyond gets `too_many_subscriptions`.
    ws_max_subscriptions: int = 256
    #: Client messages per WebSocket (token bucket: `ws_message_burst` at once, refilled at
    #: `ws_messages_per_s`); beyond, refused (`rate_limited`), and a socket that goes on
    #: (`ws_message_burst` refusals not yet forgiven, one a second) is closed with 4429.
    ws_messages_per_s: float = 20.0
    ws_message_burst: int = 100
    #: Subscribe-time database reads in flight from all of the node's WebSockets together
    #: (each socket has at most one); keep it well under `database_pool_size`.
    ws_max_concurrent_reads: int = 4
    #: HTTP requests a node answers at once (not WebSockets, `/health/...`, `/metrics`);
    #: beyond, 503 `overloaded` with Retry-After before any route runs (`api.shedding`).
    max_concurrent_requests: int = 64
    #: Request bodies above this are refused with 413 (also when sent chunked).
    max_body_bytes: int = 64 * 1024
    #: After a 413, up to this many more body bytes are read and dropped so that the
    #: connection stays usable; a longer body gets `Connection: close` instead.
    max_drain_bytes: int = 1024 * 1024
    #: ... and for at most this long.
    drain_timeout_s: float = 5.0
    #: JSON bodies nested deeper than this (arrays and objects) are refused with 400.
    max_json_depth: int = 32
    #: The built web console served at `/` (`api.console`); "" for `console/dist` of the project.
    console_dir: str = ""
    #: Serve Prometheus metrics at `/metrics` (unauthenticated: restrict it in the network).
    metrics_enabled: bool = True
    #: Browser origins allowed to call the API (`scheme://host[:port]`, or `*`); empty: CORS off.
    cors_allow_origins: tuple[str, ...] = ()
    cors_allow_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
    cors_allow_headers: tuple[str, ...] = (
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "X-Request-ID",
    )
    #: Send `Access-Control-Allow-Credentials` (cookies); not allowed with origin `*`.
    cors_allow_credentials: bool = False
    cors_max_age_s: int = 600
    # Rate limits (token buckets: `*_burst` at once, refilled at `*_rate_per_s`).
    submit_rate_per_s: float = 10.0  # command submissions per user
    submit_burst: int = 50
    login_rate_per_s: float = 1.0  # login attempts per client address
    login_burst: int = 30
    # Failed-login lockout, within `login_failure_window_s` of the first failure: this many
    # failures of one username from one address lock that pair; of one username from any
    # address lock the username; failures for this many different usernames (not since logged
    # in) from one address lock the address. Until the window ends, or an admin unlocks.
    login_max_failures_per_user_address: int = 5
    login_max_failures_per_user: int = 50
    login_max_usernames_per_address: int = 20
    login_failure_window_s: float = 900.0

    def __post_init__(self) -> None:
        check_port("http_port", self.http_port)
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes of random data "
                f"(set SOVD_HUB_JWT_SECRET, e.g. to the output of "
                f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                f"got {len(self.jwt_secret.encode())} bytes"
            )
        for name in (
            "access_token_ttl_s",
            "session_recheck_s",
            "ws_auth_timeout_s",
            "ws_buffer_messages",
            "ws_token_check_s",
            "ws_max_subscriptions",
            "ws_messages_per_s",
            "ws_message_burst",
            "ws_max_concurrent_reads",
            "max_concurrent_requests",
            "max_body_bytes",
            "max_drain_bytes",
            "drain_timeout_s",
            "cors_max_age_s",
        ):
            check_positive(name, getattr(self, name))
        check_cors(self)
        check_sessions(self)
        check_body_limits(self)
        for name in (
            "submit_rate_per_s",
            "submit_burst",
            "login_rate_per_s",
            "login_burst",
            "login_max_failures_per_user_address",
            "login_max_failures_per_user",
            "login_max_usernames_per_address",
            "login_failure_window_s",
        ):
            check_positive(name, getattr(self, name))
        if self.login_max_failures_per_user < self.login_max_failures_per_user_address:
            raise ConfigError(
                f"login_max_failures_per_user ({self.login_max_failures_per_user}) must be at "
                f"least login_max_failures_per_user_address "
                f"({self.login_max_failures_per_user_address}): a username is locked from every "
                "address only well after one address is (set SOVD_HUB_LOGIN_MAX_FAILURES_PER_USER,"
                " e.g. to 50)"
            )


def check_sessions(config: ApiConfig) -> None:
    """Raise ConfigError naming the session setting that does not fit the others."""
    if config.refresh_token_ttl_s <= config.access_token_ttl_s:
        raise ConfigError(
            f"refresh_token_ttl_s ({config.refresh_token_ttl_s}) must be longer than "
            f"access_token_ttl_s ({config.access_token_ttl_s}): a session outlives its access "
            "tokens (set SOVD_HUB_REFRESH_TOKEN_TTL_S, e.g. to 1209600 for 14 days)"
        )
    for key in ("jwt_issuer", "jwt_audience"):
        value = getattr(config, key)
        if not 1 <= len(value) <= 200 or not value.isprintable() or value.strip() != value:
            raise ConfigError(
                f"{key} (SOVD_HUB_{key.upper()}) must be 1-200 printable characters without "
                f"leading or trailing spaces, such as 'sovd-hub', got {value!r}"
            )
    if not 0 <= config.forwarded_for_hops <= 10:
        raise ConfigError(
            "forwarded_for_hops must be 0 (ignore X-Forwarded-For) to 10 (the number of reverse "
            f"proxies in front of the node), got {config.forwarded_for_hops}"
        )


#: Deeper JSON than this could exhaust the parser's (and validation's) recursion.
MAX_JSON_DEPTH_LIMIT = 256


def check_body_limits(config: ApiConfig) -> None:
    """Raise ConfigError naming the request-body setting out of its range."""
    if not 1 <= config.max_json_depth <= MAX_JSON_DEPTH_LIMIT:
        raise ConfigError(
            f"max_json_depth (SOVD_HUB_MAX_JSON_DEPTH) must be 1 to {MAX_JSON_DEPTH_LIMIT} levels "
            f"of JSON nesting (32 fits every body the hub takes), got {config.max_json_depth}"
        )


#: An origin as browsers send it: scheme, host, optional port; no path, no trailing slash.
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_cors(config: ApiConfig) -> None:
    """Raise ConfigError naming the `cors_*` key whose value browsers could not use."""
    for origin in config.cors_allow_origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ConfigError(
                f"cors_allow_origins: {origin!r} is not an origin; write it as a browser sends it, "
                "e.g. https://console.example.com or http://localhost:3000 (no path, no "
                "trailing slash), or * for any origin"
            )
    if "*" in config.cors_allow_origins and config.cors_allow_credentials:
        raise ConfigError(
            "cors_allow_credentials cannot be used with cors_allow_origins '*' (browsers refuse "
            "it): list the exact origins instead"
        )
    for key in ("cors_allow_methods", "cors_allow_headers"):
        for value in getattr(config, key):
            if not _TOKEN.match(value):
                raise ConfigError(f"{key}: {value!r} is not an HTTP method or header name")
