"""Group commit: many actors' writes, one transaction.

`GroupCommitJournal` wraps the storage journal: every `record` call joins the
batch being collected while the previous one commits, and returns once its
batch has committed, so "recorded before published" still holds for each
caller while the database sees one transaction per batch instead of one per
event. `LastSeen` and `CredentialLookup` (in `hub.fleet_batches`, re-exported
here) batch vehicles' `last_seen_at` writes and credential lookups.

When the database stops answering, the journal holds the actors' records in a
bounded buffer and writes them, in order, when it is back; new commands are
refused at once meanwhile (`JournalUnavailable`): that half of the journal is
`hub.journal_holding.OutageHandling` (its sans-IO pieces: `hub.journal_outage`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
import trio

from hub.errors import LookupFailed as LookupFailed
from hub.errors import StorageUnavailable
from hub.fleet_batches import COMMIT_TIMEOUT_S as COMMIT_TIMEOUT_S
from hub.fleet_batches import FINAL_FLUSH_TIMEOUT_S as FINAL_FLUSH_TIMEOUT_S
from hub.fleet_batches import CredentialLookup as CredentialLookup
from hub.fleet_batches import LastSeen as LastSeen
from hub.journal_holding import IdempotencyKeyTaken as IdempotencyKeyTaken
from hub.journal_holding import JournalObserver as JournalObserver
from hub.journal_holding import JournalUnavailable as JournalUnavailable
from hub.journal_holding import JournalWriteFailed as JournalWriteFailed
from hub.journal_holding import (
    Outage,
    OutageHandling,
    PendingRecords,
    is_outage,
    record_size,
    tell_observer,
)
from hub.journal_outage import RETRY_FIRST_S, Backoff, LossLedger
from hub.model import Command, CommandEventRecord, StatusChange
from hub.ports import AuditTrail, CommandJournal

log = structlog.get_logger("hub.batching")


class GroupCommitJournal(OutageHandling):
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
        self._outage: Outage | None = None
        self._buffered = 0  # records of deferred calls, queued or being written
        self._ledger = LossLedger()
        self._stopping = False
        #: Records dropped since the start because the outage buffer was full.
        self.records_lost = 0
        #: Where the marks of commands that lost records are audited; None: not audited.
        self.audit: AuditTrail | None = None
        #: Told each such mark once stored (the hub publishes it); None: nobody.
        self.on_marked: Callable[[StatusChange], None] | None = None
        self._pending: list[PendingRecords] = []
        self._pending_records = 0
        self._wakeup = trio.Event()
        self._full = trio.Event()  # set while the pending records fill a batch
        self.batches = 0
        self.records = 0
        #: Told about every committed batch (the API's metrics); None: nobody.
        self.observer: JournalObserver | None = None

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
        pending = PendingRecords(
            events, changes, commands, trio.current_time(), on_stored=on_stored
        )
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

    def record_nowait(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        *,
        on_stored: Callable[[], None],
    ) -> None:
        """Join the next batch without waiting for it; `on_stored` is called once committed.

        For records the caller need not see committed before it goes on (an
        actor's `dispatched` changes: the request goes to the vehicle at once).
        The journal commits calls in the order they came, so whatever the
        caller records afterwards is committed in the same batch or a later
        one, and published after it. During an outage the records are held
        (or dropped and counted, the buffer full) as for `record` with
        `on_stored`. Never blocks.
        """
        pending = PendingRecords(events, changes, (), trio.current_time(), on_stored=on_stored)
        if self._outage is not None:
            self._hold(pending)
        else:
            self._enqueue(pending)

    def _enqueue(self, pending: PendingRecords) -> None:
        self._pending.append(pending)
        self._pending_records += record_size(pending)
        self._wakeup.set()
        if self._pending_records >= self._max_records:
            self._full.set()

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

    def _take(self) -> list[PendingRecords]:
        """The next batch: whole record calls from the front, up to `max_batch_records`."""
        taken, records = 0, 0
        for pending in self._pending:
            size = record_size(pending)
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
            if error is not None and is_outage(error):
                written, unwritten, outage = [], batch, error
            elif error is not None and len(batch) > 1:
                # Whatever broke the batch must fail only its own caller.
                written = []
                for index, pending in enumerate(batch):
                    pending.error = await self._write_bounded([pending])
                    if pending.error is not None and is_outage(pending.error):
                        unwritten, outage = batch[index:], pending.error
                        break
                    written.append(pending)
            else:
                for pending in batch:
                    pending.error = error
        self.batches += 1
        self.records += len(written)
        if self.observer is not None:
            tell_observer(self.observer, len(batch), written, time.perf_counter() - started)
        if any(pending.error is None for pending in written):
            self._recovered()
        for pending in written:
            self._finish(pending)
        if outage is not None:
            self._unavailable(unwritten, outage)

    def _finish(self, pending: PendingRecords) -> None:
        """Written (or failed for good): publish, release."""
        if pending.deferred:
            self._buffered -= record_size(pending)
        if pending.on_stored is not None:
            if pending.error is not None:
                log.error("journal.published_unrecorded", error=str(pending.error))
            try:
                pending.on_stored()
            except Exception:
                log.exception("journal.on_stored_failed")
        pending.done.set()

    async def _write_bounded(self, batch: list[PendingRecords]) -> BaseException | None:
        with trio.move_on_after(self._commit_timeout_s):
            return await self._write(batch)
        return TimeoutError(
            f"no commit within {self._commit_timeout_s:g} s (journal_commit_timeout_s)"
        )

    async def _write(self, batch: list[PendingRecords]) -> BaseException | None:
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
