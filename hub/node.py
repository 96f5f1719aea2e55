"""One hub node: its vehicles' actors, and the ways in (submit, cancel, admission).

`Hub` composes the parts a node has: the registry of actors, the
`Dispatcher` into their mailboxes, `Admission` of vehicle links,
`Submissions`, the group-commit journal and the batched writers, and, with
scale-out, the `ClusterRouter`. `hub.opening.open_hub` starts and stops it.
"""

from __future__ import annotations

import uuid
from contextlib import suppress

import structlog
import trio

from hub.actor import run_actor
from hub.admission import Admission
from hub.auditing import AuditBatcher, AuditLog
from hub.batching import CredentialLookup, GroupCommitJournal, LastSeen
from hub.config import HubConfig
from hub.dispatching import Dispatcher
from hub.errors import LinkVerdict, RoutingFailed, StorageFailed
from hub.link import Link
from hub.listener import ConnectionStatistics
from hub.load import OpenCommands
from hub.mailbox import ActorContext, ActorMessage, Cancel, VehicleActor
from hub.model import (
    Command,
    CommandStatus,
    Disconnect,
    DisconnectReason,
)
from hub.ports import (
    CommandBacklog,
    CommandJournal,
    EventBus,
    Pingable,
    RoutingLeases,
    RoutingStore,
    RoutingStreams,
    VehicleDirectory,
    VehicleLeases,
    command_topic,
)
from hub.recent import RecentCommands, RememberingBus
from hub.refusals import RefusalTally
from hub.registry import Registry
from hub.routing import ClusterRouter, OpenReader
from hub.silence import watch_silence
from hub.snapshots import Connection, HubStatistics
from hub.submission import Submissions

log = structlog.get_logger("hub.node")


