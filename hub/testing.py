"""In-memory stand-ins for the hub's ports and a vehicle's link, for tests of the hub alone.

Integration tests use the real storage and real gRPC; these let the actor and
gateway be tested with nothing else running. `command(vin)` builds the command
such tests hand to the hub; `connect_memory_link` attaches a vehicle with no
gRPC in between (`MemoryLink`), whose `wait_*` hooks let a test await what the
hub does instead of polling for it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import trio

from hub.auditing import AuditNote
from hub.bridge import run_asyncio
from hub.bus import InProcessBus
from hub.catalog import build_request
from hub.config import HubConfig
from hub.credentials import hash_vehicle_token
from hub.link import Link, LinkEnd, new_link
from hub.mailbox import ActorMessage, FromVehicle, LinkClosed
from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    DisconnectReason,
    StatusChange,
    VehicleCredentials,
    VehicleStatus,
)
from hub.node import Hub
from hub.opening import open_hub
from hub.ports import vehicle_topic
from proto import CommandEvent, Hello, HubMessage, VehicleMessage

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

    def add(self, vin: str, token: str, *, enabled: bool = True, waiting: bool = True) -> None:
        """Register `vin` with `token`; `waiting`: what its lookups say of waiting commands."""
        self.vehicles[vin] = VehicleCredentials(vin, hash_vehicle_token(token), enabled, waiting)

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
        self._recorded = trio.Event()

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
        self._recorded.set()
        self._recorded = trio.Event()

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
        await self.record((), changes)
        return [
            (c.vin, CommandUpdate(c.submitted_by, change))
            for c, change in zip(due, changes, strict=True)
        ]

    async def wait_status(self, command_id: object, status: CommandStatus) -> None:
        """Return once `status` is the last status recorded for `command_id`."""
        while self.status_of(command_id) is not status:
            await self._recorded.wait()

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


class MemoryLink:
    """One vehicle's link to a hub with no gRPC in between: the test speaks for the vehicle.

    It is admitted as the gateway admits one (token, `Hello`, `Admission.attach`),
    what it sends passes the link's protocol as in the gateway (`Link.received`),
    and what the hub sends lands in `received`. Open it with `connect_memory_link`.
    """

    def __init__(self, hub: Hub, link: Link, inbox: trio.MemorySendChannel[ActorMessage]) -> None:
        self.hub = hub
        self.link = link
        #: What the hub sent, in order (the `Welcome` first).
        self.received: list[HubMessage] = []
        #: How the hub ended the link, once it has.
        self.ended: LinkEnd | None = None
        #: The hub's `VehicleStatus` saying the vehicle went offline, once published.
        self.offline: VehicleStatus | None = None
        self._inbox = inbox
        self._hung_up = False
        self._changed = trio.Event()

    @property
    def command_ids(self) -> list[str]:
        """The ids of the commands the hub sent, in order."""
        return [m.command.command_id for m in self.received if m.WhichOneof("kind") == "command"]

    async def send(self, message: VehicleMessage) -> None:
        """Send `message` to the hub; waits while the actor's mailbox is full."""
        if self.link.received(message, trio.current_time()) is not None:
            await self._inbox.send(FromVehicle(self.link.id, message))
        elif (end := self.link.ended) is not None:  # a flood: as the gateway, tell the actor
            self._hang_up(end.reason, end.message)

    async def answer(self, command_id: str, body: bytes = b"{}", *, seq: int = 0) -> None:
        """Send the final, successful (200) result of `command_id` as its event `seq`."""
        kind = CommandEvent.Kind.RESULT
        event = CommandEvent(command_id=command_id, seq=seq, kind=kind, status=200, body=body)
        event.final = True
        await self.send(VehicleMessage(event=event))

    def break_link(self) -> None:
        """Lose the connection, as a broken network would: the actor learns it at once."""
        self._hang_up(DisconnectReason.CONNECTION_LOST, "the connection was lost")

    def close(self) -> None:
        """End the stream as the vehicle does when it goes away cleanly."""
        self._hang_up(DisconnectReason.CLOSED_BY_VEHICLE, "the vehicle closed the stream")

    def _hang_up(self, reason: DisconnectReason, detail: str) -> None:
        if not self._hung_up:
            self._hung_up = True
            self.hub.deliver(self._inbox, LinkClosed(self.link.id, reason, detail))
            self._inbox.close()

    async def wait_received(self, count: int) -> list[HubMessage]:
        """Return what the hub sent once it has sent `count` messages (the `Welcome` counts)."""
        while len(self.received) < count:
            await self._changed.wait()
        return self.received[:count]

    async def wait_ended(self) -> LinkEnd:
        """Return how the hub ended the link, once it has."""
        while self.ended is None:
            await self._changed.wait()
        return self.ended

    async def wait_offline(self) -> VehicleStatus:
        """Return once the hub has let the vehicle go and published it offline."""
        while self.offline is None:
            await self._changed.wait()
        return self.offline

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def pump(self) -> None:
        """Keep what the hub sends (the gateway's writer, here with no stream to write to)."""
        while self.ended is None:
            item = await run_asyncio(self.link.next_outgoing)
            if isinstance(item, LinkEnd):
                self.ended = item
            else:
                self.received.append(item)
            self._note()

    async def watch(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Note the hub's `VehicleStatus` saying this vehicle went offline."""
        async with self.hub.bus.subscribe(vehicle_topic(self.link.vin)) as updates:
            task_status.started()
            async for update in updates:
                if isinstance(update, VehicleStatus) and not update.connected:
                    self.offline = update
                    self._note()


@asynccontextmanager
async def connect_memory_link(hub: Hub, vin: str, token: str) -> AsyncIterator[MemoryLink]:
    """Admit `vin` with `token` to `hub` over a `MemoryLink`, welcomed; lost on exit.

    Raises `VehicleRefused` as the gateway would refuse the connection. Runs
    in trio hosted on asyncio (`hub.run_with_asyncio`), as the hub does: the
    link's outbox is read on the asyncio side.
    """
    candidates = await hub.admission.authenticate(token)
    link = new_link(vin, hub.config)
    async with trio.open_nursery() as nursery:
        inbox = await hub.admission.attach(Hello(vin=vin), candidates, link)
        memory = MemoryLink(hub, link, inbox)
        await nursery.start(memory.watch)
        nursery.start_soon(memory.pump)
        await memory.wait_received(1)  # the Welcome
        try:
            yield memory
        finally:
            memory.break_link()
            nursery.cancel_scope.cancel()
