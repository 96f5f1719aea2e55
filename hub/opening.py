"""Starting and stopping a hub node: `open_hub` wires a `Hub` to its ports and runs it.

It starts the node's writers (journal, last-seen, credential lookups, audit
notes, refusal tally), its actors' nursery, the expiry sweep and the gRPC
gateway, and stops them politely: every vehicle stream is ended with
`UNAVAILABLE`, actors get `shutdown_grace_s` to record what they interrupted,
then are cancelled; the writers outlive them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from hub.auditing import AuditLog
from hub.config import HubConfig
from hub.gateway import serve_gateway
from hub.node import Hub
from hub.ports import CommandBacklog, CommandJournal, EventBus, VehicleDirectory, VehicleLeases


@asynccontextmanager
async def open_hub(
    config: HubConfig,
    *,
    directory: VehicleDirectory,
    journal: CommandJournal,
    backlog: CommandBacklog,
    audit: AuditLog,
    bus: EventBus,
    leases: VehicleLeases | None = None,
) -> AsyncIterator[Hub]:
    """Run a hub node serving vehicles on `config.grpc_host:grpc_port` while the context is open.

    The ports are given by keyword: `directory` (the vehicle registry),
    `journal` (where commands are recorded), `backlog` (commands waiting for
    an offline vehicle), `audit`, `bus`, and with scale-out `leases`.

    `hub.grpc_port` is the bound port (useful with port 0). Must run in trio
    hosted on asyncio (`hub.run_with_asyncio`). Leaving the context shuts the
    node down gracefully, bounded by `shutdown_grace_s`.
    """
    hub = Hub(config, directory, journal, bus, audit, backlog, leases)
    async with trio.open_nursery() as nursery:
        # The writers outlive the actors, which record what they interrupt as they stop.
        await nursery.start(hub.journal.run)
        await nursery.start(hub.last_seen.run)
        await nursery.start(hub.credentials.run)
        await nursery.start(hub.audit_notes.run)
        await nursery.start(hub.refusals.run)
        await nursery.start(hub.run)
        await nursery.start(hub.expire_waiting)
        async with serve_gateway(hub, config.grpc_host, config.grpc_port) as port:
            hub.grpc_port = port
            yield hub
        nursery.cancel_scope.cancel()
