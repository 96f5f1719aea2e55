"""Audit events the hub writes without making anyone wait: vehicle connections and refusals.

A fleet reconnecting after an outage connects thousands of vehicles within
seconds. One transaction per audit row would queue them all on the audit
chain's head lock, ahead of the operators' commands; `AuditBatcher` instead
collects the notes made while its previous batch commits and writes them in
one transaction (`AuditLog.append_audits`), at most `MAX_BATCH_NOTES` at a
time, in the order they were made. Nobody awaits a note (a link must not
wait for the audit trail).

A batch that fails is written again one note at a time: a note the database
refuses on its own is dropped (logged, counted in `statistics().dropped`),
so it cannot block the others; when every note fails (the database is down)
they are all kept and retried every `RETRY_S`, up to `max_pending` notes, past
which the oldest are dropped, logged and counted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
import trio

from hub.batching import COMMIT_TIMEOUT_S, FINAL_FLUSH_TIMEOUT_S
from hub.errors import StorageUnavailable
from hub.model import JSON
from hub.ports import AuditTrail

__all__ = ["AuditBatcher", "AuditLog", "AuditNote", "AuditRecord", "storable", "vehicle_target"]

log = structlog.get_logger("hub.auditing")

#: Notes written in one transaction at most.
MAX_BATCH_NOTES = 1000
#: Notes kept while the database cannot take them; past this the oldest are dropped.
MAX_PENDING_NOTES = 100_000
#: How long to wait before writing again after every note of a batch failed.
RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class AuditNote:
    """One audit event to append: `actor` did `action` to `target` at `at`."""

    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, JSON]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit event, as read back: the `AuditNote` it was written as, its id,
    the vehicle it concerns (`vin`, or None) and its place in its hash chain."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    vin: str | None
    details: dict[str, JSON]
    chain: str
    seq: int
    prev_hash: str
    hash: str


class AuditLog(AuditTrail, Protocol):
    """An audit trail that also appends many events in one transaction."""

    async def append_audits(self, notes: Sequence[AuditNote]) -> None:
        """Append `notes`, in order, in one transaction; returns once committed."""
        ...


def storable(text: str, limit: int) -> str:
    """`text` from a vehicle, fit for the audit trail: at most `limit` characters, no NUL
    (Postgres refuses it in JSON text)."""
    return text[:limit].replace("\x00", "\\x00")[:limit]


def vehicle_target(vin: str) -> tuple[str, dict[str, JSON]]:
    """The audit target naming a vehicle by the VIN it claimed, and details to add.

    A VIN that cannot be one (not 17 printable ASCII characters) is not put
    in the target: the target says `vehicle:?` and `claimed_vin` quotes (a
    bounded part of) what came, escaped, so the row can always be stored.
    """
    if len(vin) == 17 and vin.isascii() and vin.isprintable():
        return f"vehicle:{vin}", {}
    return "vehicle:?", {"claimed_vin": repr(vin[:40])}


@dataclass(frozen=True, slots=True)
class AuditNoteStatistics:
    """A snapshot of an `AuditBatcher` (`statistics`): notes waiting, written, dropped."""

    pending: int
    written: int
    dropped: int


class AuditBatcher:
    """Writes audit notes in batches; run `run` in a nursery (see the module doc)."""

    def __init__(self, log_: AuditLog, *, max_pending: int = MAX_PENDING_NOTES) -> None:
        self._log = log_
        self._max_pending = max_pending
        self._pending: list[AuditNote] = []
        self._wakeup = trio.Event()
        self._written = 0
        self._dropped = 0

    def note(self, action: str, *, actor: str, target: str, details: dict[str, JSON]) -> None:
        """Append an event stamped now, soon; never blocks."""
        self._pending.append(AuditNote(datetime.now(UTC), actor, action, target, details))
        self._trim()
        self._wakeup.set()

    def statistics(self) -> AuditNoteStatistics:
        """Notes waiting to be written, written, and dropped since the start."""
        return AuditNoteStatistics(len(self._pending), self._written, self._dropped)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write batches until cancelled; then write what is left (bounded)."""
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                if not await self._write():
                    await trio.sleep(RETRY_S)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
                while self._pending and await self._write():
                    pass

    async def _write(self) -> bool:
        """Write the next batch; False when nothing of it could be written (kept for later)."""
        batch = self._pending[:MAX_BATCH_NOTES]
        del self._pending[: len(batch)]
        if not self._pending:
            self._wakeup = trio.Event()
        if not batch:
            return True
        if await self._append(batch):
            self._written += len(batch)
            return True
        if len(batch) > 1:
            failed = [note for note in batch if not await self._append([note])]
            if len(failed) < len(batch):  # the database is up: these notes are the trouble
                self._written += len(batch) - len(failed)
                self._drop(failed, "refused by the database")
                return True
        self._pending[:0] = batch  # the database is down: keep them, in order
        self._trim()
        self._wakeup.set()
        return False

    async def _append(self, notes: Sequence[AuditNote]) -> bool:
        try:
            with trio.CancelScope(shield=True), trio.move_on_after(COMMIT_TIMEOUT_S) as scope:
                await self._log.append_audits(notes)
            if scope.cancelled_caught:
                raise TimeoutError(f"no commit within {COMMIT_TIMEOUT_S:g} s")
        except (StorageUnavailable, TimeoutError) as exc:
            # An outage is reported by the journal and readiness; one line per retry is enough.
            log.warning("audit.notes_write_failed", notes=len(notes), error=str(exc))
            return False
        except Exception:
            log.exception("audit.notes_write_failed", notes=len(notes))
            return False
        return True

    def _trim(self) -> None:
        excess = len(self._pending) - self._max_pending
        if excess > 0:
            dropped, self._pending = self._pending[:excess], self._pending[excess:]
            self._drop(dropped, f"more than {self._max_pending} notes waited for the database")

    def _drop(self, notes: Sequence[AuditNote], why: str) -> None:
        if notes:
            self._dropped += len(notes)
            log.error(
                "audit.notes_dropped",
                notes=len(notes),
                why=why,
                actions=sorted({note.action for note in notes}),
            )