class Hub:
    """The actors of the vehicles connected to this node, and the way to reach them.

    Create it with `open_hub`. `dispatch` and `connection` are synchronous and
    never block, so API handlers call them directly.
    """

    def __init__(
        self,
        config: HubConfig,
        directory: VehicleDirectory,
        journal: CommandJournal,
        bus: EventBus,
        audit: AuditLog,
        backlog: CommandBacklog,
        leases: VehicleLeases | None = None,
    ) -> None:
        self.config = config
        self._audit = audit
        self._backlog = backlog
        #: Scale-out: the vehicles' leases shared with other nodes (None: this node runs alone).
        self.leases = leases
        #: The commands this node's actors ran lately, with their published events.
        self.recent = RecentCommands(config.recent_commands)
        #: Admission control: the commands this node's actors hold, in all and per submitter.
        self.open_commands = OpenCommands(
            config.max_open_commands, config.max_open_commands_per_user
        )
        bus = RememberingBus(bus, self.recent, self.open_commands)
        self.bus: EventBus = bus
        self.grpc_port = config.grpc_port
        #: The gateway's TCP connections: open, refused at a cap, timed out before admission.
        self.connections = ConnectionStatistics()
        self._nursery: trio.Nursery | None = None
        self._actors: Registry[VehicleActor] = Registry()
        #: The one way into the actors' mailboxes; remembers (and counts) dispatches.
        self.dispatcher = Dispatcher(
            self._actors, config.mailbox_size, self.recent, self.open_commands
        )
        self.last_seen = LastSeen(directory)
        self.credentials = CredentialLookup(directory)
        self.journal = GroupCommitJournal(
            journal,
            max_batch_records=config.journal_max_batch_records,
            max_wait_s=config.journal_max_wait_ms / 1000,
            buffer_records=config.journal_buffer_records,
            commit_timeout_s=config.journal_commit_timeout_s,
            retry_max_s=config.journal_retry_max_s,
            probe=journal.ping if isinstance(journal, Pingable) else None,
        )
        # Commands that lost records in an outage are marked (audited, and their end published).
        self.journal.audit = audit
        self.journal.on_marked = lambda change: bus.publish(
            command_topic(change.command_id), change
        )
        #: Vehicle connections, disconnections and refusals, written in batches.
        self.audit_notes = AuditBatcher(audit)
        #: Refused connections, audited as one row per source, vehicle and window.
        self.refusals = RefusalTally(self.audit_notes, config.refusal_audit_window_s)
        self._context = ActorContext(
            config, self.journal, bus, self._actors, self.last_seen, audit,
            self.audit_notes, leases,
        )  # fmt: skip
        # Held while an actor starts (and loads its waiting commands), while a command
        # is left waiting for an offline vehicle, and while waiting commands expire:
        # so a command is either handed to a starting actor or expired, never both.
        self._attach_lock = trio.Lock()
        #: Authenticating and attaching vehicle links (the gateway's way in).
        self.admission = Admission(
            actors=self._actors, dispatcher=self.dispatcher, attach_lock=self._attach_lock,
            backlog=backlog, leases=leases, journal=self.journal, credentials=self.credentials,
            last_seen=self.last_seen, notes=self.audit_notes, refusals=self.refusals,
            heartbeat_interval_s=config.heartbeat_interval_s, start_actor=self._start_actor,
        )  # fmt: skip
        #: Submitting and cancelling commands: a stored command reaches its actor or ends.
        self.submissions = Submissions(self, self._actors, self._attach_lock, self.journal, bus)
        #: Scale-out: routing between nodes (`route_through`; None: this node runs alone).
        self.router: ClusterRouter | None = None

    def route_through(
        self,
        store: RoutingStore,
        leases: RoutingLeases,
        streams: RoutingStreams,
        open_reader: OpenReader,
    ) -> ClusterRouter:
        """Route commands between nodes (scale-out); run the returned router's `run` task."""
        self.router = ClusterRouter(self, store, self.bus, leases, streams, open_reader)
        return self.router

    def connection(self, vin: str) -> Connection | None:
        """The vehicle's live link to this node, or None."""
        actor = self._actors.get(vin)
        if actor is None:
            return None
        return Connection(vin, actor.link.session_id, actor.connected_since)

    def connected_vins(self) -> frozenset[str]:
        """The VINs with a live link to this node now (a snapshot)."""
        return frozenset(actor.vin for actor in self._actors)

    async def submit(self, command: Command) -> None:
        """Record a new command (group commit) and get it to its vehicle: the one way in.

        The hub decides how it travels: to this node's actor (with Redis,
        through this node's stream, behind what other nodes routed here), to
        the node holding the vehicle (`hub.routing`), or, for a command with
        `expires_at` whose vehicle is connected nowhere, left pending: it is
        delivered when the vehicle connects, or ends `expired`.

        Returns once the command and its audit event are committed and it is
        on its way. `Overloaded` (too many unfinished commands here: `hub.load`),
        a vehicle that is not connected (`VehicleNotConnected`) or whose mailbox
        is full (`MailboxFull`): refused before anything is written; only if the
        last two change during the commit is the command recorded
        and then refused (or, if it may wait, left waiting). `RoutingFailed`:
        Redis failed (before anything was written, or after: then recorded
        `failed`). `JournalWriteFailed`: not recorded (or, if the commit's
        answer was lost, recorded `failed`). `IdempotencyKeyTaken`: its
        submitter's idempotency key was taken meanwhile (by another node);
        nothing was recorded or dispatched. Cancellation: from the commit on,
        runs to its end.
        """
        self.open_commands.admit(command.submitted_by)
        router = self.router
        if router is None:
            await self.submissions.submit(command)
        elif self.connection(command.vin) is not None:
            await router.submit_here(command)
        else:
            holder = await self._holder_elsewhere(command.vin)
            if holder is None:
                await self.submissions.submit(command)
                return
            try:
                await router.submit(command, holder)
            except StorageFailed as exc:
                raise RoutingFailed(
                    f"the command could not be passed to hub node {holder}: {exc}",
                    command.vin, holder, recorded=True,
                ) from exc  # fmt: skip

    async def cancel(
        self, command: Command, by: str, status: CommandStatus = CommandStatus.PENDING
    ) -> None:
        """Cancel a stored, unfinished command (`by`: who asks; `status`: its status now).

        The request is audited ("command.cancel_requested") first, so the trail
        shows who asked before what came of it. Then it is handed to the
        vehicle's actor, here or on the node holding it; if none holds it, it
        ends `cancelled` at once. The outcome is recorded, then published on
        the command's and the vehicle's topics. Raises `RoutingFailed` (before
        anything is written) when the node holding the vehicle cannot be found,
        `StorageFailed` when the request cannot be audited (nothing else done),
        `MailboxFull` when the actor is saturated.
        """
        router = self.router
        holder = None
        if router is not None and self.connection(command.vin) is None:
            holder = await self._holder_elsewhere(command.vin)
        await self._audit.append_audit(
            actor=by, action="command.cancel_requested", target=f"command:{command.id}",
            details={"vin": command.vin, "status": status.value},
        )  # fmt: skip
        if self.cancel_here(command.id, command.vin, by, command.submitted_by):
            return
        if router is not None and holder is not None:  # the node holding the vehicle
            try:
                await router.cancel(command.id, command.vin, by, holder)
            except StorageFailed as exc:
                raise RoutingFailed(str(exc), command.vin, holder, recorded=False) from exc
            return
        await self.submissions.cancel_unheld(command, by)  # no live actor holds it

    async def holder_elsewhere(self, vin: str) -> str | None:
        """Scale-out: the other live node holding `vin` (None: none, or this node runs alone).

        Raises `RoutingFailed` when Redis does not tell.
        """
        return await self._holder_elsewhere(vin)

    async def _holder_elsewhere(self, vin: str) -> str | None:
        if self.router is None:
            return None
        try:
            return await self.router.holder_elsewhere(vin)
        except StorageFailed as exc:
            raise RoutingFailed(str(exc), vin, None, recorded=False) from exc

    def revoke(self, vin: str, verdict: LinkVerdict, message: str) -> bool:
        """End `vin`'s live link (its credentials changed), telling `verdict` and `message`.

        False if the vehicle is not connected here.

        Its running commands end `interrupted`, as for any lost link.
        """
        actor = self._actors.get(vin)
        if actor is None:
            return False
        actor.link.close(verdict, message, DisconnectReason.REVOKED)
        return True

    def last_disconnect(self, vin: str) -> Disconnect | None:
        """How the vehicle's last link to this node ended (None if never, or connected now)."""
        return self._actors.last_disconnect(vin)

    def dispatch(self, command: Command) -> None:
        """Hand `command` to its vehicle's actor without waiting.

        Raises `VehicleNotConnected` when the vehicle has no link here and
        `MailboxFull` when its actor is saturated.
        """
        self.dispatcher.dispatch(command)

    def drop_stale(self, vin: str, holder: str) -> bool:
        """End `vin`'s link here: the vehicle is now held by node `holder`. False if none."""
        actor = self._actors.get(vin)
        if actor is None:
            return False
        log.info("vehicle.taken_over", vin=vin, node=holder)
        actor.link.close(
            LinkVerdict.REPLACED,
            f"replaced by a connection on node {holder}",
            DisconnectReason.REPLACED,
        )
        return True

    def cancel_here(
        self, command_id: uuid.UUID, vin: str, by: str, submitted_by: str | None = None
    ) -> bool:
        """Ask `vin`'s actor to cancel a stored, unfinished command; False without an actor here.

        Raises `MailboxFull` when the actor is saturated. The outcome (`cancelled`,
        or the command's own end if it finishes first) is recorded and published,
        at once when the actor does not hold the command (it is dropped if it
        comes later). For a command whose vehicle has no actor here:
        `Submissions.cancel_unheld`.
        """
        return self.dispatcher.send(vin, Cancel(command_id, by, submitted_by))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the actors, and the watch over their links' silence, until `shutdown` ends them."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(watch_silence, self._actors, self.config.heartbeat_interval_s)
            task_status.started()
            await trio.sleep_forever()

    @property
    def _actor_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the hub is not running: use open_hub()")
        return self._nursery

    async def _start_actor(self, link: Link, waiting: list[Command]) -> VehicleActor:
        actor: VehicleActor = await self._actor_nursery.start(
            run_actor, link, self._context, waiting
        )
        return actor

    async def expire_waiting(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every `expiry_sweep_s`, end commands whose vehicle stayed offline past their expiry."""
        await self.submissions.expire_waiting(self._backlog, task_status=task_status)

    def deliver(self, inbox: trio.MemorySendChannel[ActorMessage], message: ActorMessage) -> None:
        """Send `message` to an actor now, or as soon as its mailbox has room; never blocks."""
        try:
            inbox.send_nowait(message)
        except trio.WouldBlock:
            self._actor_nursery.start_soon(_send_later, inbox.clone(), message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the actor has ended: nothing left to tell it

    async def shutdown(self) -> None:
        """End every link with `UNAVAILABLE`; wait up to `shutdown_grace_s` for the actors."""
        self.admission.stopping = True
        self.refusals.flush()  # before the audit notes' last write
        for actor in self._actors:
            actor.link.close(
                LinkVerdict.UNAVAILABLE, "the hub is shutting down", DisconnectReason.HUB_SHUTDOWN
            )
        with trio.move_on_after(self.config.shutdown_grace_s):
            await self._actors.wait_empty()
        self._actor_nursery.cancel_scope.cancel()

    def statistics(self) -> HubStatistics:
        """Counters for health and metrics (journal: records written, in how many batches)."""
        connections = self.connections
        return HubStatistics(
            connected_vehicles=len(self._actors),
            journal_records=self.journal.records,
            journal_batches=self.journal.batches,
            journal_buffered_records=self.journal.buffered_records,
            journal_records_lost=self.journal.records_lost,
            duplicate_dispatches=self.dispatcher.duplicates,
            gateway_connections=connections.open,
            gateway_refused_total_cap=connections.refused_total_cap,
            gateway_refused_address_cap=connections.refused_address_cap,
            gateway_handshake_timeouts=connections.handshake_timeouts,
            gateway_accept_pauses=connections.accept_pauses,
        )

    def mailbox_depths(self) -> list[int]:
        """Messages waiting in each connected vehicle's mailbox now (for metrics; O(vehicles))."""
        return [actor.mailbox.statistics().current_buffer_used for actor in self._actors]


async def _send_later(inbox: trio.MemorySendChannel[ActorMessage], message: ActorMessage) -> None:
    with inbox, suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await inbox.send(message)
