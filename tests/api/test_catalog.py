"""The catalog over HTTP, and every SOVD-shaped command run against a simulated vehicle.

Real sockets throughout: REST to the node, gRPC from the node to the
`bench.simulator` vehicle, events back over the WebSocket.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub import CATALOG, JSON
from tests.support.node import VINS, Node, NodeSettings
from tests.support.websocket import body, collect_until_status, receive_json, subscribe

VIN = VINS[0]
EXECUTIONS = "/components/engine/operations/selftest/executions"


@pytest.fixture
def node_settings() -> NodeSettings:
    # A stop must reach the vehicle while the operation it stops still runs.
    return NodeSettings(hub={"max_in_flight_per_vehicle": 2})


async def run(
    node: Node, command: str, params: dict[str, JSON], **extra: JSON
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit, follow to the end over the WebSocket; the command and its stored events."""
    response = await node.submit(VIN, command, params, **extra)
    assert response.status_code == 202, response.text
    finished = await node.wait_final(response.json()["id"])
    stored = await node.http.get(
        f"/api/v1/commands/{finished['id']}/events", headers=await node.headers()
    )
    assert stored.status_code == 200, stored.text
    events: list[dict[str, Any]] = stored.json()["items"]
    return finished, events


async def test_catalog_publishes_every_command_with_its_schema(node: Node) -> None:
    response = await node.http.get("/api/v1/catalog", headers=await node.headers("viewer"))

    assert response.status_code == 200, response.text
    catalog = response.json()
    assert catalog["total"] == len(CATALOG) == len(catalog["items"])
    assert [item["name"] for item in catalog["items"]] == list(CATALOG)
    for item in catalog["items"]:
        spec = CATALOG[item["name"]]
        # Exactly the schema the sans-IO tests hold against build_request.
        assert item["params"] == spec.params_schema()
        assert item["sovd"] == {
            "method": spec.method,
            "path": spec.path,
            "query": list(spec.query),
            "body": list(spec.body),
        }
        assert item["examples"] == [dict(e) for e in spec.examples]
        assert item["description"]
    start = next(i for i in catalog["items"] if i["name"] == "StartOperation")
    assert start["sovd"] == {
        "method": "POST",
        "path": "/components/{component}/operations/{operation}/executions",
        "query": [],
        "body": ["durationMs"],
    }
    assert start["params"]["properties"]["durationMs"] == {
        "type": "integer",
        "description": "how long the routine runs, in milliseconds",
        "minimum": 100,
        "maximum": 20000,
        "default": 3000,
    }
    assert start["params"]["required"] == ["component", "operation"]


async def test_one_catalog_command_and_the_errors_around_it(node: Node) -> None:
    one = await node.http.get("/api/v1/catalog/ListFaults", headers=await node.headers("viewer"))
    assert one.status_code == 200, one.text
    assert one.json()["sovd"]["query"] == ["status"]

    unknown = await node.http.get("/api/v1/catalog/FlashECU", headers=await node.headers())
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "unknown_command"
    assert error["message"].startswith("no catalog command 'FlashECU'; known: ClearDTC, ")

    anonymous = await node.http.get("/api/v1/catalog")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"


