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
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON, AuditNote, CommandStatus, CommandUpdate, StatusChange
from storage.audit_chain import append_audit_rows
from storage.models import CommandModel

__all__ = [
    "ACTIVE",
    "apply_changes",
    "end_commands",
    "expire_waiting",
    "final_audit_notes",
    "first_changes",
    "interrupt_unfinished",
    "not_waiting",
    "phases_of",
]

#: The statuses of a command that is not final yet.
ACTIVE = tuple(s.value for s in CommandStatus if not s.is_final)
#: Why `expire_waiting` ends a command.
EXPIRED_ERROR = "the vehicle stayed offline past the command's ttl_s"


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
# Inlined literals, not an expanding IN: these statements run with executemany.
_ACTIVE_ROW = (_COMMANDS.c.id == bindparam("b_id")) & _COMMANDS.c.status.in_(
    [literal_column(f"'{status}'") for status in ACTIVE]
)
# A dispatched command is held by the node that dispatched it (None: keep the stamp).
_SET_DISPATCHED = (
    update(_COMMANDS)
    .where(_ACTIVE_ROW)
    .values(
        status=bindparam("b_status"),
        node_id=func.coalesce(
            bindparam("b_node", type_=_COMMANDS.c.node_id.type), _COMMANDS.c.node_id
        ),
    )
)
_SET_RUNNING = (
    update(_COMMANDS)
    .where(_ACTIVE_ROW)
    .values(
        status=bindparam("b_status"),
        started_at=func.coalesce(
            _COMMANDS.c.started_at, bindparam("b_at", type_=_COMMANDS.c.started_at.type)
        ),
    )
)
_LOCK_ACTIVE = (
    select(_COMMANDS.c.id, _COMMANDS.c.vin, _COMMANDS.c.node_id)
    .where(_COMMANDS.c.id.in_(bindparam("b_ids", expanding=True)), _COMMANDS.c.status.in_(ACTIVE))
    .with_for_update()
)
_SET_FINAL = (
    update(_COMMANDS)
    .where(_ACTIVE_ROW)
    .values(status=bindparam("b_status"), finished_at=bindparam("b_at"), error=bindparam("b_error"))
)


async def apply_changes(
    conn: AsyncConnection,
    changes: Sequence[StatusChange],
    node_id: str | None = None,
    audits: list[AuditNote] | None = None,
) -> None:
    """Apply a batch of changes with one statement per kind (statuses only move forward).

    A dispatched command is stamped with `node_id`, the node now holding it.

    A final change appends its audit event ("command.<status>", with the
    command's VIN, its error and the node that held it) only if the command
    was still active, i.e. the first final status of a command wins. A
    dispatch is not audited: the final row names the node, and the
    `command.submitted` row says what was asked. Audit events go to `audits`
    when given (the caller appends them last), else straight in.
    """
    phases = phases_of(changes)
    # One query (rows locked on Postgres, before any other row) for the commands that end.
    held = await _active(conn, phases["final"])
    for phase, statement in (("dispatched", _SET_DISPATCHED), ("running", _SET_RUNNING)):
        if phases[phase]:
            params = [
                {"b_id": c.command_id, "b_status": c.status.value, "b_at": c.at, "b_node": node_id}
                for c in phases[phase]
            ]
            await conn.execute(statement, params)
    rows = await _end(conn, phases["final"], held)
    if audits is None:
        await append_audit_rows(conn, rows)
    else:
        audits.extend(rows)


async def _end(
    conn: AsyncConnection,
    changes: list[StatusChange],
    held: Mapping[uuid.UUID, tuple[str, str | None]],
) -> list[AuditNote]:
    """Apply the first final change of each command `held` (active); their audit notes."""
    final = first_changes(changes, held)
    if final:
        params = [
            {"b_id": c.command_id, "b_status": c.status.value, "b_at": c.at, "b_error": c.error}
            for c in final
        ]
        await conn.execute(_SET_FINAL, params)
    return final_audit_notes(final, held)


def phases_of(changes: Sequence[StatusChange]) -> dict[str, list[StatusChange]]:
    """The changes by what they set: "dispatched", "running" or "final", each in order."""
    phases: dict[str, list[StatusChange]] = {"dispatched": [], "running": [], "final": []}
    for change in changes:
        status = CommandStatus(change.status)
        phase = "final" if status.is_final else status.value
        phases.setdefault(phase, []).append(change)
    return phases


def final_audit_notes(
    final: Sequence[StatusChange], held: Mapping[uuid.UUID, tuple[str, str | None]]
) -> list[AuditNote]:
    """The "command.<status>" audit note of each applied final change (`held`: VIN, node)."""
    notes = []
    for c in final:
        vin, node = held[c.command_id]
        details: dict[str, JSON] = {"vin": vin, "error": c.error}
        if node is not None:
            details["node"] = node
        notes.append(
            AuditNote(
                at=c.at,
                actor="hub",
                action=f"command.{c.status.value}",
                target=f"command:{c.command_id}",
                details=details,
            )
        )
    return notes


async def _active(
    conn: AsyncConnection, changes: list[StatusChange]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """The VIN and holding node of each command among `changes` that is not final yet (rows
    locked on Postgres)."""
    if not changes:
        return {}
    ids = list({c.command_id for c in changes})
    rows = await conn.execute(_LOCK_ACTIVE, {"b_ids": ids})
    return {row.id: (row.vin, row.node_id) for row in rows}


def first_changes(
    changes: list[StatusChange], active: Mapping[uuid.UUID, object]
) -> list[StatusChange]:
    """The first change of each command in `active` (the first final status wins)."""
    first: dict[uuid.UUID, StatusChange] = {}
    for change in changes:
        if change.command_id in active:
            first.setdefault(change.command_id, change)
    return list(first.values())
