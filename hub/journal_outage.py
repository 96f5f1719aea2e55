"""What the group-commit journal keeps while its database does not answer.

During an outage (`hub.ports.StorageUnavailable`, or a commit that took
longer than `journal_commit_timeout_s`), `hub.batching.GroupCommitJournal`:

- refuses what needs a commit to answer (new commands: the API's 503
  `storage_unavailable` with `Retry-After`) at once, without queueing it;
- keeps the actors' records (events and status changes of running commands)
  in order in a buffer of at most `journal_buffer_records` records, releases
  the actor at once, and publishes them on the bus only once they are stored
  ("recorded before published" holds through the outage);
- retries with backoff (`RETRY_FIRST_S` doubling up to `journal_retry_max_s`);
  with nothing to write it probes the database instead;
- when the buffer is full, drops the *newest* records (what is stored stays
  an in-order prefix of what happened), counts them, and, once the database
  is back and the buffer written, marks each command that lost records
  (`LossLedger`, `loss_message`).

This module holds the pieces without I/O: the snapshot callers see, the
backoff, and the ledger of lost records.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.model import CommandEventRecord, StatusChange

#: The first retry after a failed commit; each failure doubles it up to `journal_retry_max_s`.
RETRY_FIRST_S = 0.1


@dataclass(frozen=True, slots=True)
class JournalOutage:
    """The journal's database stopped answering: since when, why, and what it holds."""

    since: datetime
    error: str
    #: Whole seconds (at least 1) until the journal tries the database again.
    retry_after_s: int
    #: Actors' records waiting to be written, in order.
    buffered_records: int
    #: Records dropped during this outage because the buffer was full.
    lost_records: int

    def describe(self) -> str:
        """One sentence for people (readiness, logs, 503 messages)."""
        lost = f", {self.lost_records} lost (buffer full)" if self.lost_records else ""
        return (
            f"the database has not answered since {self.since.isoformat(timespec='seconds')} "
            f"({self.error}); {self.buffered_records} records of running commands are held"
            f"{lost}; next attempt in {self.retry_after_s} s"
        )


class Backoff:
    """Delays between attempts: `first_s`, doubling, at most `max_s`."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self._first_s = min(first_s, max_s)
        self._max_s = max_s
        self._next_s = self._first_s

    def next(self) -> float:
        """The delay before the next attempt (and double the one after)."""
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self._max_s)
        return delay

    def reset(self) -> None:
        """An attempt succeeded: start from `first_s` again."""
        self._next_s = self._first_s


class LossLedger:
    """Records dropped because the outage buffer was full, counted by command until marked."""

    def __init__(self) -> None:
        self._by_command: dict[uuid.UUID, int] = {}

    def __bool__(self) -> bool:
        return bool(self._by_command)

    def lose(self, events: Sequence[CommandEventRecord], changes: Sequence[StatusChange]) -> int:
        """Count `events` and `changes` as lost; returns how many records that was."""
        for command_id in [e.command_id for e in events] + [c.command_id for c in changes]:
            self._by_command[command_id] = self._by_command.get(command_id, 0) + 1
        return len(events) + len(changes)

    def take(self) -> dict[uuid.UUID, int]:
        """The records lost per command since the last `take`; the ledger is emptied."""
        lost, self._by_command = self._by_command, {}
        return lost

    def give_back(self, lost: dict[uuid.UUID, int]) -> None:
        """Undo a `take` whose marks could not be written."""
        for command_id, count in lost.items():
            self._by_command[command_id] = self._by_command.get(command_id, 0) + count


def loss_message(records: int, buffer_records: int) -> str:
    """The error a command that lost `records` records is marked with."""
    return (
        f"{records} of its records (events or status changes) were lost during a database "
        f"outage: the journal buffer (journal_buffer_records={buffer_records}) was full; "
        "its stored events are incomplete"
    )
