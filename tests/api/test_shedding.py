"""Load shedding: past max_concurrent_requests in flight a request is 503 overloaded with
Retry-After before any route runs; probes and metrics still answer; the bound frees again."""

from __future__ import annotations

import pytest
import trio

from tests.support.node import VINS, Node, NodeSettings

COMMAND = b'{"vin": "%s", "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}'


@pytest.fixture
def node_settings() -> NodeSettings:
    return NodeSettings(api={"max_concurrent_requests": 1, "drain_timeout_s": 0.3})


async def _held_request(node: Node, token: str) -> tuple[trio.SocketStream, bytes]:
    """A POST whose body has not arrived: it is in flight until the body is sent."""
    url = node.http.base_url
    stream = await trio.open_tcp_stream(url.host, url.port or 80)
    body = COMMAND % VINS[0].encode()
    head = (
        f"POST /api/v1/commands HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    await stream.send_all(head.encode())
    return stream, body


async def _response(stream: trio.SocketStream) -> bytes:
    """One whole HTTP/1.1 response (headers and its Content-Length of body) from `stream`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


async def _stored(node: Node) -> int:
    listing = await node.http.get("/api/v1/commands", headers=await node.headers("admin"))
    assert listing.status_code == 200, listing.text
    total: int = listing.json()["total"]
    return total


async def test_a_request_beyond_the_bound_is_refused_before_any_route_runs(node: Node) -> None:
    headers = await node.headers()
    await node.headers("admin")  # logged in before the bound is taken
    await node.connect_vehicle(VINS[0])
    held, body = await _held_request(node, await node.token("engineer"))
    await trio.sleep(0.2)  # the held request has reached the application

    refused = await node.http.post(
        "/api/v1/commands",
        content=COMMAND % VINS[0].encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Content-Type"] == "application/json"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    error = refused.json()["error"]
    assert error["code"] == "overloaded"
    assert error["message"] == (
        "the node is answering 1 requests (max_concurrent_requests): "
        "nothing was done; try again in 1 s"
    )
    assert error["correlation_id"] == refused.headers["X-Request-ID"]
    assert (await node.http.get("/health/live")).status_code == 200  # probes are not bounded
    metrics = (await node.http.get("/metrics")).text
    assert "sovd_hub_http_requests_in_flight 1.0" in metrics
    assert "sovd_hub_http_requests_shed_total 1.0" in metrics

    await held.send_all(body)  # the held request ends: the bound is free again
    answer = await _response(held)
    assert answer.startswith(b"HTTP/1.1 202"), answer
    await held.aclose()
    await trio.sleep(0.05)
    assert await _stored(node) == 1  # the held command, not the refused one
    again = await node.http.post(
        "/api/v1/commands", content=COMMAND % VINS[0].encode(),
        headers={**headers, "Content-Type": "application/json"},
    )  # fmt: skip
    assert again.status_code == 202, again.text


async def test_a_refused_request_leaves_its_connection_usable(node: Node) -> None:
    headers = await node.headers()
    held, body = await _held_request(node, await node.token("engineer"))
    await trio.sleep(0.2)
    url = node.http.base_url
    client = await trio.open_tcp_stream(url.host, url.port or 80)
    request = (
        f"GET /api/v1/vehicles HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: {headers['Authorization']}\r\n\r\n"
    ).encode()
    await client.send_all(request)
    first = await _response(client)
    assert first.startswith(b"HTTP/1.1 503"), first
    assert b"connection: close" not in first.lower()
    await held.send_all(body)
    await _response(held)
    await held.aclose()
    await trio.sleep(0.05)
    await client.send_all(request)  # the same connection serves the next request
    second = await _response(client)
    assert second.startswith(b"HTTP/1.1 200"), second
    await client.aclose()


async def test_a_refused_request_whose_body_does_not_come_is_closed_after_the_drain_timeout(
    node: Node,
) -> None:
    token = await node.token("engineer")
    held, body = await _held_request(node, token)
    await trio.sleep(0.2)
    stalled, _ = await _held_request(node, token)  # refused, and its body never comes
    with trio.fail_after(3):
        answer = await _response(stalled)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"connection: close" in answer.lower()
        assert await stalled.receive_some(65536) == b""  # the node closed it
    await stalled.aclose()
    await held.send_all(body)
    assert (await _response(held)).startswith(b"HTTP/1.1 409")  # the vehicle is not connected
    await held.aclose()
