"""One vehicle's actor: owns its link, its mailbox and its commands.

Everything about a vehicle happens in this one trio task, so its state needs
no locks. The gRPC handler feeds it `FromVehicle` messages and tells it when
the stream ends (`LinkClosed`); the API hands it `Dispatch`es. What happens to
a command is recorded in the journal first and published on the bus second,
so a subscriber that reads the journal after subscribing misses nothing.
Its messages, handle and shared context are in `hub.mailbox`; what happens
to its commands is decided by `hub.commands` (sans-IO), to its link by
`hub.link_protocol`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import structlog
import trio

from hub.auditing import AuditBatcher
from hub.commands import CommandTracker, Outcome
from hub.ending import record_and_publish, record_and_publish_nowait
from hub.errors import GaveUp, WireError
from hub.link import Link
from hub.link_protocol import LinkVerdict
from hub.mailbox import (
    ActorContext,
    ActorMessage,
    Cancel,
    Dispatch,
    FromVehicle,
    LinkAttached,
    LinkClosed,
    VehicleActor,
)
from hub.model import (
    Command,
    CommandEventRecord,
    CommandStatus,
    Disconnect,
    DisconnectReason,
    StatusChange,
    VehicleStatus,
)
from hub.ports import (
    FLEET_TOPIC,
    AuditTrail,
    EventBus,
    vehicle_topic,
)
from hub.supervisor import Restart, RestartBudget, supervise
from hub.wire import cancel_command, command_request, event_record
from proto import VehicleMessage

log = structlog.get_logger("hub.actor")

#: How long an ending actor may spend recording what it interrupted.
FINAL_WRITE_TIMEOUT_S = 5.0


class _ActorLoop:
    def __init__(self, actor: VehicleActor, context: ActorContext) -> None:
        self.actor = actor
        self.notes = context.notes
        self.journal = context.journal
        self.bus = context.bus
        #: The commands this actor holds (with their submitters, for the vehicle topic).
        self.tracker = CommandTracker(context.config.max_in_flight_per_vehicle)
        self.cancel_grace_s = context.config.cancel_grace_s
        self.current: ActorMessage | None = None
        self.max_event_bytes = context.config.max_event_bytes

    async def run(self, mailbox: trio.MemoryReceiveChannel[ActorMessage]) -> Disconnect:
        """Serve messages until the current link ends; returns why it ended."""
        while True:
            message = await self._next_message(mailbox)
            if message is not None:
                self.current = message  # what a crash interrupted (see `lost_in_crash`)
                ended = await self._handle(message)
                self.current = None
                if ended is not None:
                    return ended
            now = trio.current_time()
            if now >= self.tracker.next_deadline():
                owners = self.tracker.submitters()  # before they end
                changes = self.tracker.expire(now, _utcnow())
                await self._record(changes=changes, owners=owners, cancel=True)

    async def _next_message(
        self, mailbox: trio.MemoryReceiveChannel[ActorMessage]
    ) -> ActorMessage | None:
        """The next message, or None when a command's deadline is due first.

        The link's liveness is not the actor's to time: `hub.silence` ends a
        silent link, and the actor learns it as `LinkClosed`.
        """
        try:
            return mailbox.receive_nowait()  # busy: no timer to set up
        except trio.WouldBlock:
            pass
        deadline = self.tracker.next_deadline()
        if deadline == math.inf:  # no command to time: no cancel scope either
            return await mailbox.receive()
        with trio.move_on_at(deadline):
            return await mailbox.receive()
        return None

    async def _handle(self, message: ActorMessage) -> Disconnect | None:
        match message:
            case Dispatch(command):
                self.take(command)
                self._start_ready()
            case Cancel(command_id, by, submitted_by):
                now, at = trio.current_time(), _utcnow()
                owner = self.tracker.submitter(command_id) or submitted_by
                changes, ask = self.tracker.cancel(command_id, by, now, at, self.cancel_grace_s)
                owners = {command_id: owner} if owner is not None else {}
                await self._record(changes=changes, owners=owners)
                if ask:
                    self.actor.link.send_nowait(cancel_command(command_id))
            case FromVehicle(link_id, vehicle_message) if link_id == self.actor.link.id:
                return await self._on_vehicle_message(vehicle_message)
            case LinkClosed(link_id, reason, detail) if link_id == self.actor.link.id:
                return Disconnect(reason, detail, _utcnow())
            case LinkAttached(link):
                old = self.actor.link
                old.close(
                    LinkVerdict.REPLACED,
                    "replaced by a newer connection of the same vehicle",
                    DisconnectReason.REPLACED,
                )
                _note_disconnected(
                    self.notes, old, DisconnectReason.REPLACED, "replaced by a newer connection"
                )
                self.actor.link = link
                self.actor.connected_since = _utcnow()
                why = "the vehicle reconnected while the command ran"
                owners = self.tracker.submitters()
                changes = self.tracker.interrupt_running(_utcnow(), why)
                await self._record(changes=changes, owners=owners)
                self._start_ready()
            case FromVehicle() | LinkClosed():
                pass  # from a link this vehicle has since replaced
        return None

    async def _on_vehicle_message(self, message: VehicleMessage) -> Disconnect | None:
        """Handle one message; a message that breaks the protocol ends the link."""
        match message.WhichOneof("kind"):
            case "event":
                try:
                    record = event_record(message.event, _utcnow(), self.max_event_bytes)
                except WireError as exc:
                    return self._protocol_error(str(exc))
                owner = self.tracker.submitter(record.command_id)  # before it may end
                outcome = self.tracker.on_event(record)
                if outcome.violation is not None:
                    return self._protocol_error(outcome.violation)
                await self._apply(outcome, {record.command_id: owner} if owner else {})
                self._start_ready()
            case other:
                return self._protocol_error(f"unexpected {other} message after Hello")
        return None

    def _protocol_error(self, detail: str) -> Disconnect:
        log.warning("vehicle.protocol_error", vin=self.actor.vin, detail=detail)
        self.actor.link.close(LinkVerdict.PROTOCOL_ERROR, detail, DisconnectReason.PROTOCOL_ERROR)
        return Disconnect(DisconnectReason.PROTOCOL_ERROR, detail, _utcnow())

    async def _apply(self, outcome: Outcome, owners: Mapping[uuid.UUID, str]) -> None:
        if outcome.ignored is not None:
            log.warning("vehicle.event_ignored", vin=self.actor.vin, reason=outcome.ignored)
            return
        await self._record(outcome.events, outcome.changes, owners=owners)

    def take(self, command: Command) -> None:
        """Queue `command` behind the ones already submitted (unless it was cancelled already)."""
        self.tracker.submit(command)

    def start_waiting(self) -> None:
        """Send the commands that waited for the vehicle (up to `max_in_flight_per_vehicle`)."""
        self._start_ready()

    def _start_ready(self) -> None:
        started = self.tracker.start_ready(trio.current_time(), _utcnow())
        if not started:
            return
        # Not waited for: the command's row is committed already (before its 202), and the
        # journal commits in order, so `dispatched` is stored before anything the vehicle answers.
        # Not final: not published on the vehicle topic, so no submitters needed.
        changes = [change for _, change in started]
        record_and_publish_nowait(self.journal, self.bus, changes, vin=self.actor.vin, owners={})
        for command, _ in started:
            self.actor.link.send_nowait(command_request(command))

    async def _record(
        self,
        events: Sequence[CommandEventRecord] = (),
        changes: Sequence[StatusChange] = (),
        *,
        owners: Mapping[uuid.UUID, str],
        cancel: bool = False,
    ) -> None:
        """Store, then publish (`owners`: the commands' submitters); `cancel` also tells the
        vehicle to stop those commands."""
        if not events and not changes:
            return
        await self.record_and_publish(events, changes, owners)
        if cancel:
            for change in changes:
                self.actor.link.send_nowait(cancel_command(change.command_id))

    async def record_and_publish(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        owners: Mapping[uuid.UUID, str],
    ) -> None:
        """Store, then publish on the commands' topics and on the vehicle's."""
        await record_and_publish(
            self.journal, self.bus, events, changes, vin=self.actor.vin, owners=owners
        )

    async def end_lost_in_crash(self, crash: Exception) -> None:
        """A command whose Dispatch a crash interrupted before the tracker took it ends `failed`."""
        message, self.current = self.current, None
        if not isinstance(message, Dispatch) or self.tracker.holds(message.command.id):
            return
        command = message.command
        error = f"the hub failed while taking the command: {crash!r}"
        failed = StatusChange(command.id, CommandStatus.FAILED, _utcnow(), error)
        await self.record_and_publish((), [failed], {command.id: command.submitted_by})

    async def interrupt_all(self, reason: str) -> None:
        """End every command held (running, queued) `interrupted`: the actor is stopping."""
        owners = self.tracker.submitters()
        await self.record_and_publish((), self.tracker.interrupt_all(_utcnow(), reason), owners)


async def run_actor(
    link: Link,
    context: ActorContext,
    waiting: Sequence[Command] = (),
    *,
    task_status: trio.TaskStatus[VehicleActor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the actor of `link.vin` until its link ends; registered meanwhile.

    On the way out, whether the link ended or the task was cancelled, every
    command it still held (running, queued, or waiting in its mailbox) is
    recorded as `interrupted`; the link is ended with `UNAVAILABLE` when the
    hub stops it.
    """
    # This task's own context: every log line of the actor carries its VIN.
    structlog.contextvars.bind_contextvars(vin=link.vin)
    send, receive = trio.open_memory_channel[ActorMessage](context.config.mailbox_size)
    actor = VehicleActor(link, send, _utcnow())
    loop = _ActorLoop(actor, context)
    for command in waiting:  # commands that waited for this vehicle, in submission order
        loop.take(command)
    context.registry.add(actor)
    _publish_status(context.bus, VehicleStatus(link.vin, True, actor.connected_since))
    ended: Disconnect | None = None
    try:
        task_status.started(actor)
        loop.start_waiting()
        ended = await _supervised(loop, receive, context)
    finally:
        context.registry.remove(actor)
        if context.leases is not None:
            context.leases.release(link.vin)
        context.last_seen.mark(link.vin, _utcnow())
        if ended is None:
            shutdown = DisconnectReason.HUB_SHUTDOWN
            ended = Disconnect(shutdown, "the hub stopped", _utcnow())
            actor.link.close(LinkVerdict.UNAVAILABLE, "the hub is shutting down", shutdown)
        else:
            actor.link.close(None, ended.detail, ended.reason)
        context.registry.disconnected(link.vin, ended)
        _note_disconnected(context.notes, actor.link, ended.reason, ended.detail)
        _publish_status(
            context.bus, VehicleStatus(link.vin, False, ended.at, ended.reason, ended.detail)
        )
        send.close()
        for message in _drain(receive):
            if isinstance(message, Dispatch):
                loop.take(message.command)
        try:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_WRITE_TIMEOUT_S):
                # The cause is audited before its effects are published.
                if ended.reason is DisconnectReason.PROTOCOL_ERROR:
                    await _audit(context.audit, link.vin, "vehicle.protocol_error", ended.detail)
                await loop.interrupt_all(f"link lost: {ended.detail}")
        finally:
            context.registry.retire()
        log.info("vehicle.disconnected", vin=link.vin, reason=ended.reason, detail=ended.detail)