async def test_a_submission_breaking_the_published_schema_names_the_field(node: Node) -> None:
    await node.connect_vehicle(VIN)

    response = await node.submit(
        VIN, "StartOperation", {"component": "engine", "operation": "selftest", "durationMs": 50}
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_command"
    assert error["message"] == "params.durationMs must be from 100 to 20000, got 50"
    assert error["details"] == [
        {"field": "params.durationMs", "rule": "minimum", "message": error["message"]}
    ]


async def test_discovery_and_data_commands(node: Node) -> None:
    await node.connect_vehicle(VIN)

    command, events = await run(node, "ListComponents", {})
    assert command["status"] == "succeeded"
    assert [c["id"] for c in events[-1]["body"]["items"]] == [
        "engine",
        "transmission",
        "brakes",
        "body",
    ]

    _, events = await run(node, "ListData", {"component": "transmission"})
    items = {i["id"]: i for i in events[-1]["body"]["items"]}
    assert items["current-gear"] == {
        "id": "current-gear",
        "name": "Current gear",
        "unit": None,
        "category": "currentData",
    }
    assert items["0xF190"]["category"] == "identData"

    command, events = await run(node, "ReadData", {"component": "engine", "dataId": "oil-pressure"})
    assert command["status"] == "succeeded"
    assert [e["kind"] for e in events] == ["progress", "result"]
    assert events[-1]["body"]["value"] == 3.2 and events[-1]["body"]["unit"] == "bar"

    _, events = await run(node, "ReadData", {"component": "body", "dataId": "0xf190"})
    assert events[-1]["body"]["value"] == VIN and events[-1]["body"]["did"] == "0xF190"

    command, _ = await run(node, "ReadData", {"component": "body", "dataId": "engine-speed"})
    assert command["status"] == "failed"
    assert command["error"].startswith("component body has no data item 'engine-speed'")

    _, events = await run(node, "ListOperations", {"component": "brakes"})
    assert [op["id"] for op in events[-1]["body"]["items"]] == ["selftest"]


async def test_fault_commands_filter_and_clear(node: Node) -> None:
    await node.connect_vehicle(VIN)

    _, events = await run(node, "ListFaults", {"component": "engine", "status": "confirmed"})
    assert [(e["kind"], e["body"].get("code")) for e in events] == [
        ("progress", "P0420"),
        ("result", None),
    ]
    assert events[-1]["body"]["status"] == "confirmed"
    assert events[-1]["body"]["faults"] == ["P0420"]

    command, events = await run(node, "ClearFaults", {"component": "engine", "code": "P0420"})
    assert command["status"] == "succeeded" and events[-1]["body"]["cleared"] == 1

    _, events = await run(node, "ListFaults", {"component": "engine"})
    assert events[-1]["body"]["faults"] == ["P0171"]

    command, _ = await run(node, "ClearFaults", {"component": "engine", "code": "P0420"})
    assert command["status"] == "failed"
    assert command["error"] == "no stored fault P0420 on component engine (stored: P0171)"

    command, events = await run(node, "ClearFaults", {"component": "brakes"})
    assert command["status"] == "succeeded" and events[-1]["body"]["cleared"] == 1
    _, events = await run(node, "ListFaults", {"component": "brakes", "status": "pending"})
    assert events[-1]["body"]["total"] == 0


async def test_an_operation_streams_progress_and_completes(node: Node) -> None:
    await node.connect_vehicle(VIN)
    params: dict[str, JSON] = {"component": "engine", "operation": "selftest", "durationMs": 200}

    response = await node.submit(VIN, "StartOperation", params)
    assert response.status_code == 202, response.text
    command_id = response.json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        frames = await collect_until_status(ws)

    events = [f for f in frames if f["type"] == "event"]
    assert [(e["seq"], e["kind"], e["status"]) for e in events] == [
        (0, "accepted", 202),
        (1, "progress", 200),
        (2, "progress", 200),
        (3, "progress", 200),
        (4, "progress", 200),
        (5, "result", 200),
    ]
    # The execution id is the command's id, so it can be addressed without reading the events.
    assert body(events[0]) == {
        "id": command_id,
        "component": "engine",
        "operation": "selftest",
        "status": "running",
        "href": f"{EXECUTIONS}/{command_id}",
    }
    assert [body(e)["progress"] for e in events[1:5]] == [0, 25, 50, 75]
    assert body(events[-1])["status"] == "completed"
    assert body(events[-1])["result"]["passed"] is True
    assert frames[-1]["type"] == "status" and frames[-1]["status"] == "succeeded"

    address: dict[str, JSON] = {
        "component": "engine",
        "operation": "selftest",
        "executionId": command_id,
    }
    _, status_events = await run(node, "GetOperationStatus", address)
    assert status_events[-1]["body"]["status"] == "completed"

    late_stop, _ = await run(node, "StopOperation", address)
    assert late_stop["status"] == "failed"
    assert late_stop["error"] == (
        f"execution {command_id} of selftest on component engine is completed, "
        "not running: there is nothing to stop"
    )


async def test_stop_ends_a_running_operation(node: Node) -> None:
    await node.connect_vehicle(VIN)
    # Long enough that only the stop can end it before the test's own patience runs out.
    params: dict[str, JSON] = {"component": "engine", "operation": "selftest", "durationMs": 20000}
    response = await node.submit(VIN, "StartOperation", params, timeout_s=60)
    assert response.status_code == 202, response.text
    start_id = response.json()["id"]

    async with node.websocket("engineer") as ws:
        await subscribe(ws, start_id)
        accepted = await receive_json(ws)
        assert (accepted["kind"], body(accepted)["id"]) == ("accepted", start_id)
        first = await receive_json(ws)
        assert (first["kind"], body(first)["progress"]) == ("progress", 0)

        stop = await node.submit(
            VIN,
            "StopOperation",
            {"component": "engine", "operation": "selftest", "executionId": start_id},
        )
        assert stop.status_code == 202, stop.text
        rest = await collect_until_status(ws)

    # The start command ends with a result saying it was stopped, and by which command.
    [final] = [f for f in rest if f["type"] == "event"]
    assert (final["seq"], final["kind"], final["status"], final["final"]) == (
        2,
        "result",
        200,
        True,
    )
    assert body(final) == {
        "id": start_id,
        "component": "engine",
        "operation": "selftest",
        "status": "stopped",
        "stopped_by": stop.json()["id"],
    }
    assert rest[-1]["type"] == "status" and rest[-1]["status"] == "succeeded"

    stopped = await node.wait_final(stop.json()["id"])
    assert stopped["status"] == "succeeded"
    _, status_events = await run(
        node,
        "GetOperationStatus",
        {"component": "engine", "operation": "selftest", "executionId": start_id},
    )
    assert status_events[-1]["body"]["status"] == "stopped"
