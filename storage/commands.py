"""The commands' store: the journal, the waiting backlog, command and event history,
idempotency lookups, and the scale-out nodes' command queries.

`CommandStore` implements the hub's `CommandJournal`, `CommandBacklog`,
`DueWaiting` and `Pingable` ports. Each method crosses the bridge once
(`storage.engine.Engine.run`) to run one transaction of `command_queries`,
`command_changes`, `cluster_queries` or `history`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from hub import Command, CommandEventRecord, CommandUpdate, StatusChange
from storage import cluster_queries, command_changes, command_queries, history
from storage.engine import Store
from storage.history import CommandFilter, Page

__all__ = ["CommandStore"]


class CommandStore(Store):
    """Commands, their events and statuses; see the module docstring for the ports
    and `Store` for the errors and cancellation.
    """

    async def ping(self) -> None:
        """Return once the database answers a query; raise `DatabaseUnavailable` if not."""
        await self._engine.ping()

    async def create_command(self, command: Command) -> None:
        """Store a new command as pending, with its "command.submitted" audit event.

        Both are committed, in one transaction, when this returns. Raises
        `UnknownVehicleError` if the VIN is not registered, `ConflictError` if
        the id is taken.
        """
        await self._run(command_queries.create_command, self._writer, command, self._engine.node_id)

    async def get_command(self, command_id: uuid.UUID) -> Command | None:
        """The command with this id, as stored (with its status), or None."""
        return await self._run(command_queries.get_command, self._reader, command_id)

    async def list_commands(
        self, wanted: CommandFilter, *, limit: int, offset: int = 0
    ) -> Page[Command]:
        """A page (newest first) of the commands `wanted` selects, with their total count."""
        return await self._run(history.list_commands, self._reader, wanted, limit, offset)

    async def find_idempotent(self, submitted_by: str, key: str) -> Command | None:
        """The command `submitted_by` sent with idempotency key `key` (with its
        `request_hash`), or None."""
        return await self._run(history.find_idempotent, self._reader, submitted_by, key)

    async def list_events(
        self, command_id: uuid.UUID, from_seq: int = 0
    ) -> list[CommandEventRecord]:
        """The command's stored events with `seq >= from_seq`, ordered by seq."""
        return await self._run(command_queries.list_events, self._reader, command_id, from_seq)

    async def waiting_commands(self, vin: str) -> list[Command]:
        """`vin`'s commands waiting for it to come online (pending, expiring), oldest first."""
        return await self._run(command_queries.waiting_commands, self._reader, vin)

    async def expire_waiting(
        self, now: datetime, spare: Collection[str]
    ) -> list[tuple[str, CommandUpdate]]:
        """Waiting commands past their expiry become `expired` (audited), except `spare` VINs'.

        Returns each command's VIN and its change, with its submitter.
        """
        return await self._run(command_changes.expire_waiting, self._writer, now, spare)

    async def command_with_events(
        self, command_id: uuid.UUID, from_seq: int = 0
    ) -> tuple[Command | None, list[CommandEventRecord]]:
        """The command and its events from `from_seq` (one bridge crossing; None, [] if absent).

        The command is read first, so when it is final the events are complete.
        """
        return await self._run(
            command_queries.command_with_events, self._reader, command_id, from_seq
        )

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> frozenset[uuid.UUID]:
        """Store new commands, events and status changes in one transaction.

        Returns once committed. New commands are stored as pending with their
        "command.submitted" audit events. Events already stored (same command
        id and seq) are ignored. Statuses only move forward: RUNNING sets
        `started_at` once; the first final status of a command sets
        `finished_at` and `error` and appends a "command.<status>" audit
        event; a change never moves a command that is already final. A new
        command whose submitter already used its `idempotency_key` is skipped
        (no row, no audit event) and its id returned; the rest is stored.
        """
        if commands or events or changes:
            return await self._run(
                command_queries.record,
                self._writer,
                commands,
                events,
                changes,
                self._engine.node_id,
            )
        return frozenset()

    async def interrupt_unfinished(
        self, at: datetime, reason: str
    ) -> list[tuple[str, CommandUpdate]]:
        """Mark this node's non-final commands interrupted, with `reason` and an audit event.

        Startup recovery. "This node's": stamped with `node_id`, or with no
        node (written before nodes were recorded); other nodes' commands are
        left alone. Commands waiting for an offline vehicle (pending, with an
        expiry) keep waiting. Returns each moved command's VIN and change.
        """
        return await self._run(
            command_changes.interrupt_unfinished,
            self._writer,
            at,
            reason,
            self._engine.node_id,
        )

    async def active_nodes(self) -> set[str]:
        """Scale-out: node ids stamped on active commands (not counting waiting ones)."""
        return await self._run(cluster_queries.active_nodes, self._reader)

    async def interrupt_node(
        self, node_id: str, at: datetime, reason: str, *, pending: bool = True
    ) -> list[tuple[str, CommandUpdate]]:
        """Scale-out: a dead node's active commands (only its dispatched ones with
        `pending=False`) become interrupted (idempotent, audited)."""
        return await self._run(
            cluster_queries.interrupt_node,
            self._writer,
            node_id,
            at,
            reason,
            pending=pending,
        )

    async def pending_of_node(self, node_id: str) -> list[Command]:
        """Scale-out: a node's pending commands without a ttl, oldest first."""
        return await self._run(cluster_queries.pending_of_node, self._reader, node_id)

    async def take_pending(self, command_id: uuid.UUID, node_id: str | None) -> bool:
        """Scale-out: whether the command is still `pending`; with `node_id`, also stamp
        that node (whose actor takes it) on it, in the same statement."""
        if node_id is None:
            return await self._run(cluster_queries.is_pending, self._reader, command_id)
        return await self._run(cluster_queries.stamp_pending, self._writer, command_id, node_id)

    async def due_waiting_vins(self, now: datetime) -> set[str]:
        """VINs of waiting commands due to expire at `now` (see `hub.ports.DueWaiting`)."""
        return await self._run(cluster_queries.due_waiting_vins, self._reader, now)
