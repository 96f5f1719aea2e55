"""The operator WebSocket's topics: a vehicle's commands by owner, unsubscribe, ping, re-auth."""

from __future__ import annotations

from contextlib import AsyncExitStack

from hub import JSON
from tests.support.node import PASSWORD, VINS, Node
from tests.support.websocket import Frame, frames_until, receive_json, send_json, subscribe_vehicle

READ_DTC: dict[str, JSON] = {"ecuAddress": "0x10"}


def command_frames(frames: list[Frame], command_id: str) -> list[Frame]:
    """The event and status frames of one command, in order."""
    return [f for f in frames if f.get("command_id") == command_id]


def is_disconnect(frame: Frame) -> bool:
    return frame["type"] == "vehicle" and frame["status"] == "disconnected"


async def test_vehicle_topic_carries_its_commands_to_admins_and_to_their_submitters(
    node: Node,
) -> None:
    vin = VINS[0]
    vehicle = await node.connect_vehicle(vin)
    topic = f"vehicle:{vin}"
    async with AsyncExitStack() as stack:
        users = ("admin", "engineer", "other", "viewer")
        sockets = {u: await stack.enter_async_context(node.websocket(u)) for u in users}
        for ws in sockets.values():
            assert (await subscribe_vehicle(ws, vin))["status"] == "connected"
        mine = (await node.submit(vin, "ReadDTC", READ_DTC)).json()["id"]
        response = await node.http.post(
            "/api/v1/commands",
            json={"vin": vin, "command": "ReadDTC", "params": READ_DTC},
            headers=await node.headers("other"),
        )
        assert response.status_code == 202, response.text
        theirs = response.json()["id"]
        ended: set[JSON] = set()

        def both_ended(frame: Frame) -> bool:
            if frame["type"] == "status":
                ended.add(frame["command_id"])
            return ended == {mine, theirs}

        seen = {"admin": await frames_until(sockets["admin"], both_ended)}
        vehicle.break_link()  # its disconnect is published after both commands' frames
        seen["admin"] += await frames_until(sockets["admin"], is_disconnect)
        for user in ("engineer", "other", "viewer"):
            seen[user] = await frames_until(sockets[user], is_disconnect)

    for command_id in (mine, theirs):
        frames = command_frames(seen["admin"], command_id)
        *events, status = frames
        assert [f["seq"] for f in events] == list(range(len(events))) and events, frames
        assert events[-1]["final"] and not any(f["final"] for f in events[:-1])
        assert (status["type"], status["status"]) == ("status", "succeeded")
        assert {f["topic"] for f in frames} == {topic}
    assert command_frames(seen["engineer"], mine) == command_frames(seen["admin"], mine)
    assert command_frames(seen["engineer"], theirs) == []
    assert command_frames(seen["other"], theirs) == command_frames(seen["admin"], theirs)
    assert command_frames(seen["other"], mine) == []
    assert [f["type"] for f in seen["viewer"]] == ["vehicle"]  # the disconnect only


async def test_unsubscribe_stops_delivery_and_ping_answers(node: Node) -> None:
    vin = VINS[1]
    await node.connect_vehicle(vin)
    topic = f"vehicle:{vin}"
    async with node.websocket("engineer") as ws, node.websocket("admin") as watcher:
        await subscribe_vehicle(ws, vin)
        await subscribe_vehicle(watcher, vin)
        await send_json(ws, {"type": "unsubscribe", "topic": topic})
        assert await receive_json(ws) == {"type": "unsubscribed", "topic": topic}

        command_id = (await node.submit(vin, "ReadDTC", READ_DTC)).json()["id"]
        await frames_until(
            watcher, lambda f: f.get("command_id") == command_id and f["type"] == "status"
        )
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}  # no frame of the command before it

        await send_json(ws, {"type": "unsubscribe", "topic": topic})
        reply = await receive_json(ws)
        assert (reply["type"], reply["code"], reply["topic"]) == ("error", "not_subscribed", topic)
        assert (await subscribe_vehicle(ws, vin))["status"] == "connected"  # may come back


async def test_a_subscription_is_refused_twice_and_unknown_vehicles_are_refused(
    node: Node,
) -> None:
    async with node.websocket("viewer") as ws:
        await subscribe_vehicle(ws, VINS[2])
        await send_json(ws, {"type": "subscribe", "topic": f"vehicle:{VINS[2]}"})
        reply = await receive_json(ws)
        assert (reply["type"], reply["code"]) == ("error", "already_subscribed")
        await send_json(ws, {"type": "subscribe", "topic": f"vehicle:{VINS[2]}", "from_seq": 3})
        reply = await receive_json(ws)
        assert (reply["type"], reply["code"]) == ("error", "bad_from_seq")
        assert "live only" in str(reply["message"])


async def test_auth_again_with_a_fresh_token_of_the_same_user(node: Node) -> None:
    async with node.websocket("engineer") as ws:
        await send_json(ws, {"type": "auth", "token": await node.token("other")})
        reply = await receive_json(ws)
        assert (reply["type"], reply["code"]) == ("error", "bad_auth")
        assert "other's" in str(reply["message"])
        login = await node.http.post(
            "/api/v1/auth/login", json={"username": "engineer", "password": PASSWORD}
        )
        fresh = login.json()["access_token"]
        await send_json(ws, {"type": "auth", "token": fresh})
        assert await receive_json(ws) == {
            "type": "authenticated",
            "username": "engineer",
            "role": "engineer",
        }


async def test_vehicle_topic_tells_the_submitter_when_a_waiting_command_expires(
    node: Node,
) -> None:
    vin = VINS[1]  # never connects
    async with node.websocket("engineer") as ws:
        await subscribe_vehicle(ws, vin)
        submitted = await node.submit(vin, "ReadDTC", READ_DTC, ttl_s=0.2)
        assert submitted.status_code == 202, submitted.text
        command_id = submitted.json()["id"]
        frame = await receive_json(ws)
    assert (frame["type"], frame["command_id"], frame["status"]) == (
        "status",
        command_id,
        "expired",
    ), frame
