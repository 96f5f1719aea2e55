"""The group-commit journal through a database outage: held records, retries, losses.

`OutageHandling` is the part of `hub.batching.GroupCommitJournal` that runs
while the database does not answer: it holds the actors' records (bounded by
`journal_buffer_records`, the rest dropped and counted), refuses the calls
that need a commit (`JournalUnavailable`), retries or probes with backoff,
and once the database answers marks each command that lost records
`interrupted` and audits it. The sans-IO pieces it uses are in
`hub.journal_outage`. Also here: the journal's errors and its queued call
(`PendingRecords`), which both halves use.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog
import trio

from hub.errors import HubError, StorageUnavailable
from hub.journal_outage import Backoff, JournalOutage, LossLedger, loss_message
from hub.model import Command, CommandEventRecord, CommandStatus, StatusChange
from hub.ports import AuditTrail, CommandJournal

log = structlog.get_logger("hub.batching")


class JournalWriteFailed(HubError):
    """The batch holding these records could not be committed."""

    #: Whole seconds a caller should wait before trying again.
    retry_after_s: int = 1


class JournalUnavailable(JournalWriteFailed):
    """The database does not answer: nothing of this call was recorded.

    `retry_after_s`: whole seconds until the journal tries the database again.
    """

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IdempotencyKeyTaken(HubError):
    """A new command was not stored: its submitter already used its idempotency key.

    The rest of its batch was committed. `command_ids` are the commands refused.
    """

    def __init__(self, message: str, command_ids: frozenset[uuid.UUID]) -> None:
        super().__init__(message)
        self.command_ids = command_ids


@dataclass
class PendingRecords:
    """One `record` call waiting in the journal's queue (or held through an outage)."""

    events: Sequence[CommandEventRecord]
    changes: Sequence[StatusChange]
    commands: Sequence[Command]
    #: When it joined (`trio.current_time()`): a batch waits at most `max_wait_s` after its first.
    at: float = 0.0
    #: The caller's publication: called once stored (or failed for good, not by an outage).
    on_stored: Callable[[], None] | None = None
    #: Released during an outage: the journal holds it and calls `on_stored` once stored.
    deferred: bool = False
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None
    #: Its new commands the journal refused (idempotency key already used).
    refused: frozenset[uuid.UUID] = frozenset()


class JournalObserver(Protocol):
    """Told what the journal committed (for metrics); called on the writer task, must not block."""

    def batch_committed(self, records: int, seconds: float) -> None:
        """One batch of `records` calls took `seconds` to commit (or to fail)."""
        ...

    def recorded(self, commands: Sequence[Command], changes: Sequence[StatusChange]) -> None:
        """New commands and status changes that are now committed."""
        ...

    def records_lost(self, records: int) -> None:
        """`records` events and status changes were dropped: the outage buffer was full."""
        ...


