"""The seams of the hub: what it needs from storage and from an event bus.

`storage/` implements `VehicleDirectory` and `CommandJournal`; `hub.bus`
implements `EventBus` in process, `storage.redis_bus` across nodes over Redis. The hub
only ever talks to these Protocols, so nothing in `hub/` imports `storage/`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, TypeAlias, runtime_checkable

import trio

from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandUpdate,
    SessionRevoked,
    StatusChange,
    StreamEntry,
    VehicleCredentials,
    VehicleStatus,
)

BusMessage: TypeAlias = (
    CommandEventRecord | StatusChange | VehicleStatus | CommandUpdate | SessionRevoked
)

#: The bus topic of every vehicle's connection changes.
FLEET_TOPIC = "fleet"
#: The bus topic of operator sessions revoked on any node (`SessionRevoked`).
SESSIONS_TOPIC = "sessions"


@runtime_checkable
class Pingable(Protocol):
    """A store that can say whether it answers (the journal probes it during an outage)."""

    async def ping(self) -> None:
        """Return once the store answers; raise `StorageUnavailable` if it does not."""
        ...


class VehicleDirectory(Protocol):
    """The vehicle registry, as the gateway sees it."""

    async def find_vehicles(self, vins: Collection[str]) -> dict[str, VehicleCredentials]:
        """Credentials of the registered vehicles among `vins` (absent: not registered)."""
        ...

    async def find_vehicles_by_token(
        self, token_hashes: Collection[str]
    ) -> list[VehicleCredentials]:
        """Credentials of the registered vehicles whose `token_hash` is among `token_hashes`;
        `waiting` says whether commands wait for each (True when the directory cannot tell)."""
        ...

    async def record_seen(self, seen: Mapping[str, datetime]) -> None:
        """Remember when each vehicle's link was last up (`last_seen_at`), in one transaction."""
        ...


class CommandJournal(Protocol):
    """Where the actors record what happens to commands."""

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> AbstractSet[uuid.UUID] | None:
        """Store new commands, events and status changes in one transaction; returns once committed.

        New commands are stored as pending, with a "command.submitted" audit event.
        Events already stored (same command id and seq) are ignored. A change
        to a final status also appends an audit event. A new command whose
        submitter already used its `idempotency_key` is not stored (nor
        audited) and the rest is: its id is in the returned set (None or
        empty: every command was stored).
        """
        ...


class CommandBacklog(Protocol):
    """Commands that wait, durably, for their vehicle to come online."""

    async def waiting_commands(self, vin: str) -> list[Command]:
        """`vin`'s commands still waiting (pending, with an expiry), oldest first."""
        ...

    async def expire_waiting(
        self, now: datetime, spare: Collection[str]
    ) -> list[tuple[str, CommandUpdate]]:
        """End waiting commands past their expiry as `expired`, except those of `spare` VINs
        (a set: every connected vehicle; keep it out of SQL).

        Returns each command's VIN and its change, with its submitter.
        """
        ...


@runtime_checkable
class DueWaiting(Protocol):
    """A backlog that can name the vehicles with waiting commands past their expiry."""

    async def due_waiting_vins(self, now: datetime) -> set[str]:
        """The VINs of pending commands with an expiry at or before `now`."""
        ...


class VehicleLeases(Protocol):
    """Scale-out: which node holds which vehicle's link (leases shared by the nodes).

    `claim` and `release` never block and never fail: the implementation
    writes them in batches, and re-takes every lease of this node's vehicles
    when its store comes back after an outage.
    """

    def claim(self, vin: str) -> None:
        """`vin`'s link is now on this node (a link elsewhere is ended by its node)."""
        ...

    def release(self, vin: str) -> None:
        """`vin`'s link to this node ended: give up its lease if it is still ours."""
        ...

    async def leased(self, vins: Collection[str]) -> set[str]:
        """Those of `vins` whose lease some live node holds now.

        Raises `StorageUnavailable` when that cannot be told.
        """
        ...


