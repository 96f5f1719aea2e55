"""Serve a hub node: database, hub (gRPC) and API (HTTP) in one trio process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

from api.app import create_app
from api.config import ApiConfig, StorageConfig
from hub import HubConfig, InProcessBus, open_hub
from storage import Database, KeyValue, open_database, open_keyvalue

log = structlog.get_logger("api.server")


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    """Where a running node listens."""

    http_url: str
    grpc_port: int


@asynccontextmanager
async def open_node(
    hub_config: HubConfig, api_config: ApiConfig, storage_config: StorageConfig
) -> AsyncIterator[tuple[NodeAddresses, Database]]:
    """Run a whole node while the context is open; yields its addresses and its database.

    Commands left unfinished by an earlier run are marked `interrupted` first.
    Leaving the context stops HTTP, then ends every vehicle link with
    `UNAVAILABLE`, then closes the database. Must run inside `trio_asyncio.open_loop()`.
    """
    async with open_database(
        storage_config.database_url,
        pool_size=storage_config.database_pool_size,
        bcrypt_rounds=storage_config.bcrypt_rounds,
    ) as db:
        interrupted = await db.interrupt_unfinished(
            datetime.now(UTC), "the hub restarted while the command ran"
        )
        if interrupted:
            log.warning("commands.interrupted_at_start", count=interrupted)
        async with (
            _open_redis(storage_config) as keyvalue,
            open_hub(hub_config, db, db, InProcessBus(), db, db) as hub,
        ):
            app = create_app(hub, db, api_config, hub_config, keyvalue)
            config = HypercornConfig()
            config.bind = [f"{api_config.http_host}:{api_config.http_port}"]
            config.accesslog = None
            config.errorlog = logging.getLogger("hypercorn.error")  # our JSON handler, our level
            config.graceful_timeout = hub_config.shutdown_grace_s
            stop_http = trio.Event()
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(_serve_http, app, config, stop_http)
                addresses = NodeAddresses(http_url=binds[0], grpc_port=hub.grpc_port)
                log.info("hub.started", http=addresses.http_url, grpc_port=hub.grpc_port)
                try:
                    yield addresses, db
                finally:
                    stop_http.set()


@asynccontextmanager
async def _open_redis(storage_config: StorageConfig) -> AsyncIterator[KeyValue | None]:
    """Redis when `redis_url` is set (connected lazily: readiness reports it), else None."""
    if storage_config.redis_url is None:
        yield None
        return
    async with open_keyvalue(
        storage_config.redis_url,
        key_prefix=storage_config.redis_key_prefix,
        pool_size=storage_config.redis_pool_size,
        timeout_s=storage_config.redis_timeout_s,
    ) as keyvalue:
        log.info("redis.configured", url=keyvalue.where, key_prefix=keyvalue.key_prefix)
        yield keyvalue


async def _serve_http(
    app: QuartTrio,
    config: HypercornConfig,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