class OutageHandling:
    """The outage half of `GroupCommitJournal` (a base class: it shares the journal's state)."""

    _inner: CommandJournal
    _buffer_records: int
    _commit_timeout_s: float
    _backoff: Backoff
    _probe: Callable[[], Awaitable[None]] | None
    _outage: Outage | None
    _buffered: int
    _ledger: LossLedger
    _pending: list[PendingRecords]
    _pending_records: int
    _full: trio.Event
    records_lost: int
    audit: AuditTrail | None
    on_marked: Callable[[StatusChange], None] | None
    observer: JournalObserver | None

    def _enqueue(self, pending: PendingRecords) -> None:
        raise NotImplementedError

    async def _write_bounded(self, batch: list[PendingRecords]) -> BaseException | None:
        raise NotImplementedError

    @property
    def outage(self) -> JournalOutage | None:
        """The outage under way, or None while the database answers."""
        outage = self._outage
        if outage is None:
            return None
        wait = max(outage.retry_at - trio.current_time(), 0.0)
        return JournalOutage(
            outage.since, outage.error, max(1, math.ceil(wait)), self._buffered, outage.lost
        )

    @property
    def buffered_records(self) -> int:
        """Actors' records held through an outage, not yet written."""
        return self._buffered

    def check_available(self) -> None:
        """Raise `JournalUnavailable` while an outage makes a commit pointless (before the
        next attempt); afterwards a record may try (and is then the attempt)."""
        if self._outage is not None and trio.current_time() < self._outage.retry_at:
            raise self._refusal()

    def _hold(self, pending: PendingRecords) -> None:
        """Keep an actor's records through the outage and release its caller (or drop them)."""
        size = record_size(pending)
        if self._buffered + size > self._buffer_records:
            self._lose(pending)
        else:
            pending.deferred = True
            self._buffered += size
            self._enqueue(pending)
        pending.done.set()

    def _unavailable(self, unwritten: list[PendingRecords], error: BaseException) -> None:
        """The database stopped answering: hold the actors' records, fail the others."""
        delay = self._backoff.next()
        retry_at = trio.current_time() + delay
        if self._outage is None:
            self._outage = Outage(datetime.now(UTC), first_line(error), retry_at)
            log.error("journal.unavailable", error=self._outage.error, retry_in_s=delay)
        else:
            self._outage.error, self._outage.retry_at = first_line(error), retry_at
            log.warning("journal.still_unavailable", error=self._outage.error, retry_in_s=delay)
        queue, self._pending = [*unwritten, *self._pending], []
        self._pending_records = self._buffered = 0
        self._full = trio.Event()
        for pending in queue:
            if pending.on_stored is None:  # it needs the commit to answer: fails now
                pending.error = self._refusal()
                pending.done.set()
            else:
                self._hold(pending)

    def _refusal(self) -> JournalUnavailable:
        outage = self.outage
        assert outage is not None
        return JournalUnavailable(outage.describe(), outage.retry_after_s)

    async def _try_probe(self) -> None:
        """Nothing to write during an outage: ask the database whether it answers again."""
        if self._probe is not None:
            error: BaseException | None = None
            with trio.move_on_after(self._commit_timeout_s) as scope:
                try:
                    await self._probe()
                except Exception as exc:
                    error = exc
            if scope.cancelled_caught:
                error = TimeoutError(f"no answer within {self._commit_timeout_s:g} s")
            if error is not None:
                self._unavailable([], error)
                return
        self._recovered()

    def _recovered(self) -> None:
        self._backoff.reset()
        outage, self._outage = self._outage, None
        if outage is not None:
            log.warning(
                "journal.recovered",
                down_since=outage.since.isoformat(),
                buffered_records=self._buffered,
                lost_records=outage.lost,
            )

    def _lose(self, pending: PendingRecords) -> None:
        """Drop an actor's records: the buffer is full (or the hub stops during an outage)."""
        lost = self._ledger.lose(pending.events, pending.changes)
        self.records_lost += lost
        if self._outage is not None:
            if not self._outage.lost:  # once per outage; the total comes with the recovery
                log.error(
                    "journal.records_lost",
                    records=lost,
                    buffer_records=self._buffer_records,
                    detail="the outage buffer is full (journal_buffer_records): newer records "
                    "of running commands are dropped until the database answers",
                )
            self._outage.lost += lost
        if self.observer is not None:
            try:
                self.observer.records_lost(lost)
            except Exception:  # metrics must never fail a write
                log.exception("journal.observer_failed")

    def _give_up(self) -> None:
        """The hub stops: what could not be written is lost, and its callers are released."""
        left, self._pending = self._pending, []
        for pending in left:
            if pending.on_stored is not None:
                self._lose(pending)
            else:
                pending.error = TimeoutError("the hub stopped before the records were written")
            pending.done.set()
        if left:
            log.error("journal.unwritten_at_stop", calls=len(left), lost=self.records_lost)

    async def _mark_losses(self) -> None:
        """Mark each command that lost records `interrupted` (if not final yet) and audit it."""
        lost = self._ledger.take()
        at = datetime.now(UTC)
        changes = [
            StatusChange(
                command_id, CommandStatus.INTERRUPTED, at, loss_message(n, self._buffer_records)
            )
            for command_id, n in lost.items()
        ]
        with trio.CancelScope(shield=True):
            error = await self._write_bounded([PendingRecords((), changes, ())])
            if error is not None:
                if is_outage(error):  # marked once the database answers again
                    self._ledger.give_back(lost)
                    self._unavailable([], error)
                return
            try:
                if self.observer is not None:
                    self.observer.recorded((), changes)
                for change in changes:
                    if self.on_marked is not None:
                        self.on_marked(change)
            except Exception:  # metrics and publication must never stop the writer
                log.exception("journal.observer_failed")
            for command_id, count in lost.items():
                await self._audit_loss(command_id, count)
        log.error("journal.commands_marked", commands=len(lost), records=sum(lost.values()))

    async def _audit_loss(self, command_id: uuid.UUID, count: int) -> None:
        if self.audit is None:
            return
        with trio.move_on_after(self._commit_timeout_s):
            try:
                await self.audit.append_audit(
                    actor="hub",
                    action="command.records_lost",
                    target=f"command:{command_id}",
                    details={"records_lost": count, "journal_buffer_records": self._buffer_records},
                )
            except Exception:
                log.exception("journal.loss_audit_failed", command_id=str(command_id))


@dataclass
class Outage:
    """The outage under way, as the journal keeps it (`JournalOutage` is what callers see)."""

    since: datetime
    error: str
    retry_at: float
    lost: int = 0


def is_outage(error: BaseException) -> bool:
    """The database did not answer (as opposed to refusing these records)."""
    return isinstance(error, StorageUnavailable | TimeoutError)


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def record_size(pending: PendingRecords) -> int:
    """Its records (commands, events, changes); at least 1."""
    return max(1, len(pending.events) + len(pending.changes) + len(pending.commands))


def tell_observer(
    observer: JournalObserver, calls: int, written: list[PendingRecords], seconds: float
) -> None:
    """Tell `observer`: `calls` record calls took `seconds`; of them, `written` were stored."""
    try:
        observer.batch_committed(calls, seconds)
        for pending in written:
            if pending.error is None:
                commands = [c for c in pending.commands if c.id not in pending.refused]
                observer.recorded(commands, pending.changes)
    except Exception:  # metrics must never fail a write
        log.exception("journal.observer_failed")
