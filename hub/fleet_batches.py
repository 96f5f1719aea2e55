"""Batched writes and lookups for the fleet's connections (re-exported by `hub.batching`).

`LastSeen` writes vehicles' `last_seen_at` in batches, without waiting (what a
failed write held is written with the next one), and `CredentialLookup` looks
up the credentials of connecting vehicles (by token hash) in batches: a fleet reconnecting
after an outage costs a handful of queries, not two each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
import trio

from hub.errors import LookupFailed, StorageUnavailable
from hub.model import VehicleCredentials
from hub.ports import VehicleDirectory

log = structlog.get_logger("hub.batching")

#: How long stopping may spend writing what is still pending.
FINAL_FLUSH_TIMEOUT_S = 5.0
#: The longest one batch may take to commit before its callers are told it failed.
COMMIT_TIMEOUT_S = 30.0


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
        written = False
        with trio.CancelScope(shield=True), trio.move_on_after(COMMIT_TIMEOUT_S):
            try:
                await self._directory.record_seen(batch)
                written = True
            except StorageUnavailable as exc:
                log.warning("last_seen.write_failed", vehicles=len(batch), error=str(exc))
            except Exception:
                log.exception("last_seen.write_failed", vehicles=len(batch))
        if not written:  # kept for the next write (a newer mark of the same vehicle wins)
            for vin, at in batch.items():
                self._pending.setdefault(vin, at)


@dataclass
class _LookupBatch:
    wanted: set[str] = field(default_factory=set)
    done: trio.Event = field(default_factory=trio.Event)
    outcome: list[VehicleCredentials] | BaseException = field(default_factory=list)


class CredentialLookup:
    """Looks vehicles' credentials up by token hash, in batches; run `run` in a nursery."""

    def __init__(self, directory: VehicleDirectory) -> None:
        self._directory = directory
        self._collecting = _LookupBatch()
        self._wakeup = trio.Event()

    async def find(self, token_hash: str) -> list[VehicleCredentials]:
        """The vehicles whose token hashes to `token_hash` (tokens are unique random secrets:
        at most one, unless an operator gave two vehicles the same one); empty: none.

        Raises `LookupFailed` when the batch's query failed.
        """
        batch = self._collecting
        batch.wanted.add(token_hash)
        self._wakeup.set()
        await batch.done.wait()
        if isinstance(batch.outcome, BaseException):
            raise LookupFailed(f"could not look the vehicle up: {batch.outcome}") from (
                batch.outcome
            )
        return [found for found in batch.outcome if found.token_hash == token_hash]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer batches of lookups until cancelled."""
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            batch, self._collecting = self._collecting, _LookupBatch()
            try:
                batch.outcome = await self._directory.find_vehicles_by_token(batch.wanted)
            except StorageUnavailable as exc:  # an outage: the vehicles are told to retry
                log.warning("credentials.lookup_failed", vehicles=len(batch.wanted), error=str(exc))
                batch.outcome = exc
            except Exception as exc:
                log.exception("credentials.lookup_failed", vehicles=len(batch.wanted))
                batch.outcome = exc
            batch.done.set()
