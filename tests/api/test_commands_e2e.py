"""The whole path of a command: REST in, gRPC to a simulated vehicle, WebSocket out, stored."""

from __future__ import annotations

import uuid
from datetime import datetime

from bench.simulator import Behaviour
from tests.support.node import VINS, Node
from tests.support.websocket import body, collect_until_status, subscribe


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
    assert [body(e)["code"] for e in events[:2]] == ["P0420", "P0171"]
    assert body(events[2])["total"] == 2
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
    row = await node.db.commands.get_command(uuid.UUID(command["id"]))
    assert row is not None and row.status.value == "succeeded"
    assert row.started_at is not None and row.finished_at is not None
    actions = [a.action for a in await node.db.audit.list_audit(target=f"command:{command['id']}")]
    assert actions == ["command.submitted", "command.succeeded"]


async def test_read_data_by_id_returns_the_value(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(
        VINS[0], "ReadDataByID", {"ecuAddress": "0x10", "dataId": "0x010c"}
    )
    assert response.status_code == 202, response.text
    command = await node.wait_final(response.json()["id"])
    assert command["status"] == "succeeded"
    events = (
        await node.http.get(
            f"/api/v1/commands/{command['id']}/events", headers=await node.headers()
        )
    ).json()["items"]
    assert events[-1]["body"]["value"] == 2450 and events[-1]["body"]["unit"] == "rpm"


async def test_read_data_by_id_unknown_identifier_fails_with_the_vehicles_reason(
    node: Node,
) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(
        VINS[0], "ReadDataByID", {"ecuAddress": "0x10", "dataId": "0x1234"}
    )
    command = await node.wait_final(response.json()["id"])
    assert command["status"] == "failed"
    assert command["error"] == "unknown data identifier 0x1234"


async def test_clear_dtc_clears_and_a_second_read_finds_none(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    cleared = await node.submit(VINS[0], "ClearDTC", {"ecuAddress": "0x10"})
    command = await node.wait_final(cleared.json()["id"])
    assert command["status"] == "succeeded"
    events = (
        await node.http.get(
            f"/api/v1/commands/{command['id']}/events", headers=await node.headers()
        )
    ).json()["items"]
    assert events[-1]["body"]["cleared"] == 2

    again = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    await node.wait_final(again.json()["id"])
    events = (
        await node.http.get(
            f"/api/v1/commands/{again.json()['id']}/events", headers=await node.headers()
        )
    ).json()["items"]
    assert [e["body"]["total"] for e in events] == [0]


async def test_a_vehicle_that_never_answers_ends_timed_out(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(silent=True))
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, timeout_s=0.5)
    command = await node.wait_final(response.json()["id"])
    assert command["status"] == "timed_out"
    assert command["error"] == "no final event within 0.5 s"
    assert node.vehicles[VINS[0]].commands_received == 1


async def test_a_link_dropped_mid_command_ends_interrupted(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(event_latency_s=0.05, drop_after_events=1))
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    command = await node.wait_final(response.json()["id"])
    assert command["status"] == "interrupted"
    assert str(command["error"]).startswith("link lost:")
    events = (
        await node.http.get(
            f"/api/v1/commands/{command['id']}/events", headers=await node.headers()
        )
    ).json()["items"]
    assert [e["seq"] for e in events] == [0]  # what arrived before the drop is kept
    vehicles = (await node.http.get("/api/v1/vehicles", headers=await node.headers())).json()
    status = {v["vin"]: v["connection"]["status"] for v in vehicles["items"]}
    assert status[VINS[0]] == "disconnected"


async def test_an_event_has_one_json_form_on_the_websocket_and_in_rest(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 202, response.text
    command_id = response.json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        live = [f for f in await collect_until_status(ws) if f["type"] == "event"]
    stored = await node.http.get(
        f"/api/v1/commands/{command_id}/events", headers=await node.headers()
    )
    items = stored.json()["items"]
    assert [f["seq"] for f in live] == [e["seq"] for e in items] == [0, 1, 2]
    for frame, item in zip(live, items, strict=True):
        assert frame.pop("type") == "event" and frame.pop("topic") == f"command:{command_id}"
        assert frame.keys() == item.keys()
        # the same instant; REST writes UTC as "Z", the frames as "+00:00"
        assert datetime.fromisoformat(str(frame.pop("received_at"))) == datetime.fromisoformat(
            item.pop("received_at")
        )
        assert frame == item
