"""Generic HTTP failures, each in the one envelope with a stable code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.support.node import VINS, Node

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
GOOD = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["correlation_id"] == response.headers["X-Request-ID"]
    message: str = error["message"]
    return message


@SQLITE
async def test_an_unknown_route_is_404(node: Node) -> None:
    _error(await node.http.get("/api/v1/nothing-here"), 404, "not_found")


@SQLITE
async def test_a_wrong_method_is_405_with_allow(node: Node) -> None:
    response = await node.http.delete("/api/v1/commands")
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@SQLITE
async def test_a_path_whose_parameter_is_out_of_range_is_404_not_405(node: Node) -> None:
    response = await node.http.patch(
        "/api/v1/users/99999999999999999999", json={}, headers=await node.headers("admin")
    )
    _error(response, 404, "not_found")


@SQLITE
async def test_a_body_over_max_body_bytes_is_413_even_where_no_body_is_read(node: Node) -> None:
    big = b"x" * (64 * 1024 + 1)
    message = _error(
        await node.http.post(f"/api/v1/vehicles/{VINS[0]}/token", content=big),
        413,
        "payload_too_large",
    )
    assert "65536 bytes (max_body_bytes)" in message


@SQLITE
async def test_a_chunked_body_over_max_body_bytes_is_413_in_the_envelope(node: Node) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"vin": "' + VINS[0].encode() + b'", "params": {"pad": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}}'

    response = await node.http.post(
        "/api/v1/commands",
        content=chunks(),
        headers={**await node.headers(), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _error(response, 413, "payload_too_large")


@SQLITE
async def test_a_json_route_refuses_other_media_types_with_415(node: Node) -> None:
    response = await node.http.post(
        "/api/v1/commands",
        content=b"vin=WVWZZZ1JZXW000001",
        headers={**await node.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    message = _error(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in message
    assert "application/x-www-form-urlencoded" in message


@SQLITE
async def test_malformed_json_is_400(node: Node) -> None:
    response = await node.http.post(
        "/api/v1/commands",
        content=b'{"vin": ',
        headers={**await node.headers(), "Content-Type": "application/json"},
    )
    _error(response, 400, "malformed_request")


async def _read_status(stream: trio.SocketStream) -> bytes:
    """The status line of one response, its body read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += await stream.receive_some()
    return head.split(b"\r\n")[0]


@pytest.mark.slow
@SQLITE
async def test_an_answer_sent_before_the_body_arrived_leaves_the_connection_usable(
    node: Node,
) -> None:
    """A client that sends headers and body apart (as most do) and is answered from the
    headers alone (here: an empty Idempotency-Key) can send its next request on the same
    keep-alive connection; hypercorn used to leave that request unanswered."""
    url = httpx.URL(str(node.http.base_url))
    token = (await node.headers())["Authorization"].encode()
    body = b'{"vin": "WVWZZZ1JZXW000001", "command": "ReadDTC"}'
    head = (
        b"POST /api/v1/commands HTTP/1.1\r\nHost: hub\r\nAuthorization: " + token + b"\r\n"
        b"Idempotency-Key: \r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    stream = await trio.open_tcp_stream(url.host, url.port or 80)
    async with stream:
        for _ in range(2):
            await stream.send_all(head)
            await trio.sleep(0.05)  # the answer is on its way before the body leaves
            await stream.send_all(body)
            with trio.fail_after(5):
                assert await _read_status(stream) == b"HTTP/1.1 422 "
