"""One WebSocket flooding the hub with subscriptions cannot stall another operator's command.

The node runs with the default WebSocket limits (`ws_messages_per_s` 20,
`ws_message_burst` 100, `ws_max_concurrent_reads` 4). Before those limits,
20,000 subscribes for unknown command ids from one socket that reads nothing
made another engineer's ReadDTC take 21-28 s here (instead of ~0.1 s): every
subscribe became a task whose database read queued for the pool the journal
commits through, and for the asyncio bridge's single callback queue (trio-asyncio then).
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio_websocket

from api.config import ApiConfig
from api.ws_limits import CLOSE_FLOODING
from tests.support.node import JWT_SECRET, VINS, Node
from tests.support.websocket import (
    collect_until_status,
    new_id,
    receive_json,
    send_json,
    subscribe,
    unread_socket,
)

FLOOD_MESSAGES = 20_000
#: The other engineer's ReadDTC, end to end: ~0.1-0.5 s with the limits, 21-28 s without.
COMMAND_BOUND_S = 5.0
DEFAULTS = ApiConfig(jwt_secret=JWT_SECRET)


async def flood(
    ws: trio_websocket.WebSocketConnection, under_way: trio.Event, scope: trio.CancelScope
) -> None:
    """Subscribe to FLOOD_MESSAGES unknown commands as fast as the socket takes them.

    `under_way` is set once three bursts' worth are sent (the hub has read them or they
    wait in the TCP buffers).
    """
    with scope, contextlib.suppress(trio_websocket.ConnectionClosed):
        for sent in range(FLOOD_MESSAGES):
            await send_json(ws, {"type": "subscribe", "topic": f"command:{new_id()}"})
            if sent == 3 * DEFAULTS.ws_message_burst:
                under_way.set()


async def read_dtc(node: Node, vin: str) -> str:
    """Another engineer's ReadDTC on `vin`, followed over their own WebSocket: its status."""
    headers = await node.headers("other")
    body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
    response = await node.http.post(
        "/api/v1/commands", json=body, headers=headers, timeout=None
    )  # bounded by the caller
    assert response.status_code == 202, response.text
    async with node.websocket("other") as ws:
        await subscribe(ws, response.json()["id"])
        frames = await collect_until_status(ws)
    status = frames[-1]["status"]
    assert isinstance(status, str), frames[-1]
    return status


async def test_a_subscribe_flood_is_closed_with_4429_and_never_stalls_another_command(
    node: Node,
) -> None:
    await node.connect_vehicle(VINS[1])
    await node.token("other")  # logged in before the flood
    under_way, flooding_scope = trio.Event(), trio.CancelScope()
    async with (
        unread_socket(node, "engineer", close_politely=False) as flooding,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(flood, flooding, under_way, flooding_scope)
        with trio.fail_after(10):
            await under_way.wait()
        started = trio.current_time()
        with trio.move_on_after(COMMAND_BOUND_S * 4) as waited:
            status = await read_dtc(node, VINS[1])
        took = trio.current_time() - started
        assert not waited.cancelled_caught, (
            f"the ReadDTC did not finish within {COMMAND_BOUND_S * 4:g} s"
        )
        assert took < COMMAND_BOUND_S, f"the ReadDTC took {took:.1f} s during the flood"
        assert status == "succeeded"

        # Stop flooding (the hub stopped reading it: a send is blocked, and holds the
        # client's send lock that its close handshake needs), then read what it was sent.
        flooding_scope.cancel()
        frames = []
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                frames.append(await receive_json(flooding))
    reason = closed.value.reason
    assert reason is not None and reason.code == CLOSE_FLOODING, reason
    assert "ws_messages_per_s" in (reason.reason or "")
    codes = [f["code"] for f in frames]
    assert codes.count("rate_limited") == 1, codes
    assert "ws_messages_per_s" in str(frames[codes.index("rate_limited")]["message"])
    # The hub looked up about one burst of them (plus what refilled meanwhile), no more.
    looked_up = codes.count("unknown_command")
    assert DEFAULTS.ws_message_burst <= looked_up < 2 * DEFAULTS.ws_message_burst, looked_up

    # The flooder's user is not locked out: a new socket of theirs works.
    async with node.websocket("engineer") as ws:
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}
