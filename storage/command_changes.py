"""Moving commands' statuses forward, as asyncio coroutines: one group commit's changes,
and ending many commands at once.

`apply_changes` is the one place a command's status changes (statuses only
move forward; the first final status wins and is audited). `end_commands` is
the one transaction that ends a set of commands in bulk (startup recovery,
expiry of waiting commands, a dead node's commands): it selects the active
rows a condition names `FOR UPDATE` and applies one final change to each, so
two nodes racing over the same rows audit each command once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON, AuditNote, Command, CommandStatus, CommandUpdate, StatusChange
from storage.audit_chain import append_audit_rows
from storage.models import CommandModel

__all__ = [
    "ACTIVE",
    "Advance",
    "advances",
    "apply_changes",
    "end_commands",
    "expire_waiting",
    "final_audit_notes",
    "interrupt_unfinished",
    "not_waiting",
    "submitted_note",
]

#: The statuses of a command that is not final yet.
ACTIVE = tuple(s.value for s in CommandStatus if not s.is_final)
#: Why `expire_waiting` ends a command.
EXPIRED_ERROR = "the vehicle stayed offline past the command's ttl_s"


def submitted_note(command: Command) -> AuditNote:
    """The "command.submitted" audit event of a new command: what was asked, of which vehicle."""
    details: dict[str, JSON] = {"vin": command.vin, "name": command.name, "params": command.params}
    target = f"command:{command.id}"
    return AuditNote(
        command.submitted_at, command.submitted_by, "command.submitted", target, details
    )


def not_waiting() -> ColumnElement[bool]:
    """Commands that are not waiting for an offline vehicle (pending, with an expiry)."""
    c = CommandModel
    return ~((c.status == CommandStatus.PENDING.value) & c.expires_at.is_not(None))


async def end_commands(
    writer: AsyncEngine,
    where: ColumnElement[bool],
    status: CommandStatus,
    at: datetime,
    error: str,
    spare: Collection[str] = (),
) -> list[tuple[str, CommandUpdate]]:
    """End every active command `where` selects with final `status`, audited, in one transaction.

    Commands of the VINs in `spare` (a set) are left as they are: filtered
    here, never sent into SQL. Returns each ended command's VIN and its
    change with its submitter (what to publish), oldest command first.
    """
    c = CommandModel
    query = (
        select(c.id, c.vin, c.submitted_by)
        .where(c.status.in_(ACTIVE), where)
        .order_by(c.submitted_at, c.id)
    )
    async with writer.begin() as conn:
        rows = (await conn.execute(query.with_for_update())).all()
        rows = [row for row in rows if row.vin not in spare]
        changes = [StatusChange(row.id, status, at, error) for row in rows]
        if changes:
            await apply_changes(conn, changes)
    return [
        (row.vin, CommandUpdate(row.submitted_by, change))
        for row, change in zip(rows, changes, strict=True)
    ]


async def interrupt_unfinished(
    writer: AsyncEngine, at: datetime, reason: str, node_id: str | None
) -> list[tuple[str, CommandUpdate]]:
    """`node_id`'s active commands (and unstamped ones) become interrupted, audited.

    Commands waiting for an offline vehicle (pending, with an expiry) keep
    waiting. Returns each command's VIN and its change, with its submitter.
    """
    c = CommandModel
    held = c.node_id.is_(None) if node_id is None else (c.node_id == node_id) | c.node_id.is_(None)
    return await end_commands(writer, not_waiting() & held, CommandStatus.INTERRUPTED, at, reason)


async def expire_waiting(
    writer: AsyncEngine, now: datetime, spare: Collection[str]
) -> list[tuple[str, CommandUpdate]]:
    """Pending commands past their expiry, except for the VINs in `spare`, become expired.

    Returns each command's VIN and its change, with its submitter. `spare`
    (a set: every vehicle connected here, tens of thousands) never goes into
    SQL: the few overdue commands are filtered in `end_commands`. A `vin NOT
    IN (...)` of all of them cost SQLAlchemy and Postgres about 20 % of an
    idle hub's CPU at 5,000 vehicles, every `expiry_sweep_s`.
    """
    c = CommandModel
    due = (c.status == CommandStatus.PENDING.value) & c.expires_at.is_not(None)
    due = due & (c.expires_at <= now)
    return await end_commands(writer, due, CommandStatus.EXPIRED, now, EXPIRED_ERROR, spare)


_COMMANDS = cast(Table, CommandModel.__table__)
# Inlined literals, not an expanding IN: this statement runs with executemany.
_ACTIVE_ROW = (_COMMANDS.c.id == bindparam("b_id")) & _COMMANDS.c.status.in_(
    [literal_column(f"'{status}'") for status in ACTIVE]
)


def _kept(column: str) -> ColumnElement[object]:
    """The column's new value if the change sets it, else its value (NULL: not set)."""
    own = _COMMANDS.c[column]
    return func.coalesce(bindparam(f"b_{column}", type_=own.type), own)


