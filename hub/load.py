"""Admission control: a bound on the commands this node has taken on and not finished.

Above capacity a hub that keeps answering 202 only lets its queues grow: every
command, admitted or not, then waits longer. `OpenCommands` counts the
commands handed to this node's actors (`Dispatcher.dispatch`) until their
final status is published (it watches the bus, as `hub.recent` does), in all
and per submitter; `Hub.submit` asks `admit` first and a new command over
either bound (`max_open_commands`, `max_open_commands_per_user`) is refused
with `Overloaded` (503 with `Retry-After`) before anything is written. One
user's flood thus meets its own bound before the node's.

What is counted is this node's own work: a command it routes to the node
holding the vehicle is counted there, and a command waiting for an offline
vehicle (`ttl_s`) only once it is handed to the vehicle's actor. Concurrent
submissions are checked before their commits, so the bound may be passed by
as many as are being committed at once.
"""

from __future__ import annotations

import uuid
from collections import Counter

from hub.errors import Overloaded
from hub.model import Command, StatusChange
from hub.ports import BusMessage

__all__ = ["OpenCommands"]


class OpenCommands:
    """This node's unfinished commands, counted in all and per submitter (0: no bound)."""

    def __init__(self, max_total: int, max_per_user: int) -> None:
        self._max_total = max_total
        self._max_per_user = max_per_user
        self._submitters: dict[uuid.UUID, str] = {}
        self._per_user: Counter[str] = Counter()
        #: New commands refused so far.
        self.refused = 0

    def __len__(self) -> int:
        return len(self._submitters)

    def of(self, submitter: str) -> int:
        """How many of `submitter`'s commands are open here."""
        return self._per_user[submitter]

    def admit(self, submitter: str) -> None:
        """Raise `Overloaded` if a new command of `submitter` would pass a bound."""
        if self._max_per_user and self._per_user[submitter] >= self._max_per_user:
            self.refused += 1
            raise Overloaded(
                f"{submitter} has {self._per_user[submitter]} unfinished commands on this hub "
                f"node (max_open_commands_per_user); retry when some have ended"
            )
        if self._max_total and len(self._submitters) >= self._max_total:
            self.refused += 1
            raise Overloaded(
                f"this hub node has {len(self._submitters)} unfinished commands "
                "(max_open_commands); retry later or on another node"
            )

    def dispatched(self, command: Command) -> None:
        """Count `command`, just handed to a local actor."""
        if command.id not in self._submitters:
            self._submitters[command.id] = command.submitted_by
            self._per_user[command.submitted_by] += 1

    def observe(self, message: BusMessage) -> None:
        """Stop counting a command whose final status is being published."""
        if isinstance(message, StatusChange) and message.status.is_final:
            submitter = self._submitters.pop(message.command_id, None)
            if submitter is not None:
                self._per_user[submitter] -= 1
                if not self._per_user[submitter]:
                    del self._per_user[submitter]
