"""Fixtures of the API tests: `node`, a whole hub node on ephemeral ports, with operators and
simulated vehicles over real sockets (`tests.support.node`), and `node_settings` to vary it.

The node runs in-process (trio hosted on one asyncio loop, as in production).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from api import ApiConfig
from hub import HubConfig
from sovd_hub import open_node
from storage import StorageConfig
from tests.support.node import JWT_SECRET, Node, NodeSettings, provision, serve_clients


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