#: One command's `Advance`: only an active row moves; `started_at` is set once.
_ADVANCE = (
    update(_COMMANDS)
    .where(_ACTIVE_ROW)
    .values(
        status=bindparam("b_status"),
        node_id=_kept("node_id"),
        started_at=func.coalesce(
            _COMMANDS.c.started_at, bindparam("b_started_at", type_=_COMMANDS.c.started_at.type)
        ),
        finished_at=_kept("finished_at"),
        error=_kept("error"),
    )
)
_LOCK_ACTIVE = (
    select(_COMMANDS.c.id, _COMMANDS.c.vin, _COMMANDS.c.node_id)
    .where(_COMMANDS.c.id.in_(bindparam("b_ids", expanding=True)), _COMMANDS.c.status.in_(ACTIVE))
    .with_for_update()
)


@dataclass(frozen=True, slots=True)
class Advance:
    """What one batch of changes does to one command, as one UPDATE of its row.

    `status` is the furthest it reaches (its first final status, else running,
    else dispatched); the other fields are what the changes on the way set
    (None: left as it is).
    """

    command_id: uuid.UUID
    status: CommandStatus
    #: Dispatched in this batch: the node now holding it.
    node_id: str | None
    #: Running in this batch: when (kept if it was already set).
    started_at: datetime | None
    #: Its first final change: when, and why.
    finished_at: datetime | None
    error: str | None

    def params(self) -> dict[str, object]:
        """The bind parameters of `_ADVANCE` (SQLAlchemy's names)."""
        return {
            "b_id": self.command_id, "b_status": self.status.value, "b_node_id": self.node_id,
            "b_started_at": self.started_at, "b_finished_at": self.finished_at,
            "b_error": self.error,
        }  # fmt: skip


def advances(changes: Sequence[StatusChange], node_id: str | None) -> list[Advance]:
    """Each changed command's `Advance`, in the order the commands first appear.

    As if the changes were applied one kind after the other, dispatched, then
    running, then final (the first final status wins), each to active rows only.
    """
    by_command: dict[uuid.UUID, list[StatusChange]] = {}
    for change in changes:
        if CommandStatus(change.status) is not CommandStatus.PENDING:  # nothing moves one back
            by_command.setdefault(change.command_id, []).append(change)
    return [_advance(command_id, own, node_id) for command_id, own in by_command.items()]


def _advance(command_id: uuid.UUID, changes: list[StatusChange], node_id: str | None) -> Advance:
    statuses = [CommandStatus(c.status) for c in changes]
    pairs = list(zip(changes, statuses, strict=True))
    final = next(((c, s) for c, s in pairs if s.is_final), None)
    running = next((c for c, s in pairs if s is CommandStatus.RUNNING), None)
    if final is not None:
        status = final[1]
    else:
        status = CommandStatus.DISPATCHED if running is None else CommandStatus.RUNNING
    return Advance(
        command_id=command_id,
        status=status,
        node_id=node_id if CommandStatus.DISPATCHED in statuses else None,
        started_at=running.at if running is not None else None,
        finished_at=final[0].at if final is not None else None,
        error=final[0].error if final is not None else None,
    )


async def apply_changes(
    conn: AsyncConnection,
    changes: Sequence[StatusChange],
    node_id: str | None = None,
    audits: list[AuditNote] | None = None,
) -> None:
    """Apply a batch of changes: one UPDATE per command (statuses only move forward).

    A dispatched command is stamped with `node_id`, the node now holding it.

    A final change appends its audit event ("command.<status>", with the
    command's VIN, its error and the node that held it) only if the command
    was still active, i.e. the first final status of a command wins. A
    dispatch is not audited: the final row names the node, and the
    `command.submitted` row says what was asked. Audit events go to `audits`
    when given (the caller appends them last), else straight in.
    (`storage.postgres_direct` does the same through asyncpg.)
    """
    moves = advances(changes, node_id)
    # One query (rows locked on Postgres, before any other row) for the commands that end.
    held = await _active(conn, [m.command_id for m in moves if m.finished_at is not None])
    await conn.execute(_ADVANCE, [m.params() for m in moves])
    rows = final_audit_notes(moves, held)
    if audits is None:
        await append_audit_rows(conn, rows)
    else:
        audits.extend(rows)


def final_audit_notes(
    moves: Sequence[Advance], held: Mapping[uuid.UUID, tuple[str, str | None]]
) -> list[AuditNote]:
    """The "command.<status>" audit note of each move that ended a command `held` (active;
    its VIN and holding node before the move)."""
    notes = []
    for move in moves:
        if move.finished_at is None or move.command_id not in held:
            continue
        vin, node = held[move.command_id]
        node = move.node_id or node
        details: dict[str, JSON] = {"vin": vin, "error": move.error}
        if node is not None:
            details["node"] = node
        target = f"command:{move.command_id}"
        notes.append(
            AuditNote(move.finished_at, "hub", f"command.{move.status.value}", target, details)
        )
    return notes


async def _active(
    conn: AsyncConnection, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """The VIN and holding node of each of these commands that is not final yet (rows
    locked on Postgres)."""
    if not ids:
        return {}
    rows = await conn.execute(_LOCK_ACTIVE, {"b_ids": list(ids)})
    return {row.id: (row.vin, row.node_id) for row in rows}
