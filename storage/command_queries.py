"""The commands' transactions, as asyncio coroutines: storing new commands, their events
and status changes (the journal's group commit), and reading them back.

Each function is one whole transaction on the asyncio side of the bridge;
`storage.commands.CommandStore` calls it with one crossing. How statuses
move (and how commands end in bulk) is `storage.command_changes`; listings
and idempotency lookups are in `storage.history`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import (
    JSON,
    AuditNote,
    Command,
    CommandEventRecord,
    CommandStatus,
    EventKind,
    SovdRequest,
    StatusChange,
)
from storage.audit_chain import append_audit_rows
from storage.command_changes import apply_changes, submitted_note
from storage.errors import ConflictError, StorageError, UnknownVehicleError
from storage.models import CommandEventModel, CommandModel
from storage.postgres_direct import record as record_on_postgres
from storage.vehicle_queries import find_vehicle

__all__ = [
    "COMMAND_COLUMNS",
    "command_with_events",
    "create_command",
    "get_command",
    "list_events",
    "record",
    "sovd_request",
    "stored_command",
    "waiting_commands",
]

_COMMANDS = cast(Table, CommandModel.__table__)
_EVENTS = cast(Table, CommandEventModel.__table__)
_INSERT_COMMANDS = insert(_COMMANDS)


async def create_command(writer: AsyncEngine, command: Command, node_id: str | None = None) -> None:
    try:
        async with writer.begin() as conn:
            refused = await _insert_commands(conn, [command], node_id)
    except IntegrityError as exc:
        # Only on this error path: is it the VIN (foreign key) or the id (primary key)?
        if await find_vehicle(writer, command.vin) is None:
            raise UnknownVehicleError(f"vehicle {command.vin} is not registered") from exc
        raise ConflictError(f"command {command.id} already exists") from exc
    if refused:
        raise ConflictError(
            f"{command.submitted_by} already used idempotency key {command.idempotency_key!r}"
        )


async def _insert_commands(
    conn: AsyncConnection,
    commands: Sequence[Command],
    node_id: str | None = None,
    audits: list[AuditNote] | None = None,
) -> frozenset[uuid.UUID]:
    """New commands as pending (held by `node_id`), each with its "command.submitted" audit event.

    A command whose (submitted_by, idempotency_key) is taken is skipped, not
    an error, so a racing duplicate cannot fail the other commands of a
    group commit; the ids of the skipped ones are returned.
    """
    rows = [
        {
            "id": c.id,
            "vin": c.vin,
            "submitted_by": c.submitted_by,
            "name": c.name,
            "params": c.params,
            "sovd": {
                "method": c.sovd.method,
                "path": c.sovd.path,
                "query": dict(c.sovd.query),
                "body": c.sovd.body,
            },
            "status": CommandStatus.PENDING.value,
            "timeout_s": c.timeout_s,
            "submitted_at": c.submitted_at,
            "expires_at": c.expires_at,
            "idempotency_key": c.idempotency_key,
            "request_hash": c.request_hash,
            "node_id": node_id,
        }
        for c in commands
    ]
    plain = [row for row in rows if row["idempotency_key"] is None]
    keyed = [row for row in rows if row["idempotency_key"] is not None]
    if plain:
        await conn.execute(_INSERT_COMMANDS, plain)
    refused: frozenset[uuid.UUID] = frozenset()
    if keyed:
        statement = _insert_keyed(conn.dialect.name)
        stored = set((await conn.execute(statement, keyed)).scalars())
        refused = frozenset(c.id for c in commands if c.idempotency_key and c.id not in stored)
    submitted = [submitted_note(c) for c in commands if c.id not in refused]
    if audits is None:
        await append_audit_rows(conn, submitted)
    else:  # the caller appends them last (see `storage.audit_chain.lock_head`)
        audits.extend(submitted)
    return refused


#: The columns `stored_command` reads, in every query that returns commands.
COMMAND_COLUMNS = (
    CommandModel.id,
    CommandModel.vin,
    CommandModel.submitted_by,
    CommandModel.name,
    CommandModel.params,
    CommandModel.sovd,
    CommandModel.status,
    CommandModel.error,
    CommandModel.timeout_s,
    CommandModel.submitted_at,
    CommandModel.started_at,
    CommandModel.finished_at,
    CommandModel.expires_at,
)


async def get_command(reader: AsyncEngine, command_id: uuid.UUID) -> Command | None:
    query = select(*COMMAND_COLUMNS).where(CommandModel.id == command_id)
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else stored_command(row)


def stored_command(row: Row[*tuple[Any, ...]]) -> Command:
    """The `Command` of a row with the `COMMAND_COLUMNS`, by name, with its status."""
    return Command(
        id=row.id,
        vin=row.vin,
        name=row.name,
        params=row.params,
        sovd=sovd_request(row.sovd),
        timeout_s=row.timeout_s,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        expires_at=row.expires_at,
        status=CommandStatus(row.status),
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def waiting_commands(reader: AsyncEngine, vin: str) -> list[Command]:
    """`vin`'s commands waiting for it (pending, with an expiry), oldest first."""
    c = CommandModel
    query = (
        select(*COMMAND_COLUMNS)
        .where(c.vin == vin, c.status == CommandStatus.PENDING.value, c.expires_at.is_not(None))
        .order_by(c.submitted_at)
    )
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [stored_command(row) for row in rows]


