"""Every action the audit trail must answer for leaves its event, readable at GET /api/v1/audit.

One scenario performs each action through the real API (HTTP) and the real
vehicle link (gRPC); a table then names the event each one must have left:
who did it, what, to what, about which vehicle, and its key details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from socket import gethostname
from typing import Any

import pytest
import trio
from grpclib.const import Status

from bench.simulator import Behaviour, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import run_asyncio
from tests.support.accounts import bearer, login, refresh
from tests.support.node import PASSWORD, VINS, Node, NodeSettings

NEW_VIN = "1HGCM82633A004352"
UNKNOWN_VIN = "WVWZZZ1JZXW999999"


@dataclass(frozen=True)
class Expected:
    """An audit event that must exist: `details` holds a subset of its details."""

    action: str
    actor: str
    target: str
    vin: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


async def _refused(node: Node, vin: str, token: str) -> LinkRefused:
    vehicle = SimulatedVehicle(VehicleSpec(vin, token), "127.0.0.1", node.grpc_port)
    with trio.fail_after(5), pytest.raises(LinkRefused) as refused:
        await run_asyncio(vehicle.run)
    return refused.value


async def _find(node: Node, expected: Expected) -> dict[str, Any] | None:
    """The newest event matching `expected`, found through the API's own filters."""
    params: dict[str, str] = {"action": expected.action, "actor": expected.actor}
    if expected.vin is not None:
        params["vin"] = expected.vin
    response = await node.http.get(
        "/api/v1/audit",
        params=params | {"order": "desc", "limit": "1000"},
        headers=await node.headers("admin"),
    )
    assert response.status_code == 200, response.text
    for event in response.json()["items"]:
        if (
            event["target"] == expected.target
            and expected.details.items() <= event["details"].items()
        ):
            return dict(event)
    return None


async def _wait_found(node: Node, expected: Expected) -> dict[str, Any]:
    # Link events (connect, disconnect, refusal) are written in batches, soon after.
    for _ in range(100):
        event = await _find(node, expected)
        if event is not None:
            return event
        await trio.sleep(0.05)
    raise AssertionError(f"no audit event {expected}")


@pytest.fixture
def node_settings() -> NodeSettings:
    """Refusal rows are written as their window ends: a short one, so the test sees them."""
    return NodeSettings(hub={"refusal_audit_window_s": 0.2})


