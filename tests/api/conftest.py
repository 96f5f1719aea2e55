"""A whole hub node on ephemeral ports, with operators and simulated vehicles over real sockets.

The node runs in-process (one trio-asyncio loop, as in production); the
simulated vehicles are the `bench.simulator` fleet speaking real gRPC to it;
operators use real HTTP (httpx) and WebSocket (trio-websocket) clients.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio_websocket

from api.config import ApiConfig
from bench.simulator import Behaviour, LinkLost, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import JSON, HubConfig, run_asyncio
from sovd_hub import NodeAddresses, open_node
from storage import Database, StorageConfig

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


@asynccontextmanager
async def open_socket(node: Node) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket to the node whose TCP stream we close ourselves.

    trio-websocket 0.12 never closes the stream when the server closes first
    (`_aclose` returns early), which leaks a socket; owning the stream avoids it.
    """
    url = httpx.URL(node.ws_url)
    stream = await trio.open_tcp_stream(url.host, url.port or 80)
    async with stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, url.host, url.path)
        try:
            yield ws
        finally:
            await ws.aclose()


@asynccontextmanager
async def authenticated_socket(
    node: Node, username: str
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket of `username`, past the auth exchange."""
    async with open_socket(node) as ws:
        await send_json(ws, {"type": "auth", "token": await node.token(username)})
        reply = await receive_json(ws)
        assert reply["type"] == "authenticated", reply
        yield ws


@asynccontextmanager
async def unread_socket(
    node: Node, username: str, *, close_politely: bool = True
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """An authenticated WebSocket with a tiny receive buffer, read only when the test says.

    `close_politely=False` leaves without the close handshake, for a test whose
    socket may be blocked sending (trio-websocket cannot answer a close then).
    """
    url = httpx.URL(node.ws_url)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning to megabytes
    await sock.connect((url.host, url.port))
    async with trio.SocketStream(sock) as stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, url.host, url.path)
        try:
            await send_json(ws, {"type": "auth", "token": await node.token(username)})
            assert (await receive_json(ws))["type"] == "authenticated"
            yield ws
        finally:
            if close_politely:
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def _run_vehicle(vehicle: SimulatedVehicle, node: Node) -> None:
    # Fault-injection tests break links on purpose; what the hub does about it is asserted.
    ended = node.ended.setdefault(vehicle.spec.vin, trio.Event())
    try:
        await run_asyncio(vehicle.run)
    except (LinkLost, LinkRefused) as exc:
        node.endings[vehicle.spec.vin] = exc
    finally:
        ended.set()


async def send_json(ws: trio_websocket.WebSocketConnection, message: dict[str, JSON]) -> None:
    """Send one JSON text frame."""
    await ws.send_message(orjson.dumps(message).decode())


async def receive_json(ws: trio_websocket.WebSocketConnection) -> dict[str, JSON]:
    """Receive one JSON frame (fails the test after 10 s of silence)."""
    with trio.fail_after(10):
        message = orjson.loads(await ws.get_message())
    assert isinstance(message, dict)
    return message


async def subscribe(
    ws: trio_websocket.WebSocketConnection, command_id: str, from_seq: int = 0
) -> None:
    """Subscribe to a command and check the acknowledgement."""
    topic = f"command:{command_id}"
    await send_json(ws, {"type": "subscribe", "topic": topic, "from_seq": from_seq})
    reply = await receive_json(ws)
    assert reply == {"type": "subscribed", "topic": topic, "from_seq": from_seq}, reply


async def collect_until_status(ws: trio_websocket.WebSocketConnection) -> list[dict[str, JSON]]:
    """Every frame up to and including the command's `status` frame."""
    frames = []
    while True:
        frame = await receive_json(ws)
        frames.append(frame)
        if frame["type"] in ("status", "error"):
            return frames


@dataclass(frozen=True)
class NodeSettings:
    """Settings of the test node beyond the usual ones (`ApiConfig` / `StorageConfig` fields)."""

    api: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    hub: dict[str, Any] = field(default_factory=dict)  # `HubConfig` fields


@pytest.fixture
def node_settings() -> NodeSettings:
    """None; a test module overrides this fixture to run its nodes differently (e.g. on Redis)."""
    return NodeSettings()


@pytest.fixture
async def node(
    aio_loop: object, database_url: str, node_settings: NodeSettings
) -> AsyncIterator[Node]:
    """A node with users admin/engineer/viewer/other (password PASSWORD) and three vehicles
    registered (none connected: tests connect them with `node.connect_vehicle`)."""
    hub_config = HubConfig(
        grpc_port=0,
        shutdown_grace_s=2,
        default_command_timeout_s=5,
        max_in_flight_per_vehicle=1,
        cancel_grace_s=0.5,
        expiry_sweep_s=0.1,
    )
    hub_config = replace(hub_config, **node_settings.hub)
    api_config = ApiConfig(
        http_port=0, jwt_secret=JWT_SECRET, ws_auth_timeout_s=1, **node_settings.api
    )
    storage = StorageConfig(  # bcrypt_rounds=4: fast hashes for tests
        database_url=database_url, bcrypt_rounds=4, **node_settings.storage
    )
    async with open_node(hub_config, api_config, storage) as (addresses, db):
        tokens: dict[str, str] = {}
        await provision(db, tokens)
        async with serve_clients(addresses, db, tokens) as node:
            yield node


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


def body(frame: dict[str, JSON]) -> dict[str, Any]:
    """The JSON object in an event frame's `body`."""
    value = frame["body"]
    assert isinstance(value, dict), frame
    return value


def new_id() -> str:
    """A random command id (for commands that do not exist)."""
    return str(uuid.uuid4())
