"""The operator WebSocket's limits: a slow reader is told `lagged` and closed; tokens re-checked.

These nodes queue at most 8 frames per WebSocket and re-check tokens every 0.1 s.
"""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from bench.vehicle_model import Fault
from tests.support.node import VINS, Node, NodeSettings
from tests.support.websocket import (
    collect_until_status,
    frames_until,
    receive_json,
    send_json,
    subscribe,
    subscribe_vehicle,
    unread_socket,
)

BUFFER = 8
#: Events of ~60 kB: enough to fill the TCP buffers (Linux grows a socket's send buffer to
#: tcp_wmem's 4 MiB at most; here about 0.6 MB fill) and then the connection's queue.
#: Within max_vehicle_messages_per_s and max_event_bytes.
FAULTS = 80


@pytest.fixture
def node_settings() -> NodeSettings:
    return NodeSettings(api={"ws_buffer_messages": BUFFER, "ws_token_check_s": 0.1})


async def test_a_slow_reader_is_told_lagged_and_closed_while_others_get_everything(
    node: Node,
) -> None:
    vin = VINS[0]
    vehicle = await node.connect_vehicle(vin)
    pad = "x" * 60_000
    vehicle.model.faults["engine"] = [Fault(f"P{i:04d}", pad, "confirmed") for i in range(FAULTS)]
    async with unread_socket(node, "engineer") as slow, node.websocket("admin") as fast:
        await subscribe_vehicle(slow, vin)
        await subscribe_vehicle(fast, vin)
        command_id = (await node.submit(vin, "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
        # `slow` reads nothing meanwhile: its queue fills while `fast` gets every frame.
        frames = await frames_until(fast, lambda f: f["type"] == "status")
        assert [f["seq"] for f in frames if f["type"] == "event"] == list(range(FAULTS + 1))
        assert frames[-1]["status"] == "succeeded"

        received = []
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                received.append(await receive_json(slow))
        assert closed.value.reason is not None and closed.value.reason.code == 1013
        *events, lagged = received
        assert lagged["type"] == "lagged" and lagged["resume"] == {f"vehicle:{vin}": None}
        assert lagged["queued"] == BUFFER and "ws_buffer_messages" in str(lagged["message"])
        # What came before `lagged` is a gap-free start of the command's events.
        assert [f["seq"] for f in events] == list(range(len(events)))
        assert len(events) < FAULTS + 1

        # The node is well: the fast socket still follows the vehicle, new sockets work.
        command_id = (await node.submit(vin, "ReadDTC", {"ecuAddress": "0x18"})).json()["id"]
        frames = await frames_until(fast, lambda f: f["type"] == "status")
        assert (frames[-1]["command_id"], frames[-1]["status"]) == (command_id, "succeeded")
    assert (await node.wait_final(command_id))["status"] == "succeeded"
    assert (await node.http.get("/health/ready")).status_code == 200


async def test_a_revoked_session_closes_its_websocket_with_4401(node: Node) -> None:
    async with node.websocket("engineer") as ws:
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}
        response = await node.http.post("/api/v1/auth/logout", headers=await node.headers())
        assert response.status_code == 204, response.text
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    reason = closed.value.reason
    assert reason is not None and reason.code == 4401
    assert "revoked" in (reason.reason or "")


async def test_a_replay_longer_than_the_queue_is_paced_not_lagged(node: Node) -> None:
    vin = VINS[1]
    vehicle = await node.connect_vehicle(vin)
    faults = [Fault(f"P{i:04d}", "stored", "confirmed") for i in range(5 * BUFFER)]
    vehicle.model.faults["engine"] = faults
    command_id = (await node.submit(vin, "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    assert (await node.wait_final(command_id))["status"] == "succeeded"
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        await send_json(ws, {"type": "ping"})  # answered in the middle of the replay
        frames = await collect_until_status(ws)
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}
    assert [f["type"] for f in frames].count("pong") == 1
    events = [f for f in frames if f["type"] == "event"]
    assert [f["seq"] for f in events] == list(range(len(faults) + 1))
    assert (frames[-1]["type"], frames[-1]["status"]) == ("status", "succeeded")
