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

from api import ApiConfig, app_state, create_app
from hub import (
    ROUTING_READ_BLOCK_S,
    ClusterRouter,
    EventBus,
    Hub,
    HubConfig,
    InProcessBus,
    open_hub,
    publish_ends,
)
from sovd_hub.retention import retention_policy, run_retention
from sovd_hub.revocations import follow_revocations, share_revocations
from storage import (
    CommandStreams,
    Database,
    KeyValue,
    RedisLeases,
    StorageConfig,
    open_database,
    open_keyvalue,
    open_redis_bus,
)

log = structlog.get_logger("sovd_hub.node")

#: The error of a command that a restart of its node found still active.
RESTART_REASON = "the hub restarted while the command ran"
#: The error of a command that a graceful stop of its node found still active.
STOP_REASON = "the hub stopped before the command finished"


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    """Where a running node listens."""

    http_url: str
    grpc_port: int


@asynccontextmanager
async def open_node(
    hub_config: HubConfig,
    api_config: ApiConfig,
    storage_config: StorageConfig,
    *,
    bus: EventBus | None = None,
) -> AsyncIterator[tuple[NodeAddresses, Database]]:
    """Run a whole node while the context is open; yields its addresses and its database.

    `bus`: the event bus it shares with other nodes (default: over Redis when
    `redis_url` is set, else its own, in process).
    Commands that an earlier run of this node (same `node_id`) left unfinished
    are marked `interrupted` first (`recover_commands`).
    Leaving the context stops HTTP, then ends every vehicle link with
    `UNAVAILABLE`; running alone (no Redis), it then ends this node's commands
    still active (not the waiting ones) `interrupted`; then closes the database.
    Must run in trio hosted on asyncio (`hub.run_with_asyncio`).
    """
    async with (
        open_database(
            storage_config.database_url,
            pool_size=storage_config.database_pool_size,
            bcrypt_rounds=storage_config.bcrypt_rounds,
            node_id=hub_config.node_id,
            connect_timeout_s=storage_config.database_connect_timeout_s,
            command_timeout_s=storage_config.database_command_timeout_s,
        ) as db,
        _open_bus(hub_config, storage_config, bus) as bus,
    ):
        await recover_commands(db, bus)  # before any vehicle can connect
        async with (
            _open_redis(storage_config) as keyvalue,
            open_leases(keyvalue, hub_config) as leases,
            open_hub(
                hub_config,
                directory=db.vehicles,
                journal=db.commands,
                backlog=db.commands,
                audit=db.audit,
                bus=bus,
                leases=leases,
            ) as hub,
        ):
            app = create_app(hub, db, api_config, hub_config, keyvalue)
            router = _route(hub, db, leases, keyvalue, storage_config)
            revocations = app_state(app.extensions).tokens.revocations
            share_revocations(bus, revocations)
            config = HypercornConfig()
            config.bind = [f"{api_config.http_host}:{api_config.http_port}"]
            config.accesslog = None
            config.include_server_header = False  # no `Server: hypercorn-h11`, errors included
            config.errorlog = logging.getLogger("hypercorn.error")  # our JSON handler, our level
            config.graceful_timeout = hub_config.shutdown_grace_s
            stop_http = trio.Event()
            async with trio.open_nursery() as nursery:
                follower = await nursery.start(follow_revocations, bus, revocations)
                binds = await nursery.start(_serve_http, app, config, stop_http)
                policy = retention_policy(storage_config, api_config.jwt_secret, db.audit_chain)
                retention = await nursery.start(
                    run_retention, db, policy, storage_config.retention_sweep_s
                )
                routing = None if router is None else await nursery.start(router.run)
                addresses = NodeAddresses(http_url=binds[0], grpc_port=hub.grpc_port)
                log.info("hub.started", http=addresses.http_url, grpc_port=hub.grpc_port)
                try:
                    yield addresses, db
                finally:
                    retention.cancel()
                    follower.cancel()
                    if routing is not None:
                        routing.cancel()
                    stop_http.set()
        if storage_config.redis_url is None:  # alone: nothing else can still run them
            await recover_commands(db, bus, STOP_REASON)


def _route(
    hub: Hub,
    db: Database,
    leases: RedisLeases | None,
    keyvalue: KeyValue | None,
    storage: StorageConfig,
) -> ClusterRouter | None:
    """Scale-out routing when Redis is configured (else None: the node runs alone)."""
    if leases is None or keyvalue is None or storage.redis_url is None:
        return None
    url, node_id = storage.redis_url, hub.config.node_id

    @asynccontextmanager
    async def open_reader() -> AsyncIterator[CommandStreams]:
        # Reads block: a connection of its own, with a timeout above the read's block.
        async with open_keyvalue(
            url,
            key_prefix=storage.redis_key_prefix,
            pool_size=2,
            timeout_s=ROUTING_READ_BLOCK_S + storage.redis_timeout_s + 1,
        ) as blocking:
            yield CommandStreams(blocking, node_id)

    return hub.route_through(db.commands, leases, CommandStreams(keyvalue, node_id), open_reader)


@asynccontextmanager
async def open_leases(
    keyvalue: KeyValue | None, config: HubConfig
) -> AsyncIterator[RedisLeases | None]:
    """This node's leases while open (None without Redis); released politely on exit."""
    if keyvalue is None:
        yield None
        return
    leases = RedisLeases(
        keyvalue,
        config.node_id,
        lease_ttl_s=config.lease_ttl_s,
        lease_refresh_s=config.lease_refresh_s,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(leases.run)
        try:
            yield leases
        finally:
            nursery.cancel_scope.cancel()
            await leases.close()


async def recover_commands(db: Database, bus: EventBus, reason: str = RESTART_REASON) -> int:
    """Crash recovery: end `db.node_id`'s commands left active by its previous run.

    Also the last step of a graceful stop of a node running alone
    (`STOP_REASON`): what its actors did not end (a command whose hand-over
    was lost) ends then, not at the next start.

    Each becomes `interrupted` (`reason`, with a "command.interrupted"
    audit event) and its status is published on its command topic and its
    vehicle's topic, so subscribers learn the end; later subscribers read it
    from the database. Commands waiting for an offline vehicle (`ttl_s`) keep
    waiting; other nodes' commands are left alone (cleaning up after a node
    that never comes back is scale-out's work). Returns how many it ended.
    """
    interrupted = await db.commands.interrupt_unfinished(datetime.now(UTC), reason)
    publish_ends(bus, interrupted)
    if interrupted:
        event = (
            "commands.interrupted_at_start"
            if reason == RESTART_REASON
            else "commands.interrupted_at_stop"
        )
        log.warning(event, count=len(interrupted), node_id=db.node_id)
    return len(interrupted)


@asynccontextmanager
async def _open_bus(
    hub_config: HubConfig, storage_config: StorageConfig, bus: EventBus | None
) -> AsyncIterator[EventBus]:
    """`bus` if given, else a `RedisBus` when `redis_url` is set, else an `InProcessBus`."""
    if bus is not None:
        yield bus
    elif storage_config.redis_url is None:
        yield InProcessBus()
    else:
        async with open_redis_bus(
            storage_config.redis_url,
            node_id=hub_config.node_id,
            key_prefix=storage_config.redis_key_prefix,
            timeout_s=storage_config.redis_timeout_s,
            outgoing_messages=storage_config.bus_outgoing_messages,
        ) as redis_bus:
            yield redis_bus


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
