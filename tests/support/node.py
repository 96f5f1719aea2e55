"""A whole hub node for tests: `Node` (its HTTP client, WebSocket URL, gRPC port, database
and simulated vehicles), `NodeSettings`, the users and vehicles `provision` registers, and
`serve_clients` for a node already running. `tests/api/conftest.py`'s `node` fixture runs one.

The simulated vehicles are the `bench.simulator` fleet speaking real gRPC to it;
operators use real HTTP (httpx) and WebSocket (trio-websocket) clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
import trio_websocket

from bench.simulator import Behaviour, LinkLost, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import JSON, run_asyncio
from sovd_hub import NodeAddresses
from storage import Database
from tests.support.websocket import authenticated_socket, collect_until_status, subscribe

PASSWORD = "correct horse battery"
JWT_SECRET = "test-secret-" + "x" * 40
VINS = ("WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "WVWZZZ1JZXW000003")


@dataclass
class Node:
    """A running node and the clients that talk to it."""

    http: httpx.AsyncClient
    ws_url: str
    grpc_port: int
    db: Database
    nursery: trio.Nursery
    vehicle_tokens: dict[str, str]
    vehicles: dict[str, SimulatedVehicle] = field(default_factory=dict)
    #: How each vehicle's last session ended (set once it has), and when it did.
    endings: dict[str, LinkLost | LinkRefused] = field(default_factory=dict)
    ended: dict[str, trio.Event] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, username: str) -> str:
        """An access token of `username` (logged in once per test)."""
        if username not in self.access_tokens:
            response = await self.http.post(
                "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.access_tokens[username] = response.json()["access_token"]
        return self.access_tokens[username]

    async def headers(self, username: str = "engineer") -> dict[str, str]:
        """Authorization headers of `username`."""
        return {"Authorization": f"Bearer {await self.token(username)}"}

    async def connect_vehicle(
        self, vin: str, behaviour: Behaviour | None = None
    ) -> SimulatedVehicle:
        """Start the simulated vehicle `vin` and wait until the hub welcomed it."""
        vehicle = SimulatedVehicle(
            VehicleSpec(vin, self.vehicle_tokens[vin]),
            "127.0.0.1",
            self.grpc_port,
            behaviour or Behaviour(),
        )
        self.vehicles[vin] = vehicle
        self.ended[vin] = trio.Event()
        self.nursery.start_soon(_run_vehicle, vehicle, self)
        with trio.fail_after(5):
            await run_asyncio(vehicle.connected.wait)
        return vehicle

    async def submit(
        self, vin: str, command: str, params: dict[str, JSON], **extra: JSON
    ) -> httpx.Response:
        """POST a command as the engineer."""
        body = {"vin": vin, "command": command, "params": params, **extra}
        return await self.http.post("/api/v1/commands", json=body, headers=await self.headers())

    async def wait_final(self, command_id: str) -> dict[str, JSON]:
        """Follow a command over the WebSocket until it ends; returns its command resource."""
        async with self.websocket("engineer") as ws:
            await subscribe(ws, command_id)
            await collect_until_status(ws)
        response = await self.http.get(
            f"/api/v1/commands/{command_id}", headers=await self.headers()
        )
        body: dict[str, JSON] = response.json()
        return body

    def websocket(
        self, username: str
    ) -> AbstractAsyncContextManager[trio_websocket.WebSocketConnection]:
        """An authenticated WebSocket of `username`."""
        return authenticated_socket(self, username)


async def _run_vehicle(vehicle: SimulatedVehicle, node: Node) -> None:
    # Fault-injection tests break links on purpose; what the hub does about it is asserted.
    ended = node.ended.setdefault(vehicle.spec.vin, trio.Event())
    try:
        await run_asyncio(vehicle.run)
    except (LinkLost, LinkRefused) as exc:
        node.endings[vehicle.spec.vin] = exc
    finally:
        ended.set()


@dataclass(frozen=True)
class NodeSettings:
    """Settings of the test node beyond the usual ones (`ApiConfig` / `StorageConfig` fields)."""

    api: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    hub: dict[str, Any] = field(default_factory=dict)  # `HubConfig` fields


USERS = (("admin", "admin"), ("engineer", "engineer"), ("viewer", "viewer"), ("other", "engineer"))


async def provision(
    db: Database, tokens: dict[str, str], users: tuple[tuple[str, str], ...] = USERS
) -> None:
    """`users` (password PASSWORD) and the VINS, their tokens into `tokens`; once per database."""
    if tokens:
        return
    for username, role in users:
        await db.accounts.add_user(username, PASSWORD, role)
    for vin in VINS:
        _, tokens[vin] = await db.vehicles.add_vehicle(vin, make="VW", model="Golf", year=2021)


@asynccontextmanager
async def serve_clients(
    addresses: NodeAddresses, db: Database, tokens: dict[str, str]
) -> AsyncIterator[Node]:
    """A `Node` of HTTP and WebSocket clients for a node running at `addresses`."""
    async with (
        httpx.AsyncClient(base_url=addresses.http_url) as http,
        trio.open_nursery() as nursery,
    ):
        yield Node(
            http=http,
            ws_url=addresses.http_url.replace("http://", "ws://") + "/api/v1/ws",
            grpc_port=addresses.grpc_port,
            db=db,
            nursery=nursery,
            vehicle_tokens=tokens,
        )
        nursery.cancel_scope.cancel()