async def list_events(
    reader: AsyncEngine, command_id: uuid.UUID, from_seq: int
) -> list[CommandEventRecord]:
    e = CommandEventModel
    query = (
        select(e.seq, e.kind, e.status, e.body, e.final, e.received_at)
        .where(e.command_id == command_id, e.seq >= from_seq)
        .order_by(e.seq)
    )
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        CommandEventRecord(command_id, seq, EventKind(kind), status, body, final, received_at)
        for seq, kind, status, body, final, received_at in rows
    ]


async def command_with_events(
    reader: AsyncEngine, command_id: uuid.UUID, from_seq: int
) -> tuple[Command | None, list[CommandEventRecord]]:
    # The command first: if it is final then, all its events are already stored.
    command = await get_command(reader, command_id)
    if command is None:
        return None, []
    return command, await list_events(reader, command_id, from_seq)


async def record(
    writer: AsyncEngine,
    commands: Sequence[Command],
    events: Sequence[CommandEventRecord],
    changes: Sequence[StatusChange],
    node_id: str | None = None,
) -> frozenset[uuid.UUID]:
    """One group commit; returns the new commands refused for a reused idempotency key.

    New and dispatched commands are stamped with `node_id` (the node that holds them).
    On Postgres it runs through asyncpg directly (`storage.postgres_direct`).
    """
    if writer.dialect.name == "postgresql":
        return await record_on_postgres(writer, commands, events, changes, node_id)
    refused: frozenset[uuid.UUID] = frozenset()
    audits: list[AuditNote] = []
    async with writer.begin() as conn:
        if commands:
            refused = await _insert_commands(conn, commands, node_id, audits)
        if events:
            rows = [
                {
                    "command_id": e.command_id,
                    "seq": e.seq,
                    "kind": EventKind(e.kind).value,
                    "status": e.status,
                    "body": e.body,
                    "final": e.final,
                    "received_at": e.received_at,
                }
                for e in events
            ]
            await conn.execute(_insert_events_ignoring_duplicates(conn), rows)
        if changes:
            await apply_changes(conn, changes, node_id, audits)
        await append_audit_rows(conn, audits)  # last: it locks the audit chain's head
    return refused


def _insert_events_ignoring_duplicates(conn: AsyncConnection) -> Insert:
    return _ignoring_conflicts(conn.dialect.name, _EVENTS, ("command_id", "seq"))


@functools.cache
def _insert_keyed(dialect: str) -> Insert:
    """New commands with an idempotency key: a taken key skips the row (ids returned)."""
    columns = ("submitted_by", "idempotency_key")
    return _ignoring_conflicts(dialect, _COMMANDS, columns).returning(_COMMANDS.c.id)


@functools.cache
def _ignoring_conflicts(dialect: str, table: Table, columns: tuple[str, ...]) -> Insert:
    """INSERT ... ON CONFLICT (columns) DO NOTHING in `dialect`, built once per dialect."""
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(columns))
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=list(columns))
    raise StorageError(f"database dialect {dialect!r} is not supported")


def sovd_request(stored: dict[str, JSON]) -> SovdRequest:
    query = stored.get("query") or {}
    return SovdRequest(
        method=str(stored["method"]),
        path=str(stored["path"]),
        query=cast(dict[str, str], query),
        body=stored.get("body"),
    )
