"""Hostile TCP connections to the vehicle gateway: closed by a deadline, refused past a cap.

Each test opens raw TCP connections to the gRPC port (nothing, or a dribbled
HTTP/2 preface) while a legitimate vehicle runs a command end to end through
REST. Hostile connections come from 127.0.0.2 (Linux routes all of 127/8 to
the loopback) so the per-address cap does not count the legitimate vehicle.
"""

from __future__ import annotations

import pytest
import trio

from tests.support.node import VINS, Node, NodeSettings

HOSTILE = "127.0.0.2"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


async def _open(node: Node, local: str = HOSTILE) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", node.grpc_port, local_address=local)


async def _until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the hub sent before it closed `stream` (its HTTP/2 SETTINGS, or nothing)."""
    received = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset
            return received
        if not chunk:
            return received
        received += chunk


async def _command_succeeds(node: Node, vin: str) -> None:
    response = await node.submit(vin, "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 202, response.text
    assert (await node.wait_final(response.json()["id"]))["status"] == "succeeded"


async def _statistics(node: Node) -> dict[str, int]:
    body: dict[str, int] = (await node.http.get("/health/live")).json()
    return body


class TestHandshakeDeadline:
    @pytest.fixture
    def node_settings(self) -> NodeSettings:
        return NodeSettings(hub={"handshake_timeout_s": 1.0, "hello_timeout_s": 0.5})

    @pytest.mark.slow
    async def test_idle_and_dribbling_connections_are_closed_after_the_deadline(
        self, node: Node
    ) -> None:
        await node.connect_vehicle(VINS[0])
        start = trio.current_time()  # before the first accept: the deadline runs from there
        idle = [await _open(node) for _ in range(50)]
        dribbler = await _open(node)
        closed_at: list[float] = []

        async def wait_closed(stream: trio.SocketStream) -> None:
            await _until_closed(stream)
            closed_at.append(trio.current_time() - start)

        async def dribble() -> None:
            # 24 bytes over 2.4 s: each byte is progress, none completes the preface in time.
            for byte in PREFACE:
                try:
                    await dribbler.send_all(bytes([byte]))
                except trio.BrokenResourceError:
                    return
                await trio.sleep(0.1)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for stream in [*idle, dribbler]:
                    nursery.start_soon(wait_closed, stream)
                nursery.start_soon(dribble)
                await _command_succeeds(node, VINS[0])  # meanwhile
        assert len(closed_at) == 51
        assert min(closed_at) >= 0.9, closed_at  # by the deadline, not before it
        await _command_succeeds(node, VINS[0])  # the admitted vehicle was left alone
        assert (await _statistics(node))["gateway_handshake_timeouts"] == 51
        for stream in [*idle, dribbler]:
            await stream.aclose()


class TestAddressCap:
    @pytest.fixture
    def node_settings(self) -> NodeSettings:
        return NodeSettings(hub={"grpc_max_connections_per_address": 5})

    async def test_the_connection_past_the_address_cap_is_closed_at_once(self, node: Node) -> None:
        held = [await _open(node) for _ in range(5)]
        for stream in held:  # each was handed to HTTP/2: the hub's SETTINGS arrive
            with trio.fail_after(5):
                assert await stream.receive_some(65536)
        refused = await _open(node)
        with trio.fail_after(5):
            assert await _until_closed(refused) == b""  # closed before any HTTP/2 work
        # Another address is not affected: a vehicle connects and runs a command.
        await node.connect_vehicle(VINS[0])
        await _command_succeeds(node, VINS[0])
        stats = await _statistics(node)
        assert stats["gateway_refused_address_cap"] == 1
        assert stats["gateway_connections"] == 6  # five held + the vehicle
        for stream in [*held, refused]:
            await stream.aclose()


class TestTotalCap:
    @pytest.fixture
    def node_settings(self) -> NodeSettings:
        return NodeSettings(hub={"grpc_max_connections": 4})

    async def test_the_connection_past_the_total_cap_is_closed_until_one_closes(
        self, node: Node
    ) -> None:
        await node.connect_vehicle(VINS[0])
        held = [await _open(node) for _ in range(3)]
        for stream in held:
            with trio.fail_after(5):
                assert await stream.receive_some(65536)
        refused = await _open(node)
        with trio.fail_after(5):
            assert await _until_closed(refused) == b""
        await _command_succeeds(node, VINS[0])  # the vehicle connected before keeps working
        assert (await _statistics(node))["gateway_refused_total_cap"] == 1
        await held.pop().aclose()
        with trio.fail_after(5):
            while (await _statistics(node))["gateway_connections"] > 3:  # noqa: ASYNC110 (over HTTP)
                await trio.sleep(0.01)
        await node.connect_vehicle(VINS[1])  # room again
        await _command_succeeds(node, VINS[1])
        for stream in [*held, refused]:
            await stream.aclose()