def _note_disconnected(
    notes: AuditBatcher, link: Link, reason: DisconnectReason, detail: str
) -> None:
    """Note in the audit trail (soon, without waiting) that `link` ended, and why."""
    notes.note(
        "vehicle.disconnected",
        actor="hub",
        target=f"vehicle:{link.vin}",
        details={"session": link.session_id, "reason": reason.value, "detail": detail},
    )


def _publish_status(bus: EventBus, status: VehicleStatus) -> None:
    bus.publish(vehicle_topic(status.vin), status)
    bus.publish(FLEET_TOPIC, status)


async def _supervised(
    loop: _ActorLoop, mailbox: trio.MemoryReceiveChannel[ActorMessage], context: ActorContext
) -> Disconnect:
    """Run the actor's loop, restarting it (its queue and commands intact) when it crashes.

    Past the restart budget the link is ended with `INTERNAL` and the vehicle
    is marked `error`; the caller then interrupts its commands.
    """
    vin = loop.actor.vin
    config = context.config
    budget = RestartBudget(config.actor_max_restarts, config.actor_restart_window_s)

    async def restarted(crash: Exception) -> None:
        log.error("vehicle.actor_crashed", vin=vin, exc_info=crash)
        await loop.end_lost_in_crash(crash)
        await _audit(context.audit, vin, "vehicle.actor_restarted", repr(crash))

    try:
        return await supervise(
            lambda: loop.run(mailbox), policy=Restart.TRANSIENT, budget=budget, on_restart=restarted
        )
    except GaveUp as exc:
        log.error("vehicle.actor_failed", vin=vin, exc_info=exc)
        assert isinstance(exc.__cause__, Exception)
        await loop.end_lost_in_crash(exc.__cause__)
        detail = f"the hub failed to serve this vehicle: {exc}"
        loop.actor.link.close(LinkVerdict.INTERNAL, detail, DisconnectReason.ERROR)
        await _audit(context.audit, vin, "vehicle.actor_failed", detail)
        return Disconnect(DisconnectReason.ERROR, detail, _utcnow())


async def _audit(audit: AuditTrail, vin: str, action: str, detail: str) -> None:
    try:
        await audit.append_audit(
            actor=f"vehicle:{vin}",
            action=action,
            target=f"vehicle:{vin}",
            details={"detail": detail},
        )
    except Exception:
        log.exception("audit.write_failed", vin=vin, action=action)


def _drain(receive: trio.MemoryReceiveChannel[ActorMessage]) -> list[ActorMessage]:
    messages = []
    with receive:
        while True:
            try:
                messages.append(receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return messages


def _utcnow() -> datetime:
    return datetime.now(UTC)
