"""Hostile HTTP input (issue 11): deep JSON, missing security headers, oversized bodies.

Everything goes through real sockets (httpx, or a raw TCP stream where the
framing itself is the point), and each test checks that an unrelated
vehicle's command still succeeds meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from api.config import ApiConfig
from hub import JSON, ConfigError, load_config
from tests.support.node import JWT_SECRET, PASSWORD, VINS, Node, NodeSettings

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
GOOD: dict[str, JSON] = {"ecuAddress": "0x10"}
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


# Point 13: a 413 leaves the connection usable, or says `Connection: close`.


class RawHttp:
    """HTTP/1.1 over a raw TCP stream: what we send is exactly what the hub gets."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def receive(self) -> bytes:
        """More bytes (b"" at the end of the stream)."""
        chunk = await self.stream.receive_some()
        self.buffer += chunk
        return chunk

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body (by Content-Length)."""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in self.buffer:
                assert await self.receive(), f"connection closed after {self.buffer!r}"
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                assert await self.receive(), f"connection closed in a body: {self.buffer!r}"
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split(" ")[1]), headers, body

    async def wait_closed(self) -> None:
        """Until the hub closes the connection (fails the test after 10 s)."""
        with trio.fail_after(10):
            while await self.receive():
                pass


async def _raw(node: Node) -> RawHttp:
    url = httpx.URL(str(node.http.base_url))
    return RawHttp(await trio.open_tcp_stream(url.host, url.port or 80))


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LIVE = b"GET /health/live HTTP/1.1\r\nHost: hub\r\n\r\n"


@pytest.fixture
def node_settings() -> NodeSettings:
    """A short drain deadline, so the test of a stalled body is quick."""
    return NodeSettings(api={"drain_timeout_s": 0.5})


def _chunked_post(path: str, authorization: str | None = None) -> bytes:
    """The head of a chunked JSON POST to `path`."""
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n{auth}"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


@pytest.mark.slow
@SQLITE
async def test_a_413_on_a_chunked_body_still_sent_leaves_the_connection_usable(
    node: Node,
) -> None:
    """The hub answers once the client has sent the whole body (dropping what is over the
    limit), so the connection is in a known state and carries the next request. It used to
    answer mid-body, without `Connection: close`, after which hypercorn might close it."""
    head = _chunked_post("/api/v1/commands", (await node.headers())["Authorization"])
    raw = await _raw(node)
    async with raw.stream:
        for _ in range(3):
            await raw.stream.send_all(head + _chunk(b"[" + b" " * 70_000))
            with trio.move_on_after(0.2):
                await raw.receive()
            assert raw.buffer == b"", "answered before the body was complete"
            await raw.stream.send_all(_chunk(b"1]" * 5000) + b"0\r\n\r\n" + LIVE)
            status, headers, body = await raw.response()
            assert status == 413, body
            assert b"max_body_bytes" in body
            assert headers.get("connection") != "close"
            status, _, body = await raw.response()  # the next request, same connection
            assert (status, json.loads(body)["status"]) == (200, "ok")
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_httpx_reusing_its_connection_after_chunked_413s_never_fails(node: Node) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"vin": "' + VINS[0].encode() + b'", "params": {"pad": "'
        yield b"y" * 70_000
        await trio.lowlevel.checkpoint()  # the rest leaves after the hub saw it is too large
        yield b"z" * 10_000 + b'"}}'

    headers = {**await node.headers(), **JSON_HEADERS}
    for _ in range(10):
        response = await node.http.post("/api/v1/commands", content=chunks(), headers=headers)
        _error(response, 413, "payload_too_large")
        assert (await node.http.get("/health/live")).status_code == 200
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_a_chunked_413_whose_body_goes_on_past_max_drain_bytes_says_connection_close(
    node: Node,
) -> None:
    raw = await _raw(node)
    async with raw.stream:
        await raw.stream.send_all(_chunked_post("/api/v1/auth/login"))
        await raw.stream.send_all(_chunk(b"x" * 65_000))
        # Past max_body_bytes (65536), then one byte past max_drain_bytes (1 MiB) more, in a
        # chunk that ends there (its closing CRLF not sent): the hub has read all we sent.
        rest = 1024 * 1024 + 65_536 - 65_000 + 1
        await raw.stream.send_all(f"{rest:x}\r\n".encode() + b"x" * rest)
        status, headers, body = await raw.response()
        assert (status, headers.get("connection")) == (413, "close"), body
        await raw.wait_closed()
    await _unrelated_command_succeeds(node)


@pytest.mark.slow
@SQLITE
async def test_a_chunked_413_whose_body_stalls_says_connection_close_after_drain_timeout_s(
    node: Node,
) -> None:
    raw = await _raw(node)
    async with raw.stream:
        await raw.stream.send_all(_chunked_post("/api/v1/auth/login") + _chunk(b"x" * 70_000))
        # ... and then nothing: after drain_timeout_s (0.5 s here) the hub answers and closes.
        status, headers, body = await raw.response()
        assert (status, headers.get("connection")) == (413, "close"), body
        assert json.loads(body)["error"]["code"] == "payload_too_large"
        await raw.wait_closed()
    await _unrelated_command_succeeds(node)


@pytest.mark.parametrize("name", ["max_drain_bytes", "drain_timeout_s"])
def test_a_drain_limit_that_is_not_positive_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(ApiConfig, environ={f"SOVD_HUB_{name.upper()}": "0"}, jwt_secret=JWT_SECRET)
    got = "0.0" if name.endswith("_s") else "0"
    assert str(caught.value) == f"{name} must be a finite number greater than 0, got {got}"


# Point 10: security headers, no `Server`.


def _assert_secure(response: httpx.Response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "server" not in response.headers, response.headers["server"]


def _assert_no_store(response: httpx.Response) -> None:
    _assert_secure(response)
    assert response.headers["Cache-Control"] == "no-store", response.url
    assert response.headers["Pragma"] == "no-cache"


@SQLITE
async def test_answers_holding_tokens_are_no_store_nosniff_unframeable_and_nameless(
    node: Node,
) -> None:
    login = await node.http.post(
        "/api/v1/auth/login", json={"username": "engineer", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    _assert_no_store(login)
    refresh = await node.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refresh.status_code == 200, refresh.text
    _assert_no_store(refresh)
    admin = await node.headers("admin")
    new = {"vin": "1HGCM82633A004352", "make": "Honda", "model": "Accord", "year": 2003}
    registered = await node.http.post("/api/v1/vehicles", json=new, headers=admin)
    assert registered.status_code == 201, registered.text
    _assert_no_store(registered)
    rotated = await node.http.post(f"/api/v1/vehicles/{VINS[1]}/token", headers=admin)
    assert rotated.status_code == 200, rotated.text
    _assert_no_store(rotated)
    error = await node.http.get("/api/v1/nothing-here")
    assert error.status_code == 404
    _assert_no_store(error)
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_docs_cannot_be_framed_and_keep_a_policy_swagger_ui_works_with(node: Node) -> None:
    page = await node.http.get("/docs")
    assert page.status_code == 200
    _assert_secure(page)
    policy = page.headers["Content-Security-Policy"]
    for rule in ("script-src 'self'", "connect-src 'self'", "img-src 'self' data:"):
        assert rule in policy, policy
    asset = await node.http.get("/docs/swagger-ui-bundle.js")
    assert asset.status_code == 200
    _assert_secure(asset)
    assert "public" in asset.headers["Cache-Control"]  # a static file may be cached
    await _unrelated_command_succeeds(node)


@SQLITE
async def test_hypercorn_own_answers_and_the_websocket_handshake_carry_no_server_header(
    node: Node,
) -> None:
    raw = await _raw(node)
    async with raw.stream:
        await raw.stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")  # hypercorn answers 400 itself
        status, headers, _ = await raw.response()
        assert status == 400
        assert "server" not in headers, headers
    raw = await _raw(node)
    async with raw.stream:
        await raw.stream.send_all(
            b"GET /api/v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        with trio.fail_after(5):
            while b"\r\n\r\n" not in raw.buffer:
                assert await raw.receive()
        head = raw.buffer.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 101"), head
        assert b"\r\nserver:" not in head, head
    await _unrelated_command_succeeds(node)
