"""The fleet as operators and vehicles see it: the vehicle list and vehicle admission."""

from __future__ import annotations

import pytest
import trio
from grpclib.const import Status

from bench.simulator import LinkRefused, SimulatedVehicle, VehicleSpec
from hub.bridge import run_asyncio
from tests.api.conftest import VINS, Node


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
    assert second["connection"] == {"status": "disconnected", "since": None, "last_seen_at": None}


@pytest.mark.parametrize(
    ("vin", "token", "message"),
    [
        ("WVWZZZ1JZXW999999", "whatever", "unknown VIN 'WVWZZZ1JZXW999999'"),
        (VINS[1], "not-its-token", f"wrong token for VIN {VINS[1]}"),
    ],
)
async def test_a_refused_vehicle_does_not_disturb_the_others(
    node: Node, vin: str, token: str, message: str
) -> None:
    await node.connect_vehicle(VINS[0])
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