class RoutingLeases(VehicleLeases, Protocol):
    """Scale-out: the leases as the router and the janitor use them (`hub.routing`).

    Every method raises a `StorageFailed` when its store fails.
    """

    #: Called with (vin, holder) when another node took a vehicle linked here.
    on_lost: Callable[[str, str], None] | None
    #: Called with (old holder, vin) when this node took a vehicle from a live node.
    on_taken: Callable[[str, str], Awaitable[None]] | None

    async def holder(self, vin: str) -> str | None:
        """The live node holding `vin`'s lease, or None."""
        ...

    async def holders(self, vins: Collection[str]) -> dict[str, str]:
        """VIN -> the live node holding its lease, for those of `vins` that have one."""
        ...

    async def all_holders(self) -> dict[str, str]:
        """VIN -> live holder for every leased vehicle (a scan: costly)."""
        ...

    async def nodes_alive(self, node_ids: Collection[str]) -> set[str]:
        """Those of `node_ids` whose liveness key exists."""
        ...

    async def known_nodes(self) -> set[str]:
        """Every node that registered itself (alive or not)."""
        ...

    async def forget_node(self, node_id: str) -> None:
        """Forget a dead node once cleaned up (its registration and its stream)."""
        ...

    async def lock_janitor(self, dead: str, ttl_s: float) -> bool:
        """Take the lock of cleaning up after `dead` for `ttl_s`; False if another has it."""
        ...

    async def unlock_janitor(self, dead: str) -> None:
        """Give the lock of cleaning up after `dead` back."""
        ...


class RoutingStreams(Protocol):
    """Scale-out: the per-node command streams (at-least-once delivery, acknowledged).

    Every method raises a `StorageFailed` when its store fails.
    """

    async def send(
        self,
        node_id: str,
        kind: str,
        vin: str,
        command_id: uuid.UUID | None = None,
        by: str = "",
        *,
        command: Command | None = None,
    ) -> str:
        """Append work for `node_id` (see `StreamEntry`; a `dispatch` carries its
        `command`, whose id it is); returns the entry id."""
        ...

    async def read(
        self, node_id: str, consumer: str, *, pending: bool, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """Entries of `node_id`'s stream for `consumer`: its unacknowledged ones (`pending`),
        else new ones, waiting up to `block_ms` (None: not at all)."""
        ...

    async def claim_pending(self, node_id: str, consumer: str, count: int) -> list[StreamEntry]:
        """Take over the entries `node_id`'s own consumer read but never acknowledged."""
        ...

    async def ack(self, node_id: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge handled entries of `node_id`'s stream."""
        ...


class RoutingStore(Protocol):
    """Scale-out: what the router and the janitor read and write in the database.

    Every method raises a `StorageFailed` when its store fails.
    """

    async def get_command(self, command_id: uuid.UUID) -> Command | None:
        """The stored command, with its status (None: unknown)."""
        ...

    async def take_pending(self, command_id: uuid.UUID, node_id: str | None) -> bool:
        """Whether the command is still `pending` (False: ended, dispatched or unknown);
        with `node_id`, also stamp that node (whose actor takes it), in one statement."""
        ...

    async def active_nodes(self) -> set[str]:
        """Node ids stamped on active commands (not counting waiting ones)."""
        ...

    async def interrupt_node(
        self, node_id: str, at: datetime, reason: str, *, pending: bool = True
    ) -> list[tuple[str, CommandUpdate]]:
        """A dead node's active commands (only its dispatched ones with `pending=False`)
        become interrupted (idempotent, audited); returns each one's VIN and change."""
        ...

    async def pending_of_node(self, node_id: str) -> list[Command]:
        """A node's pending commands without a ttl, oldest first."""
        ...


class AuditTrail(Protocol):
    """The append-only audit trail, for what the hub itself must answer for."""

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        """Append one audit event."""
        ...


class EventBus(Protocol):
    """Delivers command events and status changes to subscribers of a topic."""

    def publish(self, topic: str, message: BusMessage) -> None:
        """Hand `message` to every current subscriber of `topic`; never blocks."""
        ...

    def subscribe(
        self, topic: str
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[BusMessage]]:
        """Receive what is published on `topic` from now on, while the context is open.

        A subscriber that falls more than its buffer behind has its channel
        closed (it sees `trio.EndOfChannel`) and must subscribe again.
        """
        ...


def command_topic(command_id: object) -> str:
    """The bus topic of one command's events and status changes."""
    return f"command:{command_id}"


def vehicle_topic(vin: str) -> str:
    """The bus topic of one vehicle: its connection changes (`VehicleStatus`) and the events
    and final statuses of all its commands (`CommandUpdate`)."""
    return f"vehicle:{vin}"
