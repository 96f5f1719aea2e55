"""Handing messages to this node's actors: their mailboxes' room, and each dispatch once.

`Dispatcher` (`Hub.dispatcher`) is the one place that puts a message in an
actor's mailbox (`send`), that tells a full mailbox (`MailboxFull`, also
before a command is committed: `check_room`), and that remembers the
commands handed to an actor lately, so a command that arrives again (a
stream entry redelivered, a command found no longer pending) is dropped and
counted once, in `duplicates`, whoever notices it.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Protocol

import structlog
import trio

from hub.errors import MailboxFull, VehicleNotConnected
from hub.mailbox import ActorMessage, Dispatch, VehicleActor
from hub.model import Command
from hub.registry import Registry

log = structlog.get_logger("hub.dispatching")


class DispatchWatcher(Protocol):
    """Is told of every command handed to an actor (`hub.recent`, `hub.load`)."""

    def dispatched(self, command: Command) -> None: ...


#: How many dispatched command ids a node remembers, so a redelivered one is not run twice.
REMEMBERED_DISPATCHES = 65536


class Dispatcher:
    """This node's hand-over of messages to its actors; see the module docstring."""

    def __init__(
        self, actors: Registry[VehicleActor], mailbox_size: int, *watchers: DispatchWatcher
    ) -> None:
        self._actors = actors
        self._mailbox_size = mailbox_size
        self._watchers = watchers
        # Command ids handed to an actor lately: a redelivered one is dropped, not run twice.
        self._dispatched: OrderedDict[uuid.UUID, None] = OrderedDict()
        #: Commands dropped because they were handed over already (or had ended).
        self.duplicates = 0

    def check_room(self, vin: str) -> None:
        """Raise `MailboxFull` if `vin`'s actor has a full mailbox now (no actor: no-op)."""
        actor = self._actors.get(vin)
        if actor is not None and actor.mailbox.statistics().current_buffer_used >= (
            self._mailbox_size
        ):
            raise self._full(vin)

    def dispatch(self, command: Command) -> None:
        """Hand `command` to its vehicle's actor now, remember it, and tell the `watchers`.

        Raises `VehicleNotConnected` when the vehicle has no actor here and
        `MailboxFull` when its mailbox is full.
        """
        if not self.send(command.vin, Dispatch(command)):
            raise VehicleNotConnected(f"vehicle {command.vin} is not connected")
        self.remember(command.id)
        for watcher in self._watchers:
            watcher.dispatched(command)

    def dispatch_once(self, command: Command) -> bool:
        """`dispatch`, unless `command` was handed to an actor lately (then counted, False)."""
        if command.id in self._dispatched:
            self.duplicate(command.id, command.vin)
            return False
        self.dispatch(command)
        return True

    def duplicate(self, command_id: uuid.UUID, vin: str | None = None) -> None:
        """Count a command that arrived again and was dropped (handed over already, or ended)."""
        self.duplicates += 1
        log.info("command.duplicate_dropped", command_id=str(command_id), vin=vin)

    def remember(self, command_id: uuid.UUID) -> None:
        """Note that `command_id` is with an actor (bounded by `REMEMBERED_DISPATCHES`)."""
        self._dispatched[command_id] = None
        if len(self._dispatched) > REMEMBERED_DISPATCHES:
            self._dispatched.popitem(last=False)

    def dispatched_lately(self, command_id: uuid.UUID) -> bool:
        """True if this node handed `command_id` to an actor (among its last dispatches)."""
        return command_id in self._dispatched

    def send(self, vin: str, message: ActorMessage) -> bool:
        """Put `message` in `vin`'s mailbox now; False without an actor; `MailboxFull` if full."""
        actor = self._actors.get(vin)
        if actor is None:
            return False
        try:
            actor.mailbox.send_nowait(message)
        except trio.WouldBlock:
            raise self._full(vin) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def _full(self, vin: str) -> MailboxFull:
        return MailboxFull(
            f"vehicle {vin} has {self._mailbox_size} messages waiting (mailbox_size); retry later"
        )
