"""Nodes sharing one Redis: `running_node` on a bus, `two_nodes`, topic subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio_websocket

from api import ApiConfig
from hub import JSON, HubConfig
from sovd_hub import open_node
from storage import StorageConfig
from tests.support.node import JWT_SECRET, Node, provision, serve_clients
from tests.support.websocket import receive_json, send_json

READ_DTC: dict[str, JSON] = {"ecuAddress": "0x10"}


@asynccontextmanager
async def running_node(
    database_url: str, redis_url: str, key_prefix: str, node_id: str, tokens: dict[str, str]
) -> AsyncIterator[Node]:
    """Node `node_id` on the shared database and Redis; the first one provisions the database.

    `tokens` (VIN -> vehicle token) is filled by the first node and shared by the others.
    """
    hub_config = HubConfig(
        grpc_port=0,
        shutdown_grace_s=2,
        default_command_timeout_s=10,
        max_in_flight_per_vehicle=1,
        cancel_grace_s=0.5,
        node_id=node_id,
    )
    api_config = ApiConfig(http_port=0, jwt_secret=JWT_SECRET, ws_auth_timeout_s=1)
    storage = StorageConfig(
        database_url=database_url,
        bcrypt_rounds=4,
        redis_url=redis_url,
        redis_key_prefix=key_prefix,
        redis_timeout_s=0.5,  # a cut Redis is noticed quickly
    )
    async with open_node(hub_config, api_config, storage) as (addresses, db):
        await provision(db, tokens, (("admin", "admin"), ("engineer", "engineer")))
        async with serve_clients(addresses, db, tokens) as node:
            yield node


@asynccontextmanager
async def two_nodes(
    database_url: str, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes A and B, sharing the database and Redis."""
    tokens: dict[str, str] = {}
    async with (
        running_node(database_url, redis_url, key_prefix, "node-a", tokens) as a,
        running_node(database_url, redis_url, key_prefix, "node-b", tokens) as b,
    ):
        yield a, b


async def subscribe_to(ws: trio_websocket.WebSocketConnection, topic: str) -> None:
    """Subscribe to `fleet` or `vehicle:<vin>`, skipping a vehicle topic's snapshot frame."""
    await send_json(ws, {"type": "subscribe", "topic": topic})
    assert await receive_json(ws) == {"type": "subscribed", "topic": topic}
    if topic.startswith("vehicle:"):
        assert (await receive_json(ws))["type"] == "vehicle"