async def test_every_audited_action_leaves_its_event(node: Node) -> None:
    admin = await node.headers("admin")
    expected: list[Expected] = []

    # Sessions: login, failed login, refresh, reuse of a refresh token, logout.
    engineer = await login(node, "engineer")
    session = {"session_id": engineer["session_id"]}
    expected.append(Expected("auth.login", "engineer", "user:engineer", None, session))
    failed = await node.http.post(
        "/api/v1/auth/login", json={"username": "viewer", "password": "not " + PASSWORD}
    )
    assert failed.status_code == 401
    expected.append(
        Expected(
            "auth.login_failed", "anonymous", "user:viewer", None, {"reason": "wrong_password"}
        )
    )
    assert (await refresh(node, engineer["refresh_token"])).status_code == 200
    expected.append(Expected("auth.refresh", "engineer", "user:engineer", None, session))
    assert (await refresh(node, engineer["refresh_token"])).status_code == 401
    expected.append(Expected("auth.refresh_reused", "engineer", "user:engineer", None, session))
    other = await login(node, "other")
    logout = await node.http.post("/api/v1/auth/logout", headers=bearer(other))
    assert logout.status_code == 204
    expected.append(
        Expected("auth.logout", "other", "user:other", None, {"session_id": other["session_id"]})
    )

    # Users.
    new_user = {"username": "carol", "password": PASSWORD, "role": "viewer"}
    created = await node.http.post("/api/v1/users", json=new_user, headers=admin)
    assert created.status_code == 201, created.text
    expected.append(Expected("user.added", "admin", "user:carol", None, {"role": "viewer"}))
    user_url = f"/api/v1/users/{created.json()['id']}"
    assert (await node.http.patch(user_url, json={"role": "engineer"}, headers=admin)).is_success
    expected.append(Expected("user.updated", "admin", "user:carol"))
    unlocked = await node.http.post(f"{user_url}/unlock", headers=admin)
    assert unlocked.status_code == 204, unlocked.text
    expected.append(Expected("user.unlocked", "admin", "user:carol", None, {"addresses": 0}))

    # Vehicles and their credentials.
    vehicle = {"vin": NEW_VIN, "make": "Honda", "model": "Accord", "year": 2003}
    registered = await node.http.post("/api/v1/vehicles", json=vehicle, headers=admin)
    assert registered.status_code == 201, registered.text
    target = f"vehicle:{NEW_VIN}"
    expected.append(Expected("vehicle.added", "admin", target, NEW_VIN, {"make": "Honda"}))
    expected.append(Expected("vehicle.token_issued", "admin", target, NEW_VIN))
    url = f"/api/v1/vehicles/{NEW_VIN}"
    assert (await node.http.patch(url, json={"year": 2004}, headers=admin)).is_success
    expected.append(Expected("vehicle.updated", "admin", target, NEW_VIN))
    assert (await node.http.post(f"{url}/token", headers=admin)).is_success
    expected.append(Expected("vehicle.token_rotated", "admin", target, NEW_VIN))
    assert (await node.http.post(f"{url}/disable", headers=admin)).is_success
    expected.append(Expected("vehicle.disabled", "admin", target, NEW_VIN))
    assert (await node.http.post(f"{url}/enable", headers=admin)).is_success
    expected.append(Expected("vehicle.enabled", "admin", target, NEW_VIN))

    # Vehicle links: refusals, a connection, a disconnection.
    # Refusals are audited per source and window (refusal_audit_window_s, short here).
    wrong = await _refused(node, VINS[1], node.vehicle_tokens[VINS[2]])  # another's token
    assert wrong.status is Status.UNAUTHENTICATED
    expected.append(
        Expected(
            "vehicle.refused", "hub", f"vehicle:{VINS[1]}", VINS[1],
            {"status": "UNAUTHENTICATED", "reason": f"wrong token for VIN {VINS[1]}", "count": 1},
        )
    )  # fmt: skip
    unknown = await _refused(node, UNKNOWN_VIN, "whatever")
    expected.append(
        Expected(
            "vehicle.refused", "hub", "vehicle:?", None,
            {"reason": unknown.message, "address": "127.0.0.1", "count": 1},
        )
    )  # fmt: skip
    fast = await node.connect_vehicle(VINS[0])
    expected.append(
        Expected(
            "vehicle.connected", f"vehicle:{VINS[0]}", f"vehicle:{VINS[0]}", VINS[0],
            {"session": fast.session_id},
        )
    )  # fmt: skip

    # Commands: submitted and a final state (naming the node that held it); a cancel
    # asked for and done.
    done = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()
    assert (await node.wait_final(done["id"]))["status"] == "succeeded"
    command = f"command:{done['id']}"
    expected += [
        Expected("command.submitted", "engineer", command, VINS[0], {"name": "ReadDTC"}),
        Expected(
            "command.succeeded", "hub", command, VINS[0], {"error": None, "node": gethostname()}
        ),
    ]
    silent_session = (await node.connect_vehicle(VINS[1], Behaviour(silent=True))).session_id
    stuck = (await node.submit(VINS[1], "ReadDTC", {"ecuAddress": "0x10"})).json()
    cancel = await node.http.post(
        f"/api/v1/commands/{stuck['id']}/cancel", headers=await node.headers("engineer")
    )
    assert cancel.status_code == 202
    assert (await node.wait_final(stuck["id"]))["status"] == "cancelled"
    command = f"command:{stuck['id']}"
    expected += [
        Expected("command.cancel_requested", "engineer", command, VINS[1]),
        Expected(
            "command.cancelled", "hub", command, VINS[1],
            {"error": "cancelled by engineer; the vehicle did not confirm in time"},
        ),
    ]  # fmt: skip
    assert (await node.http.post(f"/api/v1/vehicles/{VINS[1]}/disable", headers=admin)).is_success
    with trio.fail_after(5):
        await node.ended[VINS[1]].wait()
    expected.append(
        Expected(
            "vehicle.disconnected", "hub", f"vehicle:{VINS[1]}", VINS[1],
            {"session": silent_session, "reason": "revoked"},
        )
    )  # fmt: skip

    # The export, audited before it streams.
    export = await node.http.get("/api/v1/audit/export", params={"format": "csv"}, headers=admin)
    assert export.status_code == 200
    expected.append(Expected("audit.exported", "admin", "audit", None, {"format": "csv"}))

    for wanted in expected:
        event = await _wait_found(node, wanted)
        assert event["vin"] == wanted.vin, (wanted, event)
