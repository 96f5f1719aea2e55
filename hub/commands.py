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
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from hub.model import Command, CommandEventRecord, CommandStatus, EventKind, StatusChange


@dataclass(slots=True)
class _Running:
    command: Command
    deadline: float
    status: CommandStatus = CommandStatus.DISPATCHED
    next_seq: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one vehicle event changes: records to store and publish, or why it was ignored."""

    events: tuple[CommandEventRecord, ...] = ()
    changes: tuple[StatusChange, ...] = ()
    ignored: str | None = None


@dataclass(slots=True)
class CommandTracker:
    """Queued and running commands of one vehicle."""

    max_in_flight: int
    queued: deque[Command] = field(default_factory=deque)
    running: dict[uuid.UUID, _Running] = field(default_factory=dict)

    def submit(self, command: Command) -> None:
        """Queue `command` behind the ones already submitted."""
        self.queued.append(command)

    def start_ready(self, now: float, at: datetime) -> list[tuple[Command, StatusChange]]:
        """Commands to send to the vehicle now, each with its `dispatched` change."""
        started = []
        while self.queued and len(self.running) < self.max_in_flight:
            command = self.queued.popleft()
            self.running[command.id] = _Running(command, deadline=now + command.timeout_s)
            started.append((command, StatusChange(command.id, CommandStatus.DISPATCHED, at)))
        return started

    def on_event(self, event: CommandEventRecord) -> Outcome:
        """Correlate one vehicle event with its running command."""
        entry = self.running.get(event.command_id)
        if entry is None:
            return Outcome(ignored=f"event for command {event.command_id}, which is not running")
        if event.seq < entry.next_seq:
            return Outcome(ignored=f"repeated seq {event.seq} of command {event.command_id}")
        if event.seq > entry.next_seq:
            del self.running[event.command_id]
            error = f"vehicle skipped from seq {entry.next_seq} to {event.seq}"
            failed = StatusChange(event.command_id, CommandStatus.FAILED, event.received_at, error)
            return Outcome(changes=(failed,))
        entry.next_seq += 1
        changes = []
        if entry.status is CommandStatus.DISPATCHED:
            entry.status = CommandStatus.RUNNING
            changes.append(StatusChange(event.command_id, CommandStatus.RUNNING, event.received_at))
        if event.final:
            del self.running[event.command_id]
            changes.append(_final_change(event))
        return Outcome(events=(event,), changes=tuple(changes))

    def next_deadline(self) -> float:
        """The earliest deadline of a running command (infinity when none runs)."""
        return min((r.deadline for r in self.running.values()), default=math.inf)

    def expire(self, now: float, at: datetime) -> list[StatusChange]:
        """End every running command whose deadline has passed as `timed_out`."""
        expired = [r for r in self.running.values() if r.deadline <= now]
        for entry in expired:
            del self.running[entry.command.id]
        return [
            StatusChange(
                r.command.id,
                CommandStatus.TIMED_OUT,
                at,
                f"no final event within {r.command.timeout_s:g} s",
            )
            for r in expired
        ]

    def interrupt_running(self, at: datetime, reason: str) -> list[StatusChange]:
        """End every running command as `interrupted` (its link went down)."""
        changes = [StatusChange(cid, CommandStatus.INTERRUPTED, at, reason) for cid in self.running]
        self.running.clear()
        return changes

    def interrupt_all(self, at: datetime, reason: str) -> list[StatusChange]:
        """End running and queued commands as `interrupted` (the actor is stopping)."""
        changes = self.interrupt_running(at, reason)
        changes += [StatusChange(c.id, CommandStatus.INTERRUPTED, at, reason) for c in self.queued]
        self.queued.clear()
        return changes


def _final_change(event: CommandEventRecord) -> StatusChange:
    if event.kind is not EventKind.ERROR:
        return StatusChange(event.command_id, CommandStatus.SUCCEEDED, event.received_at)
    message = event.body.get("message") if isinstance(event.body, dict) else None
    error = str(message) if message else f"vehicle reported status {event.status}"
    return StatusChange(event.command_id, CommandStatus.FAILED, event.received_at, error)
