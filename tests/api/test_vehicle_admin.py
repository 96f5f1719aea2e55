"""Vehicle credentials: register, rotate the token, disable and enable (admins only)."""

from __future__ import annotations

import pytest
import trio
from grpclib.const import Status

from bench.simulator import LinkRefused, SimulatedVehicle, VehicleSpec
from hub import run_asyncio
from tests.support.node import VINS, Node

NEW_VIN = "1HGCM82633A004352"


async def _refusal(node: Node, vin: str, token: str) -> LinkRefused:
    vehicle = SimulatedVehicle(VehicleSpec(vin, token), "127.0.0.1", node.grpc_port)
    with trio.fail_after(5), pytest.raises(LinkRefused) as refused:
        await run_asyncio(vehicle.run)
    return refused.value


async def test_an_admin_registers_a_vehicle_whose_token_works(node: Node) -> None:
    body = {"vin": NEW_VIN, "make": "Honda", "model": "Accord", "year": 2003}
    response = await node.http.post(
        "/api/v1/vehicles", json=body, headers=await node.headers("admin")
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["vin"], created["connection"]["status"]) == (NEW_VIN, "disconnected")
    node.vehicle_tokens[NEW_VIN] = created["token"]
    await node.connect_vehicle(NEW_VIN)  # fails the test if the token is refused

    again = await node.http.post("/api/v1/vehicles", json=body, headers=await node.headers("admin"))
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"vehicle {NEW_VIN} is already registered"
    audit = await node.db.audit.list_audit(target=f"vehicle:{NEW_VIN}")
    links = ("vehicle.connected", "vehicle.disconnected")  # written soon after, in batches
    assert [(a.action, a.actor) for a in audit if a.action not in links] == [
        ("vehicle.added", "admin"),
        ("vehicle.token_issued", "admin"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vin": "1HGCM82633A00435O", "make": "H", "model": "A", "year": 2003}, "vin"),
        ({"vin": NEW_VIN, "make": "H", "model": "A", "year": 1800}, "year"),
        ({"vin": NEW_VIN, "make": "", "model": "A", "year": 2003}, "make"),
        ({"vin": NEW_VIN, "make": "H", "model": "A", "year": 2003, "color": "red"}, "color"),
    ],
)
async def test_bad_registrations_are_422_and_write_nothing(
    node: Node, body: dict[str, object], field: str
) -> None:
    response = await node.http.post(
        "/api/v1/vehicles", json=body, headers=await node.headers("admin")
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field
    assert await node.db.vehicles.get_vehicle(NEW_VIN) is None


async def test_only_admins_manage_vehicles(node: Node) -> None:
    body = {"vin": NEW_VIN, "make": "Honda", "model": "Accord", "year": 2003}
    headers = await node.headers("engineer")
    assert (await node.http.post("/api/v1/vehicles", json=body, headers=headers)).status_code == 403
    for action in ("token", "disable", "enable"):
        url = f"/api/v1/vehicles/{VINS[0]}/{action}"
        assert (await node.http.post(url, headers=headers)).status_code == 403
    unknown = await node.http.post(
        "/api/v1/vehicles/WVWZZZ1JZXW999999/disable", headers=await node.headers("admin")
    )
    assert unknown.status_code == 404


async def test_rotating_the_token_ends_the_live_link_and_retires_the_old_one(node: Node) -> None:
    old_token = node.vehicle_tokens[VINS[0]]
    await node.connect_vehicle(VINS[0])
    response = await node.http.post(
        f"/api/v1/vehicles/{VINS[0]}/token", headers=await node.headers("admin")
    )
    assert response.status_code == 200
    new_token = response.json()["token"]
    assert new_token != old_token
    with trio.fail_after(5):
        await node.ended[VINS[0]].wait()
    assert _status(node, VINS[0]) is Status.UNAUTHENTICATED

    refused = await _refusal(node, VINS[0], old_token)
    assert (refused.status, refused.message) == (
        Status.UNAUTHENTICATED,
        "unknown vehicle token: no registered vehicle has it (never issued, or rotated since); "
        "send the vehicle's current token",
    )
    node.vehicle_tokens[VINS[0]] = new_token
    await node.connect_vehicle(VINS[0])


async def test_a_disabled_vehicle_is_cut_off_until_enabled(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    admin = await node.headers("admin")
    disabled = await node.http.post(f"/api/v1/vehicles/{VINS[0]}/disable", headers=admin)
    assert disabled.status_code == 200
    with trio.fail_after(5):
        await node.ended[VINS[0]].wait()
    assert _status(node, VINS[0]) is Status.PERMISSION_DENIED
    state = (await node.http.get(f"/api/v1/vehicles/{VINS[0]}", headers=admin)).json()["connection"]
    assert (state["status"], state["reason"]) == ("disconnected", "revoked")

    refused = await _refusal(node, VINS[0], node.vehicle_tokens[VINS[0]])
    assert (refused.status, refused.message) == (
        Status.PERMISSION_DENIED,
        f"vehicle {VINS[0]} is disabled",
    )
    assert (
        await node.http.post(f"/api/v1/vehicles/{VINS[0]}/enable", headers=admin)
    ).status_code == 200
    await node.connect_vehicle(VINS[0])
    audit = await node.db.audit.list_audit(target=f"vehicle:{VINS[0]}")
    links = ("vehicle.connected", "vehicle.disconnected", "vehicle.refused")  # in batches
    actions = [a.action for a in audit if a.action not in links]
    assert actions[-2:] == ["vehicle.disabled", "vehicle.enabled"]


def _status(node: Node, vin: str) -> Status | None:
    ending = node.endings.get(vin)
    return ending.status if isinstance(ending, LinkRefused) else None
