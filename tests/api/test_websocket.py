"""The operator WebSocket: authentication, subscription errors, and the socket staying usable."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from bench.simulator import Behaviour
from tests.support.node import VINS, Node
from tests.support.websocket import new_id, open_socket, receive_json, send_json, subscribe


async def _close_code(node: Node, first_message: dict[str, object] | None) -> tuple[int, str]:
    async with open_socket(node) as ws:
        if first_message is not None:
            await send_json(ws, first_message)  # type: ignore[arg-type]
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    reason = closed.value.reason
    assert reason is not None
    return reason.code, reason.reason or ""


async def test_no_auth_message_closes_with_4401(node: Node) -> None:
    code, reason = await _close_code(node, None)
    assert (code, reason) == (4401, "no auth message within 1 s")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "auth", "token": "forged"}, "invalid access token"),
        ({"type": "subscribe", "topic": "command:x"}, "the first message must be"),
        ({"type": "auth"}, "the first message must be"),
    ],
)
async def test_bad_auth_closes_with_4401(
    node: Node, message: dict[str, object], reason: str
) -> None:
    code, text = await _close_code(node, message)
    assert code == 4401 and reason in text


async def test_bad_messages_get_error_frames_and_the_socket_stays_open(node: Node) -> None:
    async with node.websocket("engineer") as ws:
        cases = [
            ("not json", "malformed_message"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "subscribe", "topic": "weather:today"}', "bad_topic"),
            ('{"type": "subscribe", "topic": "command:nope"}', "bad_topic"),
            (
                f'{{"type": "subscribe", "topic": "command:{new_id()}", "from_seq": -1}}',
                "bad_from_seq",
            ),
            (f'{{"type": "subscribe", "topic": "command:{new_id()}"}}', "unknown_command"),
            ('{"type": "subscribe", "topic": "fleet", "from_seq": 0}', "bad_from_seq"),
            ('{"type": "unsubscribe", "topic": "fleet"}', "not_subscribed"),
            ('{"type": "auth", "token": "forged"}', "bad_auth"),
        ]
        for raw, code in cases:
            await ws.send_message(raw)
            reply = await receive_json(ws)  # a refused subscription is never acknowledged
            assert (reply["type"], reply["code"]) == ("error", code), reply
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}


async def test_another_engineers_command_cannot_be_followed(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    async with node.websocket("other") as ws:
        await send_json(ws, {"type": "subscribe", "topic": f"command:{command_id}"})
        reply = await receive_json(ws)
        assert (reply["type"], reply["code"]) == ("error", "unknown_command")
    async with node.websocket("admin") as ws:
        await subscribe(ws, command_id)


async def test_vehicle_and_fleet_topics_follow_connections(node: Node) -> None:
    async with node.websocket("viewer") as ws:
        await send_json(ws, {"type": "subscribe", "topic": "fleet"})
        assert await receive_json(ws) == {"type": "subscribed", "topic": "fleet"}
        await send_json(ws, {"type": "subscribe", "topic": f"vehicle:{VINS[0]}"})
        assert await receive_json(ws) == {"type": "subscribed", "topic": f"vehicle:{VINS[0]}"}
        snapshot = await receive_json(ws)
        assert (snapshot["type"], snapshot["status"], snapshot["reason"]) == (
            "vehicle",
            "disconnected",
            None,
        )

        await node.connect_vehicle(VINS[0], Behaviour(drop_after_events=1))
        connected = [await receive_json(ws) for _ in range(2)]
        assert {(f["topic"], f["status"]) for f in connected} == {
            ("fleet", "connected"),
            (f"vehicle:{VINS[0]}", "connected"),
        }
        await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})  # the vehicle drops
        dropped = [await receive_json(ws) for _ in range(2)]
        assert {(f["status"], f["reason"]) for f in dropped} == {
            ("disconnected", "connection_lost")
        }

        await send_json(ws, {"type": "subscribe", "topic": "vehicle:WVWZZZ1JZXW999999"})
        refused = await receive_json(ws)  # refused before it is acknowledged
        assert (refused["type"], refused["code"], refused["topic"]) == (
            "error",
            "unknown_vehicle",
            "vehicle:WVWZZZ1JZXW999999",
        )
