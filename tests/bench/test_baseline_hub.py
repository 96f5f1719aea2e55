"""The baseline hub (`bench.baseline_hub`), the floor of `hold` and `reconnect`: its count of
connected vehicles, as `bench.stack.connected_vehicles` reads it, and its Welcome."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import trio
from grpclib.client import Channel, Stream

from bench.baseline_hub import Registry, health_response
from bench.stack import connected_vehicles, open_baseline_hub_process
from hub import run_asyncio
from proto import Heartbeat, Hello, HubMessage, VehicleLinkStub, VehicleMessage

VIN = "9BENCH00000000001"
GET_LIVE = b"GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: */*\r\n\r\n"


def _body(response: bytes) -> dict[str, object]:
    """The JSON body of `response`, checked against its content-length."""
    head, _, body = response.partition(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert int(headers[b"content-length"]) == len(body)
    parsed: dict[str, object] = json.loads(body)
    return parsed


def test_a_vin_counts_once_and_a_replaced_link_leaves_the_newer_one_counted() -> None:
    registry = Registry()
    registry.register(VIN, "first")
    registry.register("9BENCH00000000002", "other")
    registry.register(VIN, "second")  # the vehicle reconnected before its old link ended
    assert registry.connected == 2

    registry.unregister(VIN, "first")
    assert registry.connected == 2

    registry.unregister(VIN, "second")
    registry.unregister("9BENCH00000000002", "other")
    assert registry.connected == 0


def test_health_live_answers_the_count_and_keeps_the_connection_open() -> None:
    response, keep_open = health_response(GET_LIVE, 42)

    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _body(response) == {"status": "ok", "connected_vehicles": 42}
    assert keep_open
    assert b"connection: close" not in response


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /health/ready HTTP/1.1\r\n\r\n", b"404"),
        (b"POST /health/live HTTP/1.1\r\ncontent-length: 2\r\n\r\n", b"405"),
        (b"\x16\x03\x01 not http\r\n\r\n", b"400"),
    ],
)
def test_anything_else_is_refused(head: bytes, status: bytes) -> None:
    response, _ = health_response(head, 1)

    assert response.split(b" ")[1] == status
    assert "connected_vehicles" not in _body(response)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /health/live HTTP/1.0\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nContent-Length: 3\r\n\r\n",  # a body it would not read
        b"nonsense\r\n\r\n",
    ],
)
def test_the_connection_is_closed_when_the_client_asks_or_framing_is_unsure(head: bytes) -> None:
    response, keep_open = health_response(head, 1)

    assert not keep_open
    assert b"\r\nconnection: close\r\n" in response


async def _open_link(port: int) -> tuple[Channel, Stream[VehicleMessage, HubMessage], HubMessage]:
    """A vehicle's link as the simulator opens it: a token, Hello, and the hub's Welcome."""
    channel = Channel("127.0.0.1", port)
    stream = VehicleLinkStub(channel).Connect.open(metadata={"authorization": "Bearer t"})
    await stream.__aenter__()
    await stream.send_request()
    await stream.send_message(VehicleMessage(hello=Hello(vin=VIN)))
    welcome = await stream.recv_message()
    assert welcome is not None
    return channel, stream, welcome


async def _echo(stream: Stream[VehicleMessage, HubMessage]) -> HubMessage | None:
    await stream.send_message(VehicleMessage(heartbeat=Heartbeat(sent_at_ms=7)))
    return await stream.recv_message()


async def _wait_count(http: httpx.AsyncClient, count: int) -> None:
    with trio.fail_after(10):
        while True:  # polling: another process's count
            if await connected_vehicles(http) == count:
                return
            await trio.sleep(0.02)


@pytest.mark.slow
async def test_the_floor_counts_links_as_the_bench_reads_the_hub(
    aio_loop: asyncio.AbstractEventLoop,
) -> None:
    async with (
        open_baseline_hub_process(heartbeat_interval_s=2.5) as floor,
        httpx.AsyncClient(base_url=floor.http_url, timeout=10) as http,
    ):
        assert await connected_vehicles(http) == 0
        first, stream, welcome = await run_asyncio(_open_link, floor.grpc_port)
        assert welcome.WhichOneof("kind") == "welcome"
        assert welcome.welcome.heartbeat_interval_ms == 2500  # the vehicle's heartbeat period
        echoed = await run_asyncio(_echo, stream)
        assert echoed is not None and echoed.heartbeat.sent_at_ms == 7
        assert await connected_vehicles(http) == 1

        second, _, _ = await run_asyncio(_open_link, floor.grpc_port)  # the same VIN again
        assert await connected_vehicles(http) == 1
        first.close()  # the old link's connection drops
        await trio.sleep(0.2)
        assert await connected_vehicles(http) == 1
        second.close()
        await _wait_count(http, 0)
