"""The command state machine of one vehicle: sans-IO, driven by its actor.

Commands wait in submission order and at most `max_in_flight` run at once.
Vehicle events are correlated by command id and `seq`: a repeated `seq` is
ignored, a skipped one fails the command. Times come in as arguments (trio's
clock for deadlines, wall-clock UTC for the records), so tests drive it
without sockets or sleeps.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from hub.model import Command, CommandEventRecord, CommandStatus, EventKind, StatusChange


@dataclass(slots=True)
class _Running:
    command: Command
    deadline: float
    status: CommandStatus = CommandStatus.DISPATCHED
    next_seq: int = 0
    #: Set once an operator asked to cancel: (who asked, when the vehicle must have confirmed).
    cancel: tuple[str, float] | None = None

    @property
    def due(self) -> float:
        return self.deadline if self.cancel is None else min(self.deadline, self.cancel[1])


#: Ended commands remembered per vehicle, so their late events are told from bogus ones.
REMEMBERED_ENDED = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one vehicle event changes: records to store and publish, or why it was ignored.

    `violation` says why the event breaks the protocol (the link should end).
    """

    events: tuple[CommandEventRecord, ...] = ()
    changes: tuple[StatusChange, ...] = ()
    ignored: str | None = None
    violation: str | None = None


@dataclass(slots=True)
class CommandTracker:
    """Queued and running commands of one vehicle."""

    max_in_flight: int
    #: Few at a time; a list, since a deque costs 0.74 KiB per vehicle.
    queued: list[Command] = field(default_factory=list)
    running: dict[uuid.UUID, _Running] = field(default_factory=dict)
    ended: dict[uuid.UUID, None] = field(default_factory=dict)  # insertion-ordered set
    #: Cancels of stored commands this tracker did not hold (one still on its way, e.g.
    #: through a stream, or one nothing will deliver): they ended `cancelled` at once, and
    #: the command is dropped if it arrives later. Bounded like `ended`.
    early_cancels: dict[uuid.UUID, None] = field(default_factory=dict)

    def _end(self, command_id: uuid.UUID) -> None:
        del self.running[command_id]
        self._remember_ended(command_id)

    def _remember_ended(self, command_id: uuid.UUID) -> None:
        self.ended[command_id] = None
        if len(self.ended) > REMEMBERED_ENDED:
            del self.ended[next(iter(self.ended))]

    def submitter(self, command_id: uuid.UUID) -> str | None:
        """Who submitted `command_id`, if it is queued or running here (else None)."""
        entry = self.running.get(command_id)
        if entry is not None:
            return entry.command.submitted_by
        return next((c.submitted_by for c in self.queued if c.id == command_id), None)

    def submitters(self) -> dict[uuid.UUID, str]:
        """Who submitted each command queued or running here (a snapshot)."""
        held = {c.id: c.submitted_by for c in self.queued}
        held.update((cid, r.command.submitted_by) for cid, r in self.running.items())
        return held

    def holds(self, command_id: uuid.UUID) -> bool:
        """True while `command_id` is queued or running here."""
        return command_id in self.running or any(c.id == command_id for c in self.queued)

    def submit(self, command: Command) -> bool:
        """Queue `command` behind the ones already submitted.

        False (and dropped) when it was cancelled before it arrived: it has ended.
        """
        if command.id in self.early_cancels:
            del self.early_cancels[command.id]
            self._remember_ended(command.id)
            return False
        self.queued.append(command)
        return True

    def start_ready(self, now: float, at: datetime) -> list[tuple[Command, StatusChange]]:
        """Commands to send to the vehicle now, each with its `dispatched` change."""
        started = []
        while self.queued and len(self.running) < self.max_in_flight:
            command = self.queued.pop(0)
            self.running[command.id] = _Running(command, deadline=now + command.timeout_s)
            started.append((command, StatusChange(command.id, CommandStatus.DISPATCHED, at)))
        return started

    def on_event(self, event: CommandEventRecord) -> Outcome:
        """Correlate one vehicle event with its running command."""
        entry = self.running.get(event.command_id)
        if entry is None and event.command_id in self.ended:
            return Outcome(ignored=f"late event for command {event.command_id}, which has ended")
        if entry is None:
            never = f"event for command {event.command_id}, which this vehicle was never given"
            return Outcome(violation=never)
        if event.seq < entry.next_seq:
            return Outcome(ignored=f"repeated seq {event.seq} of command {event.command_id}")
        if event.seq > entry.next_seq:
            self._end(event.command_id)
            error = f"vehicle skipped from seq {entry.next_seq} to {event.seq}"
            failed = StatusChange(event.command_id, CommandStatus.FAILED, event.received_at, error)
            return Outcome(changes=(failed,))
        entry.next_seq += 1
        changes = []
        if entry.status is CommandStatus.DISPATCHED:
            entry.status = CommandStatus.RUNNING
            changes.append(StatusChange(event.command_id, CommandStatus.RUNNING, event.received_at))
        if event.final:
            self._end(event.command_id)
            changes.append(_final_change(event, entry.cancel))
        return Outcome(events=(event,), changes=tuple(changes))

    def cancel(
        self, command_id: uuid.UUID, by: str, now: float, at: datetime, grace_s: float
    ) -> tuple[list[StatusChange], bool]:
        """An operator's cancel: returns the changes to record, and whether to ask the vehicle.

        A queued command ends `cancelled` at once. A running one waits up to
        `grace_s` for the vehicle to confirm (a final event), then ends
        `cancelled` anyway. A command this tracker does not hold (still on its
        way, or one nothing will deliver: the caller knows it is stored and not
        final) ends `cancelled` at once, and is dropped should it arrive later;
        an ended or already ending one is left alone.
        """
        for queued in self.queued:
            if queued.id == command_id:
                self.queued.remove(queued)
                error = f"cancelled by {by} before it was sent"
                return [StatusChange(command_id, CommandStatus.CANCELLED, at, error)], False
        entry = self.running.get(command_id)
        if entry is None and command_id not in self.ended:
            self.early_cancels[command_id] = None
            if len(self.early_cancels) > REMEMBERED_ENDED:
                del self.early_cancels[next(iter(self.early_cancels))]
            error = f"cancelled by {by} before it was sent"
            return [StatusChange(command_id, CommandStatus.CANCELLED, at, error)], False
        if entry is None or entry.cancel is not None:
            return [], False
        entry.cancel = (by, now + grace_s)
        return [], True

    def next_deadline(self) -> float:
        """The earliest deadline (or cancel grace) of a running command; infinity when none."""
        return min((r.due for r in self.running.values()), default=math.inf)

    def expire(self, now: float, at: datetime) -> list[StatusChange]:
        """End running commands past their deadline (`timed_out`) or cancel grace (`cancelled`)."""
        expired = [r for r in self.running.values() if r.due <= now]
        for entry in expired:
            self._end(entry.command.id)
        return [_expiry(r, at) for r in expired]

    def interrupt_running(self, at: datetime, reason: str) -> list[StatusChange]:
        """End every running command as `interrupted` (its link went down)."""
        changes = [StatusChange(cid, CommandStatus.INTERRUPTED, at, reason) for cid in self.running]
        for command_id in list(self.running):
            self._end(command_id)
        return changes

    def interrupt_all(self, at: datetime, reason: str) -> list[StatusChange]:
        """End running and queued commands as `interrupted` (the actor is stopping).

        Queued commands that may wait for the vehicle (`expires_at`) are left
        pending instead: they are delivered when it reconnects, or expire.
        """
        changes = self.interrupt_running(at, reason)
        changes += [
            StatusChange(c.id, CommandStatus.INTERRUPTED, at, reason)
            for c in self.queued
            if c.expires_at is None
        ]
        self.queued.clear()
        return changes


def _expiry(entry: _Running, at: datetime) -> StatusChange:
    if entry.cancel is not None and entry.cancel[1] <= entry.deadline:
        by = entry.cancel[0]
        error = f"cancelled by {by}; the vehicle did not confirm in time"
        return StatusChange(entry.command.id, CommandStatus.CANCELLED, at, error)
    error = f"no final event within {entry.command.timeout_s:g} s"
    return StatusChange(entry.command.id, CommandStatus.TIMED_OUT, at, error)


def _final_change(event: CommandEventRecord, cancel: tuple[str, float] | None) -> StatusChange:
    if event.kind is not EventKind.ERROR:
        return StatusChange(event.command_id, CommandStatus.SUCCEEDED, event.received_at)
    if cancel is not None:  # the vehicle confirms the cancel with its final error
        error = f"cancelled by {cancel[0]}"
        return StatusChange(event.command_id, CommandStatus.CANCELLED, event.received_at, error)
    message = event.body.get("message") if isinstance(event.body, dict) else None
    error = str(message) if message else f"vehicle reported status {event.status}"
    return StatusChange(event.command_id, CommandStatus.FAILED, event.received_at, error)
