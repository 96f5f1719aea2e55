"""Submission: once a new command is handed to the journal, it reaches its actor or ends.

An API handler is cancelled when its HTTP client hangs up. Were that
cancellation to land between the commit of a new command and its hand-over
to the vehicle's actor, the command would stay `pending` with nothing to run
it. So the hub runs that stretch in `Submissions.hold`: shielded from the caller's
cancellation, and bounded by the journal's own bounds (each commit by
`journal_commit_timeout_s`; during an outage a new command is refused at
once) and, when routed, by `redis_timeout_s`. While held, the command is "in
hand" (`Submissions.holds`), so an idempotent retry does not take it for lost.

`Submissions.record_new` closes the other gap: a commit whose answer never came (it timed
out, or the connection broke while committing) may have stored the command
all the same, while its caller answers "not recorded". It then also records
the command `failed`, which is a no-op if it was not stored, and otherwise
ends it: it can never stay `pending`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

import structlog
import trio

from hub.admission import Admission
from hub.batching import GroupCommitJournal, JournalWriteFailed
from hub.config import HubConfig
from hub.dispatching import Dispatcher
from hub.ending import end_command, publish_ends
from hub.errors import DispatchError, StorageUnavailable, VehicleNotConnected
from hub.mailbox import VehicleActor
from hub.model import Command, CommandStatus, StatusChange
from hub.ports import (
    CommandBacklog,
    DueWaiting,
    EventBus,
    VehicleLeases,
)
from hub.registry import Registry

log = structlog.get_logger("hub.submission")


class SubmissionHost(Protocol):
    """What `Submissions` uses of the hub it serves (`hub.node.Hub`)."""

    config: HubConfig
    leases: VehicleLeases | None
    dispatcher: Dispatcher
    admission: Admission

    def cancel_here(
        self, command_id: uuid.UUID, vin: str, by: str, submitted_by: str | None = None
    ) -> bool: ...


class Submissions:
    """The hub's part of submitting, cancelling and expiring commands (`Hub.submissions`).

    Waiting commands (`expires_at`) are left pending, handed to the vehicle's
    actor when it connects, or expired by `expire_waiting`, under the hub's
    attach lock, so a command is either handed to a starting actor or expired.
    """

    def __init__(
        self,
        hub: SubmissionHost,
        actors: Registry[VehicleActor],
        attach_lock: trio.Lock,
        journal: GroupCommitJournal,
        bus: EventBus,
    ) -> None:
        self._hub = hub
        self._actors = actors
        # Held by the hub while an actor starts and loads its waiting commands.
        self._attach_lock = attach_lock
        self._journal = journal
        self._bus = bus
        self._in_hand: set[uuid.UUID] = set()  # new commands between commit and hand-over

    async def submit(self, command: Command) -> None:
        """See `Hub.submit`."""
        actor = self._actors.get(command.vin)
        if actor is None and command.expires_at is not None:
            async with self._attach_lock:
                if self._actors.get(command.vin) is None:
                    with self.hold(command):
                        try:
                            await self.record_new(command)  # waits, pending
                        finally:  # noted even if the commit's answer was lost
                            self._hub.admission.left_waiting(command.vin)
                    return
            actor = self._actors.get(command.vin)
        if actor is None:
            raise VehicleNotConnected(
                f"vehicle {command.vin} is not connected; send ttl_s to let the command wait for it"
            )
        self._hub.dispatcher.check_room(command.vin)  # refused before anything is written
        with self.hold(command):
            await self.record_new(command)
            await self.hand_over(command)

    @contextmanager
    def hold(self, command: Command) -> Iterator[None]:
        """Run the block shielded from cancellation, with `command` in hand (`holds`) meanwhile.

        For the stretch from a new command's commit to its hand-over.
        Cancellation: the block runs to its end even if the caller is
        cancelled (which it learns at its next checkpoint after the block);
        the block must bound its own waits.
        """
        self._in_hand.add(command.id)
        try:
            with trio.CancelScope(shield=True):
                yield
        finally:
            self._in_hand.discard(command.id)

    def holds(self, command_id: uuid.UUID) -> bool:
        """True if this node is storing `command_id` now, or handed it to an actor lately."""
        return command_id in self._in_hand or self._hub.dispatcher.dispatched_lately(command_id)

    async def record_new(self, command: Command) -> None:
        """Commit the new `command` (pending, with its audit event); see the module docstring.

        Raises `JournalWriteFailed` (after marking the command `failed`, in case
        the commit did store it) or `IdempotencyKeyTaken` (nothing stored).
        """
        self._journal.check_available()  # refused before anything is attempted: nothing to mark
        try:
            await self._journal.record((), (), [command])
        except JournalWriteFailed as exc:
            error = (
                f"the hub could not confirm that the command was recorded ({exc}); "
                "it was not sent to the vehicle"
            )
            await self.end(command, CommandStatus.FAILED, error)
            raise

    async def hand_over(self, command: Command, *, once: bool = False) -> None:
        """Dispatch a stored command (`Dispatcher.dispatch_once` if `once`); if refused, end it.

        Raises `VehicleNotConnected` / `MailboxFull` after recording the command
        `failed`, unless it may wait for its vehicle (then it stays pending).
        """
        try:
            if once:
                self._hub.dispatcher.dispatch_once(command)
            else:
                self._hub.dispatcher.dispatch(command)
        except DispatchError as exc:
            if isinstance(exc, VehicleNotConnected) and command.expires_at is not None:
                return  # committed as pending: delivered on reconnect, or expired
            await self.end(command, CommandStatus.FAILED, str(exc))
            raise

    async def resume(self, command: Command) -> None:
        """Hand a stored `pending` command that nothing holds (`holds`) to its actor now.

        For a command whose hand-over was lost (an idempotent retry finds it);
        raises as `hand_over`. Cancellation: runs to its end, as `hold`.
        """
        with self.hold(command):
            await self.hand_over(command, once=True)

    async def cancel_unheld(self, command: Command, by: str) -> None:
        """Cancel a stored, unfinished command whose vehicle has no actor here (it waits).

        Recorded `cancelled` and published at once, unless an actor that
        started meanwhile has it now (then as `Hub.cancel`). Raises `MailboxFull`.
        """
        async with self._attach_lock:  # not while a starting actor loads it
            if not self._hub.cancel_here(command.id, command.vin, by, command.submitted_by):
                error = f"cancelled by {by} before it was sent"
                await self.end(command, CommandStatus.CANCELLED, error)

    async def end(self, command: Command, status: CommandStatus, error: str) -> None:
        """Record `command`'s final `status`, then publish it on its command and vehicle topics.

        Held through a database outage (written, then published, once it is
        back). A command already final keeps its status (the journal never
        moves it).
        """
        await end_command(
            self._journal, self._bus, command.id, status, error,
            vin=command.vin, submitted_by=command.submitted_by,
        )  # fmt: skip

    async def expire_waiting(
        self,
        backlog: CommandBacklog,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Every `expiry_sweep_s`, end commands whose vehicle stayed offline past their expiry."""
        task_status.started()
        while True:
            await trio.sleep(self._hub.config.expiry_sweep_s)
            if self._journal.outage is not None:
                continue  # the database does not answer: expire once it does
            async with self._attach_lock:
                try:
                    now = datetime.now(UTC)
                    connected = {actor.vin for actor in self._actors}
                    connected |= await self._leased_elsewhere(backlog, now)
                    expired = await backlog.expire_waiting(now, connected)
                except StorageUnavailable as exc:  # cannot tell who holds them: not now
                    log.warning("commands.expiry_skipped", reason=str(exc))
                    continue
                except Exception:
                    log.exception("commands.expiry_failed")
                    continue
            changes = [u.update for _, u in expired if isinstance(u.update, StatusChange)]
            if changes and self._journal.observer is not None:  # the backlog wrote these
                self._journal.observer.recorded((), changes)
            publish_ends(self._bus, expired)

    async def _leased_elsewhere(self, backlog: CommandBacklog, now: datetime) -> set[str]:
        """Scale-out: VINs with overdue waiting commands that another node holds (spared)."""
        leases = self._hub.leases
        if leases is None or not isinstance(backlog, DueWaiting):
            return set()
        due = await backlog.due_waiting_vins(now)
        return await leases.leased(due) if due else set()
