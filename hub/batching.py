"""Group commit: many actors' writes, one transaction.

`GroupCommitJournal` wraps the storage journal: every `record` call joins the
batch being collected while the previous one commits, and returns once its
batch has committed, so "recorded before published" still holds for each
caller while the database sees one transaction per batch instead of one per
event. `LastSeen` does the same for vehicles' `last_seen_at`, without waiting, and
`CredentialLookup` for the credentials checked when a vehicle connects: a
fleet reconnecting after an outage costs a handful of queries, not two each.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog
import trio

from hub.errors import HubError
from hub.model import Command, CommandEventRecord, StatusChange, VehicleCredentials
from hub.ports import CommandJournal, VehicleDirectory

log = structlog.get_logger("hub.batching")

#: How long stopping may spend writing what is still pending.
FINAL_FLUSH_TIMEOUT_S = 5.0
#: The longest one batch may take to commit before its callers are told it failed.
COMMIT_TIMEOUT_S = 30.0


class JournalWriteFailed(HubError):
    """The batch holding these records could not be committed."""


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


class GroupCommitJournal:
    """A `CommandJournal` that commits concurrent records together; run `run` in a nursery."""

    def __init__(self, inner: CommandJournal) -> None:
        self._inner = inner
        self._pending: list[_Pending] = []
        self._wakeup = trio.Event()
        self.batches = 0
        self.records = 0
        #: Told about every committed batch (the API's metrics); None: nobody.
        self.observer: JournalObserver | None = None

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        """Join the next batch; return once it has committed (`JournalWriteFailed` if not).

        `IdempotencyKeyTaken` when one of `commands` was refused because its
        submitter already used its idempotency key: the rest was committed.
        Cancelling the caller does not withdraw the records: they are written.
        """
        pending = _Pending(events, changes, commands)
        self._pending.append(pending)
        self._wakeup.set()
        await pending.done.wait()
        if pending.error is not None:
            raise JournalWriteFailed(f"could not record: {pending.error}") from pending.error
        if pending.refused:
            raise IdempotencyKeyTaken(
                "the idempotency key was already used for another command", pending.refused
            )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled; then commit what is left (bounded)."""
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                await self._commit()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
                while self._pending:
                    await self._commit()

    async def _commit(self) -> None:
        self._wakeup = trio.Event()
        batch, self._pending = self._pending, []
        if not batch:
            return
        for pending in batch:  # unless the commit below finishes in time
            pending.error = TimeoutError(f"no commit within {COMMIT_TIMEOUT_S:g} s")
        started = time.perf_counter()
        # A batch taken is committed whole: cancelling the writer must not drop it.
        with trio.CancelScope(shield=True), trio.move_on_after(COMMIT_TIMEOUT_S):
            error = await self._write(batch)
            if error is not None and len(batch) > 1:
                # Whatever broke the batch must fail only its own caller.
                for pending in batch:
                    pending.error = await self._write([pending])
            else:
                for pending in batch:
                    pending.error = error
        self.batches += 1
        self.records += len(batch)
        if self.observer is not None:
            _tell(self.observer, batch, time.perf_counter() - started)
        for pending in batch:
            pending.done.set()

    async def _write(self, batch: list[_Pending]) -> BaseException | None:
        try:
            refused = await self._inner.record(
                [e for p in batch for e in p.events],
                [c for p in batch for c in p.changes],
                [c for p in batch for c in p.commands],
            )
        except Exception as exc:
            log.exception("journal.batch_failed", records=len(batch))
            return exc
        if refused:  # a lost race for an idempotency key fails only its own caller
            for pending in batch:
                pending.refused = frozenset(c.id for c in pending.commands if c.id in refused)
        return None


def _tell(observer: JournalObserver, batch: list[_Pending], seconds: float) -> None:
    try:
        observer.batch_committed(len(batch), seconds)
        for pending in batch:
            if pending.error is None:
                commands = [c for c in pending.commands if c.id not in pending.refused]
                observer.recorded(commands, pending.changes)
    except Exception:  # metrics must never fail a write
        log.exception("journal.observer_failed")


class LastSeen:
    """Collects vehicles' last-seen times and writes them in batches; run `run` in a nursery."""

    def __init__(self, directory: VehicleDirectory) -> None:
        self._directory = directory
        self._pending: dict[str, datetime] = {}
        self._wakeup = trio.Event()

    def mark(self, vin: str, at: datetime) -> None:
        """Remember that `vin`'s link was up at `at`; written soon, never blocks."""
        self._pending[vin] = at
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write batches until cancelled; then write what is left (bounded)."""
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                await self._write()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
                await self._write()

    async def _write(self) -> None:
        self._wakeup = trio.Event()
        batch, self._pending = self._pending, {}
        if not batch:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(COMMIT_TIMEOUT_S):
            try:
                await self._directory.record_seen(batch)
            except Exception:
                log.exception("last_seen.write_failed", vehicles=len(batch))


@dataclass
class _LookupBatch:
    wanted: set[str] = field(default_factory=set)
    done: trio.Event = field(default_factory=trio.Event)
    outcome: dict[str, VehicleCredentials] | BaseException = field(default_factory=dict)


class CredentialLookup:
    """Looks vehicles' credentials up in batches; run `run` in a nursery."""

    def __init__(self, directory: VehicleDirectory) -> None:
        self._directory = directory
        self._collecting = _LookupBatch()
        self._wakeup = trio.Event()

    async def find(self, vin: str) -> VehicleCredentials | None:
        """The vehicle's credentials, or None when the VIN is not registered.

        Raises `LookupFailed` when the batch's query failed.
        """
        batch = self._collecting
        batch.wanted.add(vin)
        self._wakeup.set()
        await batch.done.wait()
        if isinstance(batch.outcome, BaseException):
            raise LookupFailed(f"could not look vehicle {vin} up: {batch.outcome}") from (
                batch.outcome
            )
        return batch.outcome.get(vin)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer batches of lookups until cancelled."""
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            batch, self._collecting = self._collecting, _LookupBatch()
            try:
                batch.outcome = await self._directory.find_vehicles(batch.wanted)
            except Exception as exc:
                log.exception("credentials.lookup_failed", vehicles=len(batch.wanted))
                batch.outcome = exc
            batch.done.set()


class LookupFailed(HubError):
    """The vehicle directory could not be queried."""
