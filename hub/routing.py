"""Scale-out: route commands to the node holding the vehicle, and clean up after dead nodes.

A node with Redis keeps a lease on each vehicle it holds (`RoutingLeases`,
also the hub's `VehicleLeases`). `Hub.submit` of a command for a vehicle
held by another live node stores it (group commit: the 202 still means
"committed") and appends it to that node's stream (`RoutingStreams`); one
for a vehicle held here goes through this node's own stream, behind what
other nodes routed here. Each node consumes its own stream (its own Redis
connection, since reads block) and hands each command to the local actor.
A `dispatch` entry carries the command itself, so the owner does not read
it back. Delivery is at least once, and a cancel, an expiry or another
node's end may come between the send and the receipt, so the owner still
checks, in one cheap statement, that the database has the command `pending`
(`RoutingStore.take_pending`, which also stamps this node when it takes a
routed command), and that it did not hand it to an actor lately
(`Dispatcher.dispatch_once`): a redelivered or ended command never runs. Every command
of a vehicle goes through its owner's actor, in stream order, so the
per-vehicle order and in-flight limit hold across nodes.

The janitor, on every node, finds nodes whose liveness key is gone (for
longer than `node_dead_after_s`): under a lock per dead node it re-routes
the work left in its stream to the vehicles' new owners, then ends its
active commands `interrupted` (idempotent in the database, audited,
published on the command and vehicle topics), then forgets it.

Storage and Redis are reached only through the ports of `hub.ports`; every
failure of theirs is a `StorageFailed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol

import structlog
import trio

from hub.batching import GroupCommitJournal
from hub.config import HubConfig
from hub.dispatching import Dispatcher
from hub.ending import end_command, publish_ends
from hub.errors import MailboxFull, StorageFailed, VehicleNotConnected
from hub.model import Command, CommandStatus, StreamEntry
from hub.ports import EventBus, RoutingLeases, RoutingStore, RoutingStreams
from hub.submission import Submissions

log = structlog.get_logger("hub.routing")


class RoutingHost(Protocol):
    """What `ClusterRouter` uses of the hub it routes for (`hub.node.Hub`)."""

    config: HubConfig
    dispatcher: Dispatcher
    journal: GroupCommitJournal
    submissions: Submissions

    def connection(self, vin: str) -> object | None: ...

    def drop_stale(self, vin: str, holder: str) -> bool: ...

    def cancel_here(
        self, command_id: uuid.UUID, vin: str, by: str, submitted_by: str | None = None
    ) -> bool: ...


#: How long one read of the node's stream waits for new entries.
READ_BLOCK_S = 2.0
#: Entries read (and acknowledged) at once.
READ_COUNT = 100
#: After a failed read or handling: wait, then read the unacknowledged entries again.
RETRY_S = 1.0
#: Janitor rounds a dead node's pending commands wait for their vehicle to reconnect somewhere.
ORPHAN_ROUNDS = 20

#: Opens this node's own reader of the streams (reads block: a connection of its own).
OpenReader = Callable[[], AbstractAsyncContextManager[RoutingStreams]]


def node_lost_reason(node_id: str) -> str:
    """The error of a command whose node died while it ran."""
    return f"hub node {node_id} stopped answering while the command ran"


def orphan_reason(node_id: str) -> str:
    """The error of a pending command whose node died and whose vehicle no node took over."""
    return (
        f"hub node {node_id} stopped answering before the command reached the vehicle, "
        "and the vehicle did not connect to another node in time"
    )


class ClusterRouter:
    """Routing between nodes for one node; see the module docstring."""

    def __init__(
        self,
        hub: RoutingHost,
        store: RoutingStore,
        bus: EventBus,
        leases: RoutingLeases,
        streams: RoutingStreams,
        open_reader: OpenReader,
    ) -> None:
        self._hub = hub
        self._db = store
        self._open_reader = open_reader
        self._bus = bus
        self.leases = leases
        self._streams = streams
        self.node_id = hub.config.node_id
        self._config = hub.config
        self._orphan_rounds: dict[str, int] = {}  # dead node -> rounds its pending waited
        leases.on_lost = self._drop_stale
        leases.on_taken = self._tell_taken

    def _drop_stale(self, vin: str, holder: str) -> None:
        self._hub.drop_stale(vin, holder)

    async def _tell_taken(self, old: str, vin: str) -> None:
        """Tell node `old` that this node now holds `vin`: it ends its stale link at once."""
        await self._streams.send(old, "taken", vin, by=self.node_id)

    async def holder_elsewhere(self, vin: str) -> str | None:
        """The other live node holding `vin`, or None. Raises `StorageFailed` (Redis down)."""
        holder = await self.leases.holder(vin)
        return holder if holder != self.node_id else None

    async def submit(self, command: Command, node: str) -> None:
        """Record `command` (group commit), then pass it to `node`'s stream.

        Raises what `Submissions.record_new` raises, or `StorageFailed` when
        Redis failed after the commit: the command is then recorded `failed`
        with the reason. Cancellation: from the commit on, runs to its end.
        """
        submissions = self._hub.submissions
        with submissions.hold(command):  # stored, then passed on or ended, whatever the caller
            await submissions.record_new(command)
            try:
                await self._streams.send(
                    node, "dispatch", command.vin, by=self.node_id, command=command
                )
            except StorageFailed as exc:
                error = f"the command could not be passed to hub node {node}: {exc}"
                await self._end(command.id, CommandStatus.FAILED, error, command)
                raise
        log.debug("command.routed", command_id=str(command.id), node=node)

    async def submit_here(self, command: Command) -> None:
        """Record `command` for a vehicle this node holds, then queue it on this node's
        own stream, behind what other nodes routed here before it: one submission order
        whichever node took each command. If Redis fails it goes to the actor directly.

        Raises what `Submissions.record_new` raises, or a `DispatchError` when
        the direct hand-over fails (recorded `failed`). Cancellation: from the
        commit on, runs to its end.
        """
        submissions = self._hub.submissions
        with submissions.hold(command):  # stored, then queued or ended, whatever the caller
            await submissions.record_new(command)
            try:
                await self._streams.send(self.node_id, "dispatch", command.vin, command=command)
                return
            except StorageFailed as exc:
                log.info("command.dispatched_directly", command_id=str(command.id), reason=str(exc))
            await submissions.hand_over(command, once=True)

    async def cancel(self, command_id: uuid.UUID, vin: str, by: str, node: str) -> None:
        """Pass a cancel request to `node`'s stream. Raises `StorageFailed`."""
        await self._streams.send(node, "cancel", vin, command_id, by)

    async def run(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Consume this node's stream and run the janitor until the scope it starts with
        (`task_status.started`) is cancelled."""
        with trio.CancelScope() as scope:
            async with self._open_reader() as reader, trio.open_nursery() as nursery:
                nursery.start_soon(self._consume, reader)
                nursery.start_soon(self._janitor, reader)
                task_status.started(scope)

    async def _consume(self, reader: RoutingStreams) -> None:
        pending = True  # first the entries read before a restart but never acknowledged
        failing = False
        while True:
            try:
                block_ms = None if pending else int(READ_BLOCK_S * 1000)
                entries = await reader.read(
                    self.node_id, self.node_id, pending=pending, count=READ_COUNT, block_ms=block_ms
                )
                if pending and not entries:
                    pending = False
                    continue
                await self.handle(self.node_id, entries, reader)
                if failing:
                    log.info("routing.restored")
                failing = False
            except StorageFailed as exc:
                if not failing:  # once per outage, not once per retry
                    log.warning("routing.failed", reason=str(exc))
                failing, pending = True, True
                await trio.sleep(RETRY_S)

    async def handle(
        self, stream_of: str, entries: Sequence[StreamEntry], reader: RoutingStreams
    ) -> None:
        """Handle `entries` of `stream_of`'s stream in order, acknowledging those handled."""
        done: list[str] = []
        try:
            for entry in entries:
                await self._handle_one(entry, stream_of)
                done.append(entry.entry_id)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await reader.ack(stream_of, done)
                except StorageFailed as exc:  # redelivered later: dispatch_once drops them
                    log.warning("routing.ack_failed", reason=str(exc))

    async def _handle_one(self, entry: StreamEntry, stream_of: str) -> None:
        match entry.kind:
            case "dispatch" if entry.command_id is not None:
                # Sent by another node (`by`), or left in a dead node's stream: the
                # command may carry another node's id, so the taker stamps its own.
                stamp = bool(entry.by) or stream_of != self.node_id
                command = entry.command or await self._db.get_command(entry.command_id)
                if command is not None:  # None: an entry without its command, unknown here
                    await self._dispatch(command, stamp=stamp)
            case "cancel" if entry.command_id is not None:
                await self._cancel(entry.command_id, entry.vin, entry.by)
            case "taken" if stream_of == self.node_id:
                holder = await self.holder_elsewhere(entry.vin)
                if holder is not None:
                    self._hub.drop_stale(entry.vin, holder)
            case _:
                log.debug("routing.entry_skipped", kind=entry.kind, entry=entry.entry_id)

    async def _dispatch(self, command: Command, *, stamp: bool) -> None:
        connected = self._hub.connection(command.vin) is not None
        # Stamp this node first if its actor takes it: if it dies with the command queued
        # in the actor, the janitors find it by node and hand it to the vehicle's next holder.
        taker = self.node_id if stamp and connected else None
        if not await self._db.take_pending(command.id, taker):
            self._hub.dispatcher.duplicate(command.id)  # handed over already, or ended
            return
        if connected:
            try:
                self._hub.dispatcher.dispatch_once(command)
                return
            except MailboxFull as exc:
                await self._end(command.id, CommandStatus.FAILED, str(exc), command)
                return
            except VehicleNotConnected:
                pass
        holder = await self.holder_elsewhere(command.vin)
        if holder is not None:  # the vehicle moved on: follow it
            await self._streams.send(
                holder, "dispatch", command.vin, by=self.node_id, command=command
            )
        elif command.expires_at is None:
            error = f"vehicle {command.vin} disconnected before the command reached it"
            await self._end(command.id, CommandStatus.FAILED, error, command)
        # else: it waits, durably, for the vehicle's next connection (or expires)

    async def _cancel(self, command_id: uuid.UUID, vin: str, by: str) -> None:
        row = await self._db.get_command(command_id)
        try:
            if self._hub.cancel_here(command_id, vin, by, row.submitted_by if row else None):
                return
        except MailboxFull:
            log.warning("routing.cancel_busy", command_id=str(command_id), vin=vin)
        holder = await self.holder_elsewhere(vin)
        if holder is not None:
            await self._streams.send(holder, "cancel", vin, command_id, by)
        else:  # no actor holds it anywhere: nothing can still run it
            cancelled = f"cancelled by {by}"
            await self._end(command_id, CommandStatus.CANCELLED, cancelled, row)

    async def _end(
        self,
        command_id: uuid.UUID,
        status: CommandStatus,
        error: str,
        command: Command | None,
    ) -> None:
        """Record and publish an outcome the router decides (on the command's topic and,
        when the command is known, as a `CommandUpdate` on its vehicle's topic)."""
        await end_command(
            self._hub.journal, self._bus, command_id, status, error,
            vin=command.vin if command is not None else None,
            submitted_by=command.submitted_by if command is not None else None,
        )  # fmt: skip

    async def _janitor(self, reader: RoutingStreams) -> None:
        missing_since: dict[str, float] = {}
        failing = False
        while True:
            await trio.sleep(self._config.janitor_interval_s)
            try:
                await self._sweep(reader, missing_since)
                failing = False
            except StorageFailed as exc:
                # Redis was unreachable for us too: start counting again once it answers.
                missing_since.clear()
                if not failing:
                    log.warning("janitor.failed", reason=str(exc))
                failing = True

    async def _sweep(self, reader: RoutingStreams, missing_since: dict[str, float]) -> None:
        """Clean up after every node missing for longer than `node_dead_after_s`."""
        candidates = (await self._db.active_nodes()) | (await self.leases.known_nodes())
        candidates.discard(self.node_id)
        alive = await self.leases.nodes_alive(candidates) if candidates else set()
        now = trio.current_time()
        for node in list(missing_since):
            if node in alive or node not in candidates:
                del missing_since[node]
        for node in sorted(candidates - alive):
            first = missing_since.setdefault(node, now)
            if now - first < self._config.node_dead_after_s:
                continue
            lock_s = max(30.0, 3 * self._config.janitor_interval_s)
            if await self.leases.lock_janitor(node, lock_s) and not (
                await self.leases.nodes_alive([node])  # it came back meanwhile
            ):
                if await self.clean_up(node, reader):
                    missing_since.pop(node, None)
                else:  # pending commands wait for their vehicle: try again next round
                    await self.leases.unlock_janitor(node)

    async def clean_up(self, dead: str, reader: RoutingStreams) -> bool:
        """Re-route `dead`'s undelivered work, interrupt the commands it dispatched, hand
        its pending ones to their vehicles' new holders, then forget it.

        Returns False while pending commands wait for their vehicle to connect to a
        live node (at most `ORPHAN_ROUNDS` calls; then they end `interrupted`).
        """
        consumer = f"janitor:{self.node_id}"
        rerouted = 0
        while True:
            entries = await reader.claim_pending(dead, consumer, READ_COUNT)
            entries += await reader.read(
                dead, consumer, pending=False, count=READ_COUNT, block_ms=None
            )
            if not entries:
                break
            await self.handle(dead, entries, reader)
            rerouted += len(entries)
        reason = node_lost_reason(dead)
        interrupted = await self._db.interrupt_node(dead, datetime.now(UTC), reason, pending=False)
        publish_ends(self._bus, interrupted)
        orphans = await self._deliver_pending(dead)
        if orphans:
            rounds = self._orphan_rounds[dead] = self._orphan_rounds.get(dead, 0) + 1
            if rounds < ORPHAN_ROUNDS:
                log.info("janitor.pending_waits", node=dead, pending=orphans, round=rounds)
                return False
            ended = await self._db.interrupt_node(dead, datetime.now(UTC), orphan_reason(dead))
            publish_ends(self._bus, ended)
            interrupted += ended
        self._orphan_rounds.pop(dead, None)
        await self.leases.forget_node(dead)
        log.warning(
            "janitor.node_cleaned_up", node=dead, interrupted=len(interrupted), rerouted=rerouted
        )
        return True

    async def _deliver_pending(self, dead: str) -> int:
        """Hand `dead`'s pending commands (oldest first) to their vehicles' live holders;
        returns how many have none yet. The holder's `_dispatch` runs each at most once."""
        pending = await self._db.pending_of_node(dead)
        if not pending:
            return 0
        holders = await self.leases.holders({command.vin for command in pending})
        orphans = 0
        for command in pending:
            holder = holders.get(command.vin)
            if holder == self.node_id:
                await self._dispatch(command, stamp=True)
            elif holder is not None and holder != dead:
                await self._streams.send(
                    holder, "dispatch", command.vin, by=self.node_id, command=command
                )
            else:
                orphans += 1
        return orphans
