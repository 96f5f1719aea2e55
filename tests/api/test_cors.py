"""CORS: a browser console on an allowed origin may call the API; others may not."""

from __future__ import annotations

import pytest

from api.config import ApiConfig
from hub import ConfigError, load_config
from tests.support.node import JWT_SECRET, Node, NodeSettings

CONSOLE = "https://console.example.com"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def node_settings() -> NodeSettings:
    """Nodes of this module allow the console's origin (and a local dev server)."""
    return NodeSettings(
        api={"cors_allow_origins": (CONSOLE, "http://localhost:3000"), "cors_max_age_s": 120}
    )


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@SQLITE
async def test_a_preflight_from_an_allowed_origin_is_answered(node: Node) -> None:
    response = await node.http.options("/api/v1/commands", headers=_preflight(CONSOLE))
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["Access-Control-Max-Age"] == "120"
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


@SQLITE
async def test_a_preflight_from_another_origin_is_refused_in_the_envelope(node: Node) -> None:
    response = await node.http.options(
        "/api/v1/commands", headers=_preflight("https://evil.example.net")
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "cors_origin_refused"
    assert "https://evil.example.net" in error["message"]
    assert "cors_allow_origins" in error["message"]
    assert "Access-Control-Allow-Origin" not in response.headers


@SQLITE
async def test_answers_to_an_allowed_origin_expose_the_headers_clients_need(node: Node) -> None:
    # An error too: the console must be able to read the envelope and the request id.
    response = await node.http.get("/api/v1/vehicles", headers={"Origin": CONSOLE})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "Retry-After", "Location", "RateLimit-Remaining"} <= exposed
    ok = await node.http.get(
        "/api/v1/vehicles", headers={"Origin": CONSOLE, **await node.headers("viewer")}
    )
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == CONSOLE


@SQLITE
async def test_answers_to_other_origins_carry_no_cors_headers(node: Node) -> None:
    response = await node.http.get("/health/live", headers={"Origin": "https://evil.example.net"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_origins_come_from_the_environment_as_a_comma_separated_list() -> None:
    config = load_config(
        ApiConfig,
        environ={
            "SOVD_HUB_JWT_SECRET": JWT_SECRET,
            "SOVD_HUB_CORS_ALLOW_ORIGINS": f" {CONSOLE}, http://localhost:3000 ,",
            "SOVD_HUB_CORS_ALLOW_METHODS": "GET,POST",
        },
    )
    assert config.cors_allow_origins == (CONSOLE, "http://localhost:3000")
    assert config.cors_allow_methods == ("GET", "POST")


def test_origins_come_from_a_toml_list() -> None:
    config = load_config(
        ApiConfig,
        file_values={"jwt_secret": JWT_SECRET, "cors_allow_origins": ["*"]},
        environ={},
    )
    assert config.cors_allow_origins == ("*",)
    with pytest.raises(
        ConfigError, match=r"cors_allow_origins \(from config file\) must be a list"
    ):
        load_config(
            ApiConfig,
            file_values={"jwt_secret": JWT_SECRET, "cors_allow_origins": [1]},
            environ={},
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cors_allow_origins": ("https://console.example.com/",)}, "no path, no trailing slash"),
        ({"cors_allow_origins": ("console.example.com",)}, "is not an origin"),
        (
            {"cors_allow_origins": ("*",), "cors_allow_credentials": True},
            "cors_allow_credentials cannot be used with cors_allow_origins '\\*'",
        ),
        ({"cors_allow_headers": ("X Bad",)}, "cors_allow_headers: 'X Bad'"),
        ({"cors_max_age_s": 0}, "cors_max_age_s must be"),
    ],
)
def test_unusable_cors_settings_are_refused_naming_the_key(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ApiConfig(jwt_secret=JWT_SECRET, **settings)  # type: ignore[arg-type]
