"""One hub node: the registry of vehicle actors, admission of links, dispatch of commands.

`open_hub` starts the node (its actors' nursery and the gRPC gateway) and
stops it politely: every vehicle stream is ended with `UNAVAILABLE`, actors
get `shutdown_grace_s` to record what they interrupted, then are cancelled.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
import trio

from hub.actor import (
    ActorContext,
    ActorMessage,
    Cancel,
    Dispatch,
    LinkAttached,
    VehicleActor,
    run_actor,
)
from hub.auditing import AuditBatcher, AuditLog, storable, vehicle_target
from hub.batching import CredentialLookup, GroupCommitJournal, LastSeen
from hub.config import HubConfig
from hub.credentials import hash_vehicle_token, verify_vehicle_token
from hub.errors import (
    LinkVerdict,
    LookupFailed,
    MailboxFull,
    RoutingFailed,
    StorageFailed,
    VehicleNotConnected,
    VehicleRefused,
)
from hub.link import Link
from hub.link_protocol import admit, welcome
from hub.listener import ConnectionStatistics
from hub.model import (
    JSON,
    Command,
    CommandStatus,
    Disconnect,
    DisconnectReason,
    StoredCommand,
    VehicleCredentials,
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
from hub.refusals import RefusalTally
from hub.registry import Registry
from hub.routing import ClusterRouter, OpenReader
from hub.submission import Submissions, mailbox_full
from hub.untrusted import plausible_vin
from proto import Hello

log = structlog.get_logger("hub.node")

#: How many dispatched command ids a node remembers, so a redelivered one is not run twice.
REMEMBERED_DISPATCHES = 65536


@dataclass(frozen=True, slots=True)
class Connection:
    """A vehicle's live link to this node."""

    vin: str
    session_id: str
    since: datetime


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
        # Command ids handed to an actor lately: a redelivered one is dropped, not run twice.
        self._dispatched: OrderedDict[uuid.UUID, None] = OrderedDict()
        #: Routed commands dropped because they were handed over already (or had ended).
        self.duplicate_dispatches = 0
        self.bus = bus
        self.grpc_port = config.grpc_port
        #: The gateway's TCP connections: open, refused at a cap, timed out before admission.
        self.connections = ConnectionStatistics()
        self._nursery: trio.Nursery | None = None
        self._actors: Registry[VehicleActor] = Registry()
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
        self._disconnects: dict[str, Disconnect] = {}
        #: Vehicle connections, disconnections and refusals, written in batches.
        self.audit_notes = AuditBatcher(audit)
        #: Refused connections, audited as one row per source, vehicle and window.
        self.refusals = RefusalTally(self.audit_notes, config.refusal_audit_window_s)
        self._context = ActorContext(
            config, self.journal, bus, self._actors, self.last_seen, self._disconnects, audit,
            self.audit_notes, leases,
        )  # fmt: skip
        # Held while an actor starts (and loads its waiting commands), while a command
        # is left waiting for an offline vehicle, and while waiting commands expire:
        # so a command is either handed to a starting actor or expired, never both.
        self._attach_lock = trio.Lock()
        self._stopping = False
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
        on its way. A vehicle that is not connected (`VehicleNotConnected`) or
        whose mailbox is full (`MailboxFull`) is refused before anything is
        written; only if that changes during the commit is the command recorded
        and then refused (or, if it may wait, left waiting). `RoutingFailed`:
        Redis failed (before anything was written, or after: then recorded
        `failed`). `JournalWriteFailed`: not recorded (or, if the commit's
        answer was lost, recorded `failed`). `IdempotencyKeyTaken`: its
        submitter's idempotency key was taken meanwhile (by another node);
        nothing was recorded or dispatched. Cancellation: from the commit on,
        runs to its end.
        """
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
        self, command: StoredCommand, by: str, status: CommandStatus = CommandStatus.PENDING
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
        return None if vin in self._actors else self._disconnects.get(vin)

    def dispatch(self, command: Command) -> None:
        """Hand `command` to its vehicle's actor without waiting.

        Raises `VehicleNotConnected` when the vehicle has no link here and
        `MailboxFull` when its actor is saturated.
        """
        if not self._send(command.vin, Dispatch(command)):
            raise VehicleNotConnected(f"vehicle {command.vin} is not connected")
        self._remember(command.id)

    def dispatch_once(self, command: Command) -> bool:
        """`dispatch`, unless this node handed `command` to an actor lately (then False).

        For commands that arrive more than once (a stream entry redelivered).
        """
        if command.id in self._dispatched:
            self.duplicate_dispatches += 1
            log.info("command.duplicate_dropped", command_id=str(command.id), vin=command.vin)
            return False
        self.dispatch(command)
        return True

    def _remember(self, command_id: uuid.UUID) -> None:
        self._dispatched[command_id] = None
        if len(self._dispatched) > REMEMBERED_DISPATCHES:
            self._dispatched.popitem(last=False)

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
        return self._send(vin, Cancel(command_id, by, submitted_by))

    def dispatched_lately(self, command_id: uuid.UUID) -> bool:
        """True if this node handed `command_id` to an actor (among its last dispatches)."""
        return command_id in self._dispatched

    def _send(self, vin: str, message: ActorMessage) -> bool:
        """Put `message` in `vin`'s mailbox now; False without an actor; MailboxFull if full."""
        actor = self._actors.get(vin)
        if actor is None:
            return False
        try:
            actor.mailbox.send_nowait(message)
        except trio.WouldBlock:
            raise self._mailbox_full(vin) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def authenticate(self, token: str) -> list[VehicleCredentials]:
        """The vehicles `token` may be (found by its hash alone, before any message is read).

        Raises `VehicleRefused`: `LinkVerdict.UNAUTHENTICATED` when no registered
        vehicle has this token, `UNAVAILABLE` while the hub stops or cannot read
        its database. Which of them the connection is, its `Hello` says (`attach`).
        """
        if self._stopping:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, "the hub is shutting down")
        outage = self.journal.outage  # links already up stay up; new ones wait for the database
        if outage is not None:
            raise VehicleRefused(
                LinkVerdict.UNAVAILABLE,
                f"the hub cannot check credentials: its database does not answer; retry in "
                f"{outage.retry_after_s} s",
            )
        token_hash = hash_vehicle_token(token)
        try:
            candidates = await self.credentials.find(token_hash)
        except LookupFailed as exc:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, f"{exc}; retry later") from exc
        # The database found them by hash; compare again in constant time all the same.
        found = [c for c in candidates if verify_vehicle_token(token, c.token_hash)]
        if not found:
            raise VehicleRefused(
                LinkVerdict.UNAUTHENTICATED,
                "unknown vehicle token: no registered vehicle has it (never issued, or rotated "
                "since); send the vehicle's current token",
            )
        return found

    async def attach(
        self, hello: Hello, candidates: list[VehicleCredentials], link: Link
    ) -> trio.MemorySendChannel[ActorMessage]:
        """Admit a vehicle's new link; returns the mailbox its messages go to.

        `candidates` are what `authenticate` found for the connection's token.
        Raises `VehicleRefused` for a `Hello` whose VIN cannot be one, whose
        VIN the token is not for, or for a disabled vehicle (`link_protocol.admit`).
        A link of a VIN that is already connected replaces the old one; the actor
        keeps its identity.
        """
        if self._stopping:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, "the hub is shutting down")
        try:
            admit(hello, candidates)
        except VehicleRefused as exc:
            if plausible_vin(hello.vin):  # a VIN that cannot be one is not remembered
                self._refused(hello.vin, exc.message)
            raise
        link.send_nowait(welcome(link.session_id, self.config.heartbeat_interval_s))
        async with self._attach_lock:
            actor = self._actors.get(hello.vin)
            # After the previous actor's release (it releases as it leaves the registry), and
            # before waiting commands are loaded, so that other nodes' sweepers spare them.
            if self.leases is not None:
                self.leases.claim(hello.vin)
            try:
                if actor is None:
                    waiting = await self._backlog.waiting_commands(hello.vin)
                    for command in waiting:
                        self._remember(command.id)
                    actor = await self._start_actor(link, waiting)
                else:
                    await actor.mailbox.send(LinkAttached(link))
            except BaseException:
                if self.leases is not None and hello.vin not in self._actors:
                    self.leases.release(hello.vin)
                raise
            inbox = actor.mailbox.clone()
        self.last_seen.mark(hello.vin, datetime.now(UTC))
        log.info("vehicle.connected", vin=hello.vin, session=link.session_id)
        self.audit_notes.note(
            "vehicle.connected",
            actor=f"vehicle:{hello.vin}",
            target=f"vehicle:{hello.vin}",
            details={
                "session": link.session_id,
                "agent_version": storable(hello.agent_version, 100),
            },
        )
        return inbox

    def audit_refusal(self, address: str, vin: str | None, told: str, reason: str) -> None:
        """Count a refused link from `address` (claiming `vin`, if it said) for the audit trail.

        `told` is what the vehicle was told (the gateway's gRPC status name, e.g.
        `UNAUTHENTICATED`), counted per window in the row's `statuses`.

        Refusals are written as one row per source, vehicle and `refusal_audit_window_s`,
        with their count (`hub.refusals`); never blocks. `reason` must be bounded already.
        """
        details: dict[str, JSON] = {}
        target = "vehicle:?"
        if vin is not None:
            target, details = vehicle_target(vin)
        self.refusals.refused(address, target, told, storable(reason, 500), details)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the actors until `shutdown` (or cancellation) ends them."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    @property
    def _actor_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the hub is not running: use open_hub()")
        return self._nursery

    def _mailbox_full(self, vin: str) -> MailboxFull:
        return mailbox_full(vin, self.config.mailbox_size)

    def _refused(self, vin: str, detail: str) -> None:
        # Kept for registered vehicles only: unknown VINs must not grow our memory.
        if vin not in self._actors:
            self._disconnects[vin] = Disconnect(DisconnectReason.REFUSED, detail, datetime.now(UTC))

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
        self._stopping = True
        self.refusals.flush()  # before the audit notes' last write
        for actor in self._actors:
            actor.link.close(
                LinkVerdict.UNAVAILABLE, "the hub is shutting down", DisconnectReason.HUB_SHUTDOWN
            )
        with trio.move_on_after(self.config.shutdown_grace_s):
            await self._actors.wait_empty()
        self._actor_nursery.cancel_scope.cancel()

    def statistics(self) -> dict[str, int]:
        """Counters for health and metrics (journal: records written, in how many batches)."""
        return {
            "connected_vehicles": len(self._actors),
            "journal_records": self.journal.records,
            "journal_batches": self.journal.batches,
            "journal_buffered_records": self.journal.buffered_records,
            "journal_records_lost": self.journal.records_lost,
            "duplicate_dispatches": self.duplicate_dispatches,
            **self.connections.snapshot(),
        }

    def mailbox_depths(self) -> list[int]:
        """Messages waiting in each connected vehicle's mailbox now (for metrics; O(vehicles))."""
        return [actor.mailbox.statistics().current_buffer_used for actor in self._actors]


async def _send_later(inbox: trio.MemorySendChannel[ActorMessage], message: ActorMessage) -> None:
    with inbox, suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await inbox.send(message)


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

    `hub.grpc_port` is the bound port (useful with port 0). Must run inside
    `trio_asyncio.open_loop()`. Leaving the context shuts the node down
    gracefully, bounded by `shutdown_grace_s`.
    """
    from hub.gateway import serve_gateway  # the gateway needs Hub, defined above

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
