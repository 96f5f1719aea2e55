"""Hostile HTTP input (issue 11): deep JSON, missing security headers, oversized bodies.

Everything goes through real sockets (httpx, or a raw TCP stream where the
framing itself is the point), and each test checks that an unrelated
vehicle's command still succeeds meanwhile.
"""

from __future__ import annotations

import httpx
import pytest

from api.config import ApiConfig
from hub import ConfigError, load_config
from tests.api.conftest import JWT_SECRET, VINS, Node

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
GOOD = {"ecuAddress": "0x10"}
DEEP = 10_000


async def _unrelated_command_succeeds(node: Node) -> None:
    """A command to a vehicle nobody attacked runs to `succeeded`."""
    if VINS[2] not in node.vehicles:
        await node.connect_vehicle(VINS[2])
    response = await node.submit(VINS[2], "ReadDTC", GOOD)
    assert response.status_code == 202, response.text
    final = await node.wait_final(response.json()["id"])
    assert final["status"] == "succeeded", final


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["correlation_id"] == response.headers["X-Request-ID"]
    message: str = error["message"]
    return message


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    """A JSON array nested `depth` levels deep."""
    return b"[" * depth + inner + b"]" * depth


JSON_HEADERS = {"Content-Type": "application/json"}


# Point 7: deep JSON is a 400 before the parser recurses.


@SQLITE
async def test_json_nested_10000_deep_is_400_on_login_without_credentials(node: Node) -> None:
    for body in (_nested(DEEP), b'{"a":' * DEEP + b"1" + b"}" * DEEP):
        response = await node.http.post("/api/v1/auth/login", content=body, headers=JSON_HEADERS)
        message = _error(response, 400, "json_too_deep")
        assert message == (
            "the request body nests JSON deeper than 32 levels (max_json_depth); "
            "send a flatter body"
        )
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_json_nested_10000_deep_is_400_on_a_command_submission(node: Node) -> None:
    body = b'{"vin": "' + VINS[0].encode() + b'", "command": "ReadDTC", "params": '
    body += b'{"x":' * DEEP + b"1" + b"}" * DEEP + b"}"
    response = await node.http.post(
        "/api/v1/commands", content=body, headers={**await node.headers(), **JSON_HEADERS}
    )
    assert "max_json_depth" in _error(response, 400, "json_too_deep")
    listed = await node.http.get("/api/v1/commands", headers=await node.headers())
    assert listed.json()["items"] == []  # nothing was accepted
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_json_at_the_depth_limit_is_parsed_and_brackets_in_strings_do_not_count(
    node: Node,
) -> None:
    # 32 levels (the object itself is one): parsed, then refused by validation, not by depth.
    password = _nested(31, b'"x"')
    body = b'{"username": "engineer", "password": ' + password + b"}"
    response = await node.http.post("/api/v1/auth/login", content=body, headers=JSON_HEADERS)
    assert response.status_code == 422, response.text
    # One more level is refused.
    body = b'{"username": "engineer", "password": ' + _nested(32, b'"x"') + b"}"
    response = await node.http.post("/api/v1/auth/login", content=body, headers=JSON_HEADERS)
    _error(response, 400, "json_too_deep")
    # Brackets inside strings (escaped quotes too) are text, not nesting.
    body = b'{"username": "engineer", "password": "\\"' + b"[{" * 100 + b'"}'
    response = await node.http.post("/api/v1/auth/login", content=body, headers=JSON_HEADERS)
    _error(response, 401, "invalid_credentials")


def test_a_max_json_depth_out_of_range_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(ApiConfig, environ={"SOVD_HUB_MAX_JSON_DEPTH": "0"}, jwt_secret=JWT_SECRET)
    assert str(caught.value) == (
        "max_json_depth (SOVD_HUB_MAX_JSON_DEPTH) must be 1 to 256 levels of JSON nesting "
        "(32 fits every body the hub takes), got 0"
    )
