"""The fleet as operators and vehicles see it: the vehicle list and vehicle admission."""

from __future__ import annotations

import pytest
import trio
from grpclib.const import Status

from bench.simulator import Behaviour, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import run_asyncio
from tests.support.node import VINS, Node


async def test_vehicle_list_shows_who_is_connected(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.http.get("/api/v1/vehicles", headers=await node.headers("viewer"))
    assert response.status_code == 200
    listing = response.json()
    assert listing["total"] == 3 and [v["vin"] for v in listing["items"]] == list(VINS)
    first, second = listing["items"][0], listing["items"][1]
    assert (first["make"], first["model"], first["year"]) == ("VW", "Golf", 2021)
    assert first["connection"]["status"] == "connected"
    assert first["connection"]["since"] is not None
    assert first["connection"]["last_seen_at"] is not None
    assert second["connection"] == {
        "status": "disconnected",
        "since": None,
        "last_seen_at": None,
        "reason": None,
        "detail": None,
        "node_id": None,
        "source": "local",  # one node, no Redis: this node's links are all there are
    }


UNKNOWN_TOKEN = (
    "unknown vehicle token: no registered vehicle has it (never issued, or rotated since); "
    "send the vehicle's current token"
)


@pytest.mark.parametrize(
    ("vin", "token_of", "message"),
    [
        ("WVWZZZ1JZXW999999", None, UNKNOWN_TOKEN),
        (VINS[1], None, UNKNOWN_TOKEN),  # nothing is read without a valid token: no VIN to blame
        (VINS[1], VINS[2], f"wrong token for VIN {VINS[1]}"),  # another vehicle's real token
    ],
)
async def test_a_refused_vehicle_does_not_disturb_the_others(
    node: Node, vin: str, token_of: str | None, message: str
) -> None:
    await node.connect_vehicle(VINS[0])
    token = "not-a-token" if token_of is None else node.vehicle_tokens[token_of]
    intruder = SimulatedVehicle(VehicleSpec(vin, token), "127.0.0.1", node.grpc_port)
    with trio.fail_after(5), pytest.raises(LinkRefused) as refused:
        await run_asyncio(intruder.run)
    assert refused.value.status is Status.UNAUTHENTICATED
    assert refused.value.message == message

    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x28"})
    command = await node.wait_final(response.json()["id"])
    assert command["status"] == "succeeded"
    listing = (await node.http.get("/api/v1/vehicles", headers=await node.headers())).json()
    assert [v["connection"]["status"] for v in listing["items"]] == [
        "connected",
        "disconnected",
        "disconnected",
    ]
    refused_vin = listing["items"][1]["connection"]
    if token_of is not None:  # a registered vehicle shows why its attempt failed
        assert (refused_vin["reason"], refused_vin["detail"]) == ("refused", message)
    else:
        assert refused_vin["reason"] is None


async def test_one_vehicle_and_why_its_link_ended(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(drop_after_events=1))
    missing = await node.http.get(
        "/api/v1/vehicles/WVWZZZ1JZXW999999", headers=await node.headers()
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_vehicle"

    connected = await node.http.get(f"/api/v1/vehicles/{VINS[0]}", headers=await node.headers())
    assert connected.json()["connection"]["status"] == "connected"
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    await node.wait_final(command_id)  # the vehicle drops its link after the first event
    vehicle = await node.http.get(f"/api/v1/vehicles/{VINS[0]}", headers=await node.headers())
    connection = vehicle.json()["connection"]
    assert (connection["status"], connection["reason"]) == ("disconnected", "connection_lost")
    assert connection["since"] is not None
