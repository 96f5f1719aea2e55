"""Scale-out queries: what the surviving nodes need to clean up after a dead one.

`interrupt_node` is idempotent: it ends the dead node's commands through
`storage.command_changes.end_commands`, so two janitors racing over the same
dead node audit each command once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import Command, CommandStatus, CommandUpdate
from storage import postgres_direct
from storage.command_changes import ACTIVE, end_commands, not_waiting
from storage.command_queries import COMMAND_COLUMNS, stored_command
from storage.models import CommandModel

__all__ = [
    "active_nodes",
    "due_waiting_vins",
    "interrupt_node",
    "is_pending",
    "pending_of_node",
    "stamp_pending",
]


async def active_nodes(reader: AsyncEngine) -> set[str]:
    """The node ids stamped on active commands (not counting those waiting with a ttl)."""
    c = CommandModel
    query = (
        select(c.node_id)
        .where(c.status.in_(ACTIVE), not_waiting(), c.node_id.is_not(None))
        .distinct()
    )
    async with reader.connect() as conn:
        return {row[0] for row in (await conn.execute(query)).all() if row[0] is not None}


async def interrupt_node(
    writer: AsyncEngine, node_id: str, at: datetime, reason: str, *, pending: bool = True
) -> list[tuple[str, CommandUpdate]]:
    """`node_id`'s active commands (not those waiting with a ttl) become interrupted, audited;
    with `pending=False` only those it dispatched (pending ones can still be delivered).

    Returns each command's VIN and its change, with its submitter.
    """
    c = CommandModel
    statuses = [s for s in ACTIVE if pending or s != CommandStatus.PENDING.value]
    held = c.status.in_(statuses) & not_waiting() & (c.node_id == node_id)
    return await end_commands(writer, held, CommandStatus.INTERRUPTED, at, reason)


async def due_waiting_vins(reader: AsyncEngine, now: datetime) -> set[str]:
    """VINs of waiting commands (pending, with an expiry) due at or before `now`."""
    c = CommandModel
    query = (
        select(c.vin)
        .where(
            c.status == CommandStatus.PENDING.value, c.expires_at.is_not(None), c.expires_at <= now
        )
        .distinct()
    )
    async with reader.connect() as conn:
        return {row[0] for row in (await conn.execute(query)).all()}


async def pending_of_node(reader: AsyncEngine, node_id: str) -> list[Command]:
    """`node_id`'s pending commands without a ttl, oldest first."""
    c = CommandModel
    query = (
        select(*COMMAND_COLUMNS)
        .where(
            c.status == CommandStatus.PENDING.value, c.expires_at.is_(None), c.node_id == node_id
        )
        .order_by(c.submitted_at, c.id)
    )
    async with reader.connect() as conn:
        return [stored_command(row) for row in (await conn.execute(query)).all()]


async def is_pending(reader: AsyncEngine, command_id: uuid.UUID) -> bool:
    """Whether the command is stored and still pending (on Postgres, through asyncpg)."""
    if reader.dialect.name == "postgresql":
        return await postgres_direct.is_pending(reader, command_id)
    c = CommandModel
    query = select(c.id).where(c.id == command_id, c.status == CommandStatus.PENDING.value)
    async with reader.connect() as conn:
        return (await conn.execute(query)).first() is not None


async def stamp_pending(writer: AsyncEngine, command_id: uuid.UUID, node_id: str) -> bool:
    """Stamp `node_id` (the node whose actor takes it) on a still-pending command;
    False if it is not pending (ended, dispatched or unknown). On Postgres, through asyncpg."""
    if writer.dialect.name == "postgresql":
        return await postgres_direct.stamp_pending(writer, command_id, node_id)
    c = CommandModel
    query = (
        update(c)
        .where(c.id == command_id, c.status == CommandStatus.PENDING.value)
        .values(node_id=node_id)
    )
    async with writer.begin() as conn:
        return (await conn.execute(query)).rowcount == 1
