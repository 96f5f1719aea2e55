"""The commands this node's actors ran lately, with their events, as they were published.

A WebSocket subscribe for a command replays its stored events, then follows
the live ones. For a command an actor of this node runs (or ran lately) the
replay needs no database read: `RecentCommands` keeps each command handed to
a local actor (`Dispatcher.dispatch`) and, through the bus it wraps
(`RememberingBus`), every event and status change published on its topic.
Those are published once committed (`hub.ending`; a write that failed for
another reason than an outage is published all the same, as live subscribers
see it), so what it holds is what the database holds, and a subscriber that
subscribes and then reads it,
with no checkpoint in between, misses nothing and sees nothing twice.

A command it does not know (run by another node, waiting for its vehicle,
ended before this process started, or pushed out by newer ones past
`capacity`) is read from the database, as before. An entry is dropped when
an event arrives out of order, since it then no longer holds every event.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import trio

from hub.model import Command, CommandEventRecord, CommandStatus, StatusChange
from hub.ports import BusMessage, EventBus

__all__ = ["BusWatcher", "RecentCommands", "RememberingBus"]


class _Entry:
    __slots__ = ("command", "events")

    def __init__(self, command: Command) -> None:
        self.command = command
        self.events: list[CommandEventRecord] = []


class RecentCommands:
    """The last `capacity` commands handed to this node's actors; see the module docstring."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def dispatched(self, command: Command) -> None:
        """Remember `command`, just handed to a local actor (no events yet)."""
        if self._capacity == 0 or command.id in self._entries:
            return
        self._entries[command.id] = _Entry(command)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def observe(self, message: BusMessage) -> None:
        """Note a committed event or status change of a command held here, as it is published."""
        if isinstance(message, CommandEventRecord):
            entry = self._entries.get(message.command_id)
            if entry is not None:
                if message.seq == len(entry.events):
                    entry.events.append(message)
                else:  # not every event passed here: the database knows better
                    del self._entries[message.command_id]
        elif isinstance(message, StatusChange):
            entry = self._entries.get(message.command_id)
            if entry is not None and not entry.command.status.is_final:
                entry.command = _moved(entry.command, message)

    def get(
        self, command_id: uuid.UUID, from_seq: int = 0
    ) -> tuple[Command, list[CommandEventRecord]] | None:
        """The command as stored now and its events from `from_seq`; None if not held here."""
        entry = self._entries.get(command_id)
        if entry is None:
            return None
        return entry.command, entry.events[from_seq:]


def _moved(command: Command, change: StatusChange) -> Command:
    """`command` after `change`, as storage applies it (see `storage.command_changes`)."""
    if change.status.is_final:
        return dataclasses.replace(
            command, status=change.status, finished_at=change.at, error=change.error
        )
    if change.status is CommandStatus.RUNNING:
        started = command.started_at or change.at
        return dataclasses.replace(command, status=change.status, started_at=started)
    return dataclasses.replace(command, status=change.status)


class BusWatcher(Protocol):
    """Is shown every message published on the hub's bus (`RememberingBus`)."""

    def observe(self, message: BusMessage) -> None: ...


class RememberingBus:
    """An `EventBus` that shows its `watchers` everything published, then publishes it on `bus`."""

    def __init__(self, bus: EventBus, *watchers: BusWatcher) -> None:
        self.inner = bus
        self._watchers = watchers

    def publish(self, topic: str, message: BusMessage) -> None:
        for watcher in self._watchers:
            watcher.observe(message)
        self.inner.publish(topic, message)

    def subscribe(
        self, topic: str
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[BusMessage]]:
        return self.inner.subscribe(topic)
