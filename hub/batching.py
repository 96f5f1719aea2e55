"""Group commit: many actors' writes, one transaction.

`GroupCommitJournal` wraps the storage journal: every `record` call joins the
batch being collected while the previous one commits, and returns once its
batch has committed, so "recorded before published" still holds for each
caller while the database sees one transaction per batch instead of one per
event. `LastSeen` and `CredentialLookup` (in `hub.fleet_batches`, re-exported
here) batch vehicles' `last_seen_at` writes and credential lookups.

When the database stops answering, the journal holds the actors' records in a
bounded buffer and writes them, in order, when it is back; new commands are
refused at once meanwhile (`JournalUnavailable`). See `hub.journal_outage`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog
import trio

from hub.errors import HubError, StorageUnavailable
from hub.fleet_batches import COMMIT_TIMEOUT_S as COMMIT_TIMEOUT_S
from hub.fleet_batches import FINAL_FLUSH_TIMEOUT_S as FINAL_FLUSH_TIMEOUT_S
from hub.fleet_batches import CredentialLookup as CredentialLookup
from hub.fleet_batches import LastSeen as LastSeen
from hub.journal_outage import RETRY_FIRST_S, Backoff, JournalOutage, LossLedger, loss_message
from hub.model import (
    Command,
    CommandEventRecord,
    CommandStatus,
    StatusChange,
)
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
class _Pending:
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


class GroupCommitJournal:
    """A `CommandJournal` that commits concurrent records together; run `run` in a nursery.

    A batch is what joined while the previous one committed, plus what joins
    within `max_wait_s` of its first record (0: no waiting), cut at
    `max_batch_records` records (commands + events + changes; a record call is
    never split, so one larger than the bound goes alone): a bigger backlog
    becomes successive batches, in order. `max_batch_records=1` is one
    transaction per record call.

    Outages (`hub.journal_outage`): a commit failing with `StorageUnavailable`,
    or taking over `commit_timeout_s`, starts one. Records given `on_stored`
    (the actors') are then held, at most `buffer_records` of them, and written
    in order when `probe` (or a retry) succeeds; the rest fail with
    `JournalUnavailable`, at once while the outage lasts.
    """

    def __init__(
        self,
        inner: CommandJournal,
        *,
        max_batch_records: int = 1000,
        max_wait_s: float = 0.0,
        buffer_records: int = 100_000,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
        retry_max_s: float = 5.0,
        probe: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._inner = inner
        self._max_records = max_batch_records
        self._max_wait_s = max_wait_s
        self._buffer_records = buffer_records
        self._commit_timeout_s = commit_timeout_s
        self._backoff = Backoff(RETRY_FIRST_S, retry_max_s)
        self._probe = probe
        self._outage: _Outage | None = None
        self._buffered = 0  # records of deferred calls, queued or being written
        self._ledger = LossLedger()
        self._stopping = False
        #: Records dropped since the start because the outage buffer was full.
        self.records_lost = 0
        #: Where the marks of commands that lost records are audited; None: not audited.
        self.audit: AuditTrail | None = None
        #: Told each such mark once stored (the hub publishes it); None: nobody.
        self.on_marked: Callable[[StatusChange], None] | None = None
        self._pending: list[_Pending] = []
        self._pending_records = 0
        self._wakeup = trio.Event()
        self._full = trio.Event()  # set while the pending records fill a batch
        self.batches = 0
        self.records = 0
        #: Told about every committed batch (the API's metrics); None: nobody.
        self.observer: JournalObserver | None = None

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

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
        *,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        """Join the next batch; return once it has committed (`JournalWriteFailed` if not).

        `IdempotencyKeyTaken` when one of `commands` was refused because its
        submitter already used its idempotency key: the rest was committed.
        Cancelling the caller does not withdraw the records: they are written.

        `on_stored` (events and changes only, not commands) is called once the
        records are committed, or have failed for a reason other than an
        outage; during an outage this returns at once and the records are held
        (or, the buffer full, dropped and counted) until the database is back.
        Without it, an outage fails the call with `JournalUnavailable`.
        """
        if on_stored is not None and commands:
            raise ValueError("new commands are never held through an outage: omit on_stored")
        if on_stored is None:
            self.check_available()
        pending = _Pending(events, changes, commands, trio.current_time(), on_stored=on_stored)
        if self._outage is not None and on_stored is not None:
            self._hold(pending)
            return
        self._enqueue(pending)
        await pending.done.wait()
        if pending.deferred:
            return
        if isinstance(pending.error, JournalUnavailable):
            raise pending.error
        if pending.error is not None:
            raise JournalWriteFailed(f"could not record: {pending.error}") from pending.error
        if pending.refused:
            raise IdempotencyKeyTaken(
                "the idempotency key was already used for another command", pending.refused
            )

    def _enqueue(self, pending: _Pending) -> None:
        self._pending.append(pending)
        self._pending_records += _size(pending)
        self._wakeup.set()
        if self._pending_records >= self._max_records:
            self._full.set()

    def _hold(self, pending: _Pending) -> None:
        """Keep an actor's records through the outage and release its caller (or drop them)."""
        size = _size(pending)
        if self._buffered + size > self._buffer_records:
            self._lose(pending)
        else:
            pending.deferred = True
            self._buffered += size
            self._enqueue(pending)
        pending.done.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled; then commit what is left (bounded).

        During an outage, retries (or probes) with backoff; once the database
        answers and the held records are written, marks the commands that lost
        records. What is still held when the hub stops during an outage is lost
        (logged and counted).
        """
        task_status.started()
        try:
            while True:
                if self._ledger and self._buffered == 0 and self._outage is None:
                    await self._mark_losses()
                if self._outage is not None:
                    await trio.sleep_until(self._outage.retry_at)
                    if not self._pending:
                        await self._try_probe()
                        continue
                else:
                    await self._wakeup.wait()
                    if self._max_wait_s > 0 and self._pending:
                        # Wait for company, bounded from the batch's first record.
                        with trio.move_on_at(self._pending[0].at + self._max_wait_s):
                            await self._full.wait()
                await self._commit()
        finally:
            self._stopping = True
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
                while self._pending and self._outage is None:
                    await self._commit()
            self._give_up()

    def _take(self) -> list[_Pending]:
        """The next batch: whole record calls from the front, up to `max_batch_records`."""
        taken, records = 0, 0
        for pending in self._pending:
            size = _size(pending)
            if taken and records + size > self._max_records:
                break
            taken, records = taken + 1, records + size
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        self._pending_records -= records
        self._full = trio.Event()
        if self._pending_records >= self._max_records:
            self._full.set()
        if not self._pending:
            self._wakeup = trio.Event()
        return batch

    async def _commit(self) -> None:
        batch = self._take()
        if not batch:
            self._wakeup = trio.Event()
            return
        started = time.perf_counter()
        written, unwritten, outage = batch, [], None
        # A batch taken is committed whole: cancelling the writer must not drop it.
        with trio.CancelScope(shield=True):
            error = await self._write_bounded(batch)
            if error is not None and _is_outage(error):
                written, unwritten, outage = [], batch, error
            elif error is not None and len(batch) > 1:
                # Whatever broke the batch must fail only its own caller.
                written = []
                for index, pending in enumerate(batch):
                    pending.error = await self._write_bounded([pending])
                    if pending.error is not None and _is_outage(pending.error):
                        unwritten, outage = batch[index:], pending.error
                        break
                    written.append(pending)
            else:
                for pending in batch:
                    pending.error = error
        self.batches += 1
        self.records += len(written)
        if self.observer is not None:
            _tell(self.observer, len(batch), written, time.perf_counter() - started)
        if any(pending.error is None for pending in written):
            self._recovered()
        for pending in written:
            self._finish(pending)
        if outage is not None:
            self._unavailable(unwritten, outage)

    def _finish(self, pending: _Pending) -> None:
        """Written (or failed for good): publish, release."""
        if pending.deferred:
            self._buffered -= _size(pending)
        if pending.on_stored is not None:
            if pending.error is not None:
                log.error("journal.published_unrecorded", error=str(pending.error))
            try:
                pending.on_stored()
            except Exception:
                log.exception("journal.on_stored_failed")
        pending.done.set()

    async def _write_bounded(self, batch: list[_Pending]) -> BaseException | None:
        with trio.move_on_after(self._commit_timeout_s):
            return await self._write(batch)
        return TimeoutError(
            f"no commit within {self._commit_timeout_s:g} s (journal_commit_timeout_s)"
        )

    async def _write(self, batch: list[_Pending]) -> BaseException | None:
        try:
            refused = await self._inner.record(
                [e for p in batch for e in p.events],
                [c for p in batch for c in p.changes],
                [c for p in batch for c in p.commands],
            )
        except StorageUnavailable as exc:  # logged once per attempt by `_unavailable`
            return exc
        except Exception as exc:
            log.exception("journal.batch_failed", records=len(batch))
            return exc
        if refused:  # a lost race for an idempotency key fails only its own caller
            for pending in batch:
                pending.refused = frozenset(c.id for c in pending.commands if c.id in refused)
        return None

    # -- outages ---------------------------------------------------------------

    def _unavailable(self, unwritten: list[_Pending], error: BaseException) -> None:
        """The database stopped answering: hold the actors' records, fail the others."""
        delay = self._backoff.next()
        retry_at = trio.current_time() + delay
        if self._outage is None:
            self._outage = _Outage(datetime.now(UTC), _first_line(error), retry_at)
            log.error("journal.unavailable", error=self._outage.error, retry_in_s=delay)
        else:
            self._outage.error, self._outage.retry_at = _first_line(error), retry_at
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

    def _lose(self, pending: _Pending) -> None:
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
            error = await self._write_bounded([_Pending((), changes, ())])
            if error is not None:
                if _is_outage(error):  # marked once the database answers again
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
class _Outage:
    since: datetime
    error: str
    retry_at: float
    lost: int = 0


def _is_outage(error: BaseException) -> bool:
    """The database did not answer (as opposed to refusing these records)."""
    return isinstance(error, StorageUnavailable | TimeoutError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _size(pending: _Pending) -> int:
    """Its records (commands, events, changes); at least 1."""
    return max(1, len(pending.events) + len(pending.changes) + len(pending.commands))


def _tell(observer: JournalObserver, calls: int, written: list[_Pending], seconds: float) -> None:
    """`calls` record calls took `seconds`; of them, `written` were (those without error)."""
    try:
        observer.batch_committed(calls, seconds)
        for pending in written:
            if pending.error is None:
                commands = [c for c in pending.commands if c.id not in pending.refused]
                observer.recorded(commands, pending.changes)
    except Exception:  # metrics must never fail a write
        log.exception("journal.observer_failed")
