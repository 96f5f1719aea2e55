"""The whole path of a command: REST in, gRPC to a simulated vehicle, WebSocket out, stored."""

from __future__ import annotations

import uuid

from bench.simulator import Behaviour
from tests.api.conftest import VINS, Node, collect_until_status, subscribe


async def test_read_dtc_streams_live_replays_late_and_is_recorded(node: Node) -> None:
    for vin in VINS:
        await node.connect_vehicle(vin, Behaviour(event_latency_s=0.05))
    vin = VINS[1]

    response = await node.submit(vin, "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 202, response.text
    command = response.json()
    assert response.headers["Location"] == f"/api/v1/commands/{command['id']}"
    assert command["status"] == "pending" and command["vin"] == vin

    async with node.websocket("engineer") as ws:
        await subscribe(ws, command["id"])
        live = await collect_until_status(ws)
    events = [f for f in live if f["type"] == "event"]
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert [e["kind"] for e in events] == ["progress", "progress", "result"]
    assert [e["final"] for e in events] == [False, False, True]
    assert [e["body"]["code"] for e in events[:2]] == ["P0420", "P0171"]  # type: ignore[index]
    assert events[2]["body"]["total"] == 2  # type: ignore[index]
    assert live[-1]["type"] == "status" and live[-1]["status"] == "succeeded"

    # A subscriber joining after the end gets the same sequence from storage.
    async with node.websocket("engineer") as late:
        await subscribe(late, command["id"], from_seq=0)
        replayed = await collect_until_status(late)
    assert replayed == live

    # A subscriber asking from seq 2 gets only the rest.
    async with node.websocket("engineer") as partial:
        await subscribe(partial, command["id"], from_seq=2)
        rest = await collect_until_status(partial)
    assert [f.get("seq") for f in rest] == [2, None]

    stored = await node.http.get(
        f"/api/v1/commands/{command['id']}/events", headers=await node.headers()
    )
    assert [e["seq"] for e in stored.json()["items"]] == [0, 1, 2]
    row = await node.db.get_command(uuid.UUID(command["id"]))
    assert row is not None and row.status.value == "succeeded"
    assert row.started_at is not None and row.finished_at is not None
    actions = [a.action for a in await node.db.list_audit(target=f"command:{command['id']}")]
    assert actions == ["command.submitted", "command.succeeded"]
