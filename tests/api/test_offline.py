"""Commands that wait for an offline vehicle (`ttl_s`): kept, delivered in order, or expired."""

from __future__ import annotations

import uuid

import trio

from bench.simulator import Behaviour
from tests.support.node import VINS, Node
from tests.support.websocket import collect_until_status, subscribe


async def test_waiting_commands_are_delivered_in_order_when_the_vehicle_connects(
    node: Node,
) -> None:
    first = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=60)
    second = await node.submit(
        VINS[0], "ReadDataByID", {"ecuAddress": "0x10", "dataId": "0x010D"}, ttl_s=60
    )
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["status"] == "pending" and first.json()["expires_at"] is not None

    vehicle = await node.connect_vehicle(VINS[0])
    done = [await node.wait_final(r.json()["id"]) for r in (first, second)]
    assert [c["status"] for c in done] == ["succeeded", "succeeded"]
    started = [str(c["started_at"]) for c in done]  # ISO 8601 in UTC: sorts as text
    assert started[0] < started[1]  # max_in_flight_per_vehicle=1: one after the other, in order
    assert vehicle.commands_received == 2


async def test_a_command_expires_when_its_vehicle_stays_offline(node: Node) -> None:
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=0.3)
    command_id = response.json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        frames = await collect_until_status(ws)
    assert (frames[-1]["status"], frames[-1]["error"]) == (
        "expired",
        "the vehicle stayed offline past the command's ttl_s",
    )
    actions = [a.action for a in await node.db.audit.list_audit(target=f"command:{command_id}")]
    assert actions == ["command.submitted", "command.expired"]


async def test_a_waiting_command_survives_a_lost_link(node: Node) -> None:
    silent = await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    running = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    waiting = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x18"}, ttl_s=60)).json()[
        "id"
    ]  # behind the running one: max_in_flight_per_vehicle=1
    silent.break_link()
    assert (await node.wait_final(running))["status"] == "interrupted"
    with trio.fail_after(5):
        await node.ended[VINS[0]].wait()
    row = await node.db.commands.get_command(uuid.UUID(waiting))
    assert row is not None and row.status.value == "pending"

    await node.connect_vehicle(VINS[0])
    assert (await node.wait_final(waiting))["status"] == "succeeded"


async def test_ttl_over_the_limit_is_422(node: Node) -> None:
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=10**9)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("ttl_s must be at most 604800")
