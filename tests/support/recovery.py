"""A node that is started, stopped and started again on one database, and a stored status."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api import ApiConfig
from hub import (
    CommandStatus,
    HubConfig,
    InProcessBus,
)
from sovd_hub import open_node
from storage import Database, StorageConfig
from tests.support.node import JWT_SECRET, Node, provision, serve_clients


@asynccontextmanager
async def running_node(
    database_url: str, node_id: str, tokens: dict[str, str], bus: InProcessBus | None = None
) -> AsyncIterator[Node]:
    """A node called `node_id` on the shared database; the first one provisions it.

    `tokens` (VIN -> vehicle token) is filled by the first node and shared by the others.
    """
    hub_config = HubConfig(
        grpc_port=0,
        shutdown_grace_s=2,
        default_command_timeout_s=60,  # silent vehicles keep their commands running
        max_in_flight_per_vehicle=1,
        cancel_grace_s=0.5,
        expiry_sweep_s=0.1,
        node_id=node_id,
    )
    api_config = ApiConfig(http_port=0, jwt_secret=JWT_SECRET, ws_auth_timeout_s=1)
    storage = StorageConfig(database_url=database_url, bcrypt_rounds=4)
    async with open_node(hub_config, api_config, storage, bus=bus) as (addresses, db):
        await provision(db, tokens, USERS)
        async with serve_clients(addresses, db, tokens) as node:
            yield node


async def status_of(db: Database, command_id: uuid.UUID) -> tuple[CommandStatus, str | None]:
    row = await db.commands.get_command(command_id)
    assert row is not None
    return row.status, row.error


USERS = (("admin", "admin"), ("engineer", "engineer"))
