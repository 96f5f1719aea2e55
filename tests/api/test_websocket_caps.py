"""The operator WebSocket's caps: subscriptions per socket, and its message rate (close 4429).

These nodes allow 3 subscriptions per socket and 8 messages per socket at
once, refilled so slowly (one per 1,000 s) that a test never sees a refill.
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio_websocket

from api.ws_limits import CLOSE_FLOODING
from tests.support.node import VINS, Node, NodeSettings
from tests.support.websocket import (
    collect_until_status,
    frames_until,
    new_id,
    receive_json,
    send_json,
    subscribe,
    subscribe_vehicle,
)

MAX_SUBSCRIPTIONS = 3
BURST = 8


@pytest.fixture
def node_settings() -> NodeSettings:
    return NodeSettings(
        api={
            "ws_max_subscriptions": MAX_SUBSCRIPTIONS,
            "ws_message_burst": BURST,
            "ws_messages_per_s": 0.001,
        }
    )


async def test_a_subscription_beyond_the_cap_is_refused_and_the_socket_stays_open(
    node: Node,
) -> None:
    await node.connect_vehicle(VINS[0])
    async with node.websocket("engineer") as ws:
        await subscribe_vehicle(ws, VINS[0])
        await subscribe_vehicle(ws, VINS[1])
        await send_json(ws, {"type": "subscribe", "topic": "fleet"})
        assert await receive_json(ws) == {"type": "subscribed", "topic": "fleet"}

        topic = f"command:{new_id()}"
        await send_json(ws, {"type": "subscribe", "topic": topic})
        refused = await receive_json(ws)
        assert (refused["type"], refused["code"], refused["topic"]) == (
            "error",
            "too_many_subscriptions",
            topic,
        )
        assert "already follows 3 topics" in str(refused["message"])
        assert "ws_max_subscriptions" in str(refused["message"])

        # The socket still follows its topics: a command of the vehicle arrives on it.
        response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
        command_id = response.json()["id"]
        frames = await frames_until(ws, lambda f: f["type"] == "status")
        assert (frames[-1]["command_id"], frames[-1]["status"]) == (command_id, "succeeded")

        # Room again once one topic is left.
        await send_json(ws, {"type": "unsubscribe", "topic": "fleet"})
        assert await receive_json(ws) == {"type": "unsubscribed", "topic": "fleet"}
        await subscribe(ws, command_id)
        assert (await collect_until_status(ws))[-1]["status"] == "succeeded"


async def test_a_socket_over_its_rate_is_told_once_then_closed_with_4429(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    async with node.websocket("engineer") as ws:
        for _ in range(BURST):  # the burst: every message acted on
            await send_json(ws, {"type": "ping"})
            assert await receive_json(ws) == {"type": "pong"}

        await send_json(ws, {"type": "ping"})
        limited = await receive_json(ws)
        assert (limited["type"], limited["code"]) == ("error", "rate_limited")
        assert "more than 0.001 messages per second (ws_messages_per_s" in str(limited["message"])
        assert "closes with 4429" in str(limited["message"])

        # Meanwhile another engineer's command on the vehicle runs as usual.
        headers = await node.headers("other")
        body = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
        response = await node.http.post("/api/v1/commands", json=body, headers=headers)
        assert response.status_code == 202, response.text
        async with node.websocket("other") as other:
            await subscribe(other, response.json()["id"])
            assert (await collect_until_status(other))[-1]["status"] == "succeeded"

        # The limited socket keeps on: its messages are dropped unanswered, then it is closed.
        for _ in range(BURST):
            with contextlib.suppress(trio_websocket.ConnectionClosed):
                await send_json(ws, {"type": "ping"})
        frames = []
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                frames.append(await receive_json(ws))
    # No pong: nothing past the burst was acted on (a second `rate_limited` only if this
    # machine took over a second, long enough to forgive the first refusal).
    assert all(f.get("code") == "rate_limited" for f in frames), frames
    reason = closed.value.reason
    assert reason is not None and reason.code == CLOSE_FLOODING, reason
    assert reason.reason == "more than 0.001 messages per second (ws_messages_per_s): slow down"
