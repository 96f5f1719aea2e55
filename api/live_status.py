"""Scale-out: which node holds each vehicle's link, from the leases in Redis.

With Redis (the hub's `ClusterRouter`), a vehicle is connected if a live node holds
its lease, whichever node answers the request. Without Redis, or while it
does not answer, only this node's links are known: `source` says which view
an answer comes from (`cluster` or `local`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import structlog

from api.state import state
from hub import StorageFailed

log = structlog.get_logger("api.live_status")

Source = Literal["cluster", "local"]


@dataclass(frozen=True, slots=True)
class Holders:
    """VIN -> node holding its link (other nodes only when `source` is `cluster`)."""

    source: Source
    nodes: dict[str, str] = field(default_factory=dict)


async def holders_of(vins: Collection[str]) -> Holders:
    """The live nodes holding `vins`' links (one batched lookup)."""
    router = state().hub.router
    if router is None or not vins:
        return Holders("local" if router is None else "cluster")
    try:
        return Holders("cluster", await router.leases.holders(vins))
    except StorageFailed as exc:
        log.warning("live_status.local_only", reason=str(exc))
        return Holders("local")


async def all_holders() -> Holders:
    """The live node holding every leased vehicle (a SCAN over the lease keys: costly)."""
    router = state().hub.router
    if router is None:
        return Holders("local")
    try:
        return Holders("cluster", await router.leases.all_holders())
    except StorageFailed as exc:
        log.warning("live_status.local_only", reason=str(exc))
        return Holders("local")
