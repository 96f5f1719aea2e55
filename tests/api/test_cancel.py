"""Cancelling commands: waiting, running (confirmed or not), finished, someone else's."""

from __future__ import annotations

from typing import Any

from bench.simulator import Behaviour
from tests.support.node import VINS, Node
from tests.support.websocket import collect_until_status, subscribe


async def _cancel(
    node: Node, command_id: str, username: str = "engineer"
) -> tuple[int, dict[str, Any]]:
    response = await node.http.post(
        f"/api/v1/commands/{command_id}/cancel", headers=await node.headers(username)
    )
    return response.status_code, response.json()


async def test_a_running_command_is_cancelled_when_the_vehicle_confirms(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0], Behaviour(event_latency_s=0.3))
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        status, body = await _cancel(node, command_id)
        assert status == 202 and body["id"] == command_id
        frames = await collect_until_status(ws)
    assert frames[-1]["status"] == "cancelled"
    assert frames[-1]["error"] == "cancelled by engineer"
    final_event = [f for f in frames if f["type"] == "event"][-1]
    assert (final_event["status"], final_event["final"]) == (
        499,
        True,
    )  # the vehicle's confirmation
    assert vehicle.commands_received == 1
    actions = [a.action for a in await node.db.audit.list_audit(target=f"command:{command_id}")]
    assert actions == [
        "command.submitted",
        "command.cancel_requested",
        "command.cancelled",
    ]


async def test_an_unconfirmed_cancel_ends_after_the_grace(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    command = (
        await node.wait_final(command_id) if (await _cancel(node, command_id))[0] == 202 else {}
    )
    assert command["status"] == "cancelled"
    assert command["error"] == "cancelled by engineer; the vehicle did not confirm in time"


async def test_a_waiting_command_is_cancelled_at_once(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    await node.submit(
        VINS[0], "ReadDTC", {"ecuAddress": "0x10"}
    )  # occupies max_in_flight_per_vehicle=1
    waiting = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x18"})).json()["id"]
    assert (await _cancel(node, waiting))[0] == 202
    command = await node.wait_final(waiting)
    assert (command["status"], command["error"]) == (
        "cancelled",
        "cancelled by engineer before it was sent",
    )
    assert vehicle.commands_received == 1


async def test_a_finished_command_cannot_be_cancelled(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    await node.wait_final(command_id)
    status, body = await _cancel(node, command_id)
    assert status == 409
    assert body["error"]["message"] == f"command {command_id} has already ended: succeeded"


async def test_only_its_owner_or_an_admin_may_cancel(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    assert (await _cancel(node, command_id, "viewer"))[0] == 403
    assert (await _cancel(node, command_id, "other"))[0] == 404
    status, body = await _cancel(node, command_id, "admin")
    assert status == 202 and body["status"] in ("dispatched", "running")
