"""In-memory stand-ins for the hub's ports, for tests of the hub without a database.

Integration tests use the real storage; these let the actor and gateway be
tested through real gRPC sockets with nothing else running. `command(vin)` builds
the command such tests hand to the hub.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from hub.auditing import AuditNote
from hub.bus import InProcessBus
from hub.catalog import build_request
from hub.config import HubConfig
from hub.credentials import hash_vehicle_token
from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    StatusChange,
    VehicleCredentials,
)
from hub.node import Hub
from hub.opening import open_hub

EXPIRED = CommandStatus.EXPIRED
#: The parameters of the command `command` builds.
READ_DTC: dict[str, JSON] = {"ecuAddress": "0x10"}


def command(
    vin: str,
    *,
    timeout_s: float = 30,
    submitted_by: str = "tester",
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Command:
    """A `ReadDTC` of ECU 0x10 for `vin`, submitted now, with a new id."""
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params=dict(READ_DTC),
        sovd=build_request("ReadDTC", READ_DTC),
        timeout_s=timeout_s,
        submitted_by=submitted_by,
        submitted_at=datetime.now(UTC),
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


class MemoryDirectory:
    """A `VehicleDirectory` holding vehicles in a dict."""

    def __init__(self) -> None:
        self.vehicles: dict[str, VehicleCredentials] = {}
        self.seen: dict[str, datetime] = {}

    def add(self, vin: str, token: str, *, enabled: bool = True) -> None:
        """Register `vin` with `token`."""
        self.vehicles[vin] = VehicleCredentials(vin, hash_vehicle_token(token), enabled)

    async def find_vehicles(self, vins: Collection[str]) -> dict[str, VehicleCredentials]:
        return {vin: self.vehicles[vin] for vin in vins if vin in self.vehicles}

    async def find_vehicles_by_token(
        self, token_hashes: Collection[str]
    ) -> list[VehicleCredentials]:
        return [v for v in self.vehicles.values() if v.token_hash in token_hashes]

    async def record_seen(self, seen: Mapping[str, datetime]) -> None:
        self.seen.update(seen)


class MemoryJournal:
    """A `CommandJournal` (and `CommandBacklog`) keeping commands, events and changes in lists."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.events: list[CommandEventRecord] = []
        self.changes: list[StatusChange] = []

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        self.commands.extend(commands)
        known = {(e.command_id, e.seq) for e in self.events}
        self.events.extend(e for e in events if (e.command_id, e.seq) not in known)
        self.changes.extend(changes)

    async def waiting_commands(self, vin: str) -> list[Command]:
        return [
            c
            for c in self.commands
            if c.vin == vin and c.expires_at is not None and self.status_of(c.id) is None
        ]

    async def expire_waiting(
        self, now: datetime, spare: Collection[str]
    ) -> list[tuple[str, CommandUpdate]]:
        due = [
            c
            for c in self.commands
            if c.expires_at is not None
            and c.expires_at <= now
            and c.vin not in spare
            and self.status_of(c.id) is None
        ]
        changes = [StatusChange(c.id, EXPIRED, now, "the vehicle stayed offline") for c in due]
        self.changes.extend(changes)
        return [
            (c.vin, CommandUpdate(c.submitted_by, change))
            for c, change in zip(due, changes, strict=True)
        ]

    def status_of(self, command_id: object) -> CommandStatus | None:
        """The last status recorded for `command_id`."""
        statuses = [c.status for c in self.changes if c.command_id == command_id]
        return statuses[-1] if statuses else None


class MemoryAudit:
    """An `AuditLog` keeping (actor, action, target, details) tuples in a list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, dict[str, JSON]]] = []

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        self.events.append((actor, action, target, details or {}))

    async def append_audits(self, notes: Sequence[AuditNote]) -> None:
        self.events.extend((n.actor, n.action, n.target, n.details) for n in notes)


def open_memory_hub(
    config: HubConfig,
    directory: MemoryDirectory,
    journal: MemoryJournal,
    *,
    audit: MemoryAudit,
    bus: InProcessBus,
) -> AbstractAsyncContextManager[Hub]:
    """`open_hub` over the in-memory ports (`journal` is the backlog too), for hub tests."""
    return open_hub(
        config, directory=directory, journal=journal, backlog=journal, audit=audit, bus=bus
    )
