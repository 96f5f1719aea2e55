"""The transactions of `Database`, as asyncio coroutines.

Each function is one whole transaction on the asyncio side of the bridge;
`storage.database.Database` calls it with a single crossing. `reader` is the
engine for read-only work, `writer` the same pool with the write option
(on SQLite it begins with `BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    EventKind,
    SovdRequest,
    StatusChange,
    VehicleCredentials,
)
from storage.audit_chain import AuditRow, append_audit_rows
from storage.errors import (
    ConflictError,
    StorageError,
    UnknownVehicleError,
    VehicleExistsError,
)
from storage.models import (
    AuditEventModel,
    CommandEventModel,
    CommandModel,
    VehicleModel,
)
from storage.records import AuditEvent, CommandRow, Vehicle

_ACTIVE = tuple(s.value for s in CommandStatus if not s.is_final)


async def ping(reader: AsyncEngine) -> None:
    async with reader.connect() as conn:
        await conn.execute(text("SELECT 1"))


# Users and their sessions: storage/accounts.py.


# -- vehicles ----------------------------------------------------------------


async def add_vehicles(
    writer: AsyncEngine, vehicles: Sequence[tuple[Vehicle, str]], actor: str
) -> None:
    """Insert vehicles (each with its token hash) and their audit events in one transaction."""
    rows = [
        {
            "vin": v.vin,
            "make": v.make,
            "model": v.model,
            "year": v.year,
            "metadata": v.metadata,
            "token_hash": token_hash,
            "enabled": v.enabled,
            "created_at": v.created_at,
        }
        for v, token_hash in vehicles
    ]
    audits: list[AuditRow] = []
    for v, _ in vehicles:
        target = f"vehicle:{v.vin}"
        details: dict[str, JSON] = {"make": v.make, "model": v.model, "year": v.year}
        audits.append(
            {"at": v.created_at, "actor": actor, "action": "vehicle.added", "target": target,
             "details": details}
        )  # fmt: skip
        # Its first credential: rotations are "vehicle.token_rotated".
        audits.append(
            {"at": v.created_at, "actor": actor, "action": "vehicle.token_issued",
             "target": target, "details": {}}
        )  # fmt: skip
    try:
        async with writer.begin() as conn:
            await conn.execute(insert(VehicleModel), rows)
            await append_audit_rows(conn, audits)
    except IntegrityError as exc:
        if len(vehicles) == 1:
            raise VehicleExistsError(f"vehicle {vehicles[0][0].vin} is already registered") from exc
        vins = ", ".join(v.vin for v, _ in vehicles[:3]) + (", ..." if len(vehicles) > 3 else "")
        raise VehicleExistsError(f"a vehicle among {vins} is already registered") from exc


async def update_vehicle(
    writer: AsyncEngine, vin: str, values: dict[str, object], action: str, actor: str
) -> None:
    """Change a vehicle's columns and audit `action` by `actor`, in one transaction."""
    now = datetime.now(UTC)
    async with writer.begin() as conn:
        result = await conn.execute(
            update(VehicleModel).where(VehicleModel.vin == vin).values(**values)
        )
        if result.rowcount != 1:
            raise UnknownVehicleError(f"vehicle {vin} is not registered")
        await _audit(conn, now, actor, action, f"vehicle:{vin}", {})


async def find_vehicle(reader: AsyncEngine, vin: str) -> VehicleCredentials | None:
    query = select(VehicleModel.token_hash, VehicleModel.enabled).where(VehicleModel.vin == vin)
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else VehicleCredentials(vin, row.token_hash, row.enabled)


async def find_vehicles(
    reader: AsyncEngine, vins: Collection[str]
) -> dict[str, VehicleCredentials]:
    v = VehicleModel
    query = select(v.vin, v.token_hash, v.enabled).where(v.vin.in_(list(vins)))
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.vin: VehicleCredentials(row.vin, row.token_hash, row.enabled) for row in rows}


async def find_vehicles_by_token(
    reader: AsyncEngine, token_hashes: Collection[str]
) -> list[VehicleCredentials]:
    v = VehicleModel
    query = select(v.vin, v.token_hash, v.enabled).where(v.token_hash.in_(list(token_hashes)))
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [VehicleCredentials(row.vin, row.token_hash, row.enabled) for row in rows]


async def record_seen(writer: AsyncEngine, seen: Mapping[str, datetime]) -> None:
    table = cast(Table, VehicleModel.__table__)
    last_seen = table.c.last_seen_at
    statement = (
        update(table)
        .where(table.c.vin == bindparam("b_vin"))
        .where(last_seen.is_(None) | (last_seen < bindparam("b_at")))
        .values(last_seen_at=bindparam("b_at"))
    )
    async with writer.begin() as conn:
        await conn.execute(statement, [{"b_vin": vin, "b_at": at} for vin, at in seen.items()])


# -- commands ----------------------------------------------------------------


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
    audits: list[AuditRow] | None = None,
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
        await conn.execute(insert(_COMMANDS), plain)
    refused: frozenset[uuid.UUID] = frozenset()
    if keyed:
        statement = _insert_ignoring_conflicts(
            conn, _COMMANDS, ["submitted_by", "idempotency_key"]
        ).returning(_COMMANDS.c.id)
        stored = set((await conn.execute(statement, keyed)).scalars())
        refused = frozenset(c.id for c in commands if c.idempotency_key and c.id not in stored)
    submitted: list[AuditRow] = [
        {
            "at": c.submitted_at,
            "actor": c.submitted_by,
            "action": "command.submitted",
            "target": f"command:{c.id}",
            "details": {"vin": c.vin, "name": c.name, "params": c.params},
        }
        for c in commands
        if c.id not in refused
    ]
    if audits is None:
        await append_audit_rows(conn, submitted)
    else:  # the caller appends them last (see `storage.audit_chain.lock_head`)
        audits.extend(submitted)
    return refused


async def get_command(reader: AsyncEngine, command_id: uuid.UUID) -> CommandRow | None:
    c = CommandModel
    query = select(
        c.id,
        c.vin,
        c.submitted_by,
        c.name,
        c.params,
        c.sovd,
        c.status,
        c.error,
        c.timeout_s,
        c.submitted_at,
        c.started_at,
        c.finished_at,
        c.expires_at,
    ).where(c.id == command_id)
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else command_row(row)


def command_row(row: Row[*tuple[Any, ...]]) -> CommandRow:
    """A `CommandRow` from a row with the command columns, by name."""
    return CommandRow(
        id=row.id,
        vin=row.vin,
        submitted_by=row.submitted_by,
        name=row.name,
        params=row.params,
        sovd=_sovd_request(row.sovd),
        status=CommandStatus(row.status),
        error=row.error,
        timeout_s=row.timeout_s,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
    )


async def waiting_commands(reader: AsyncEngine, vin: str) -> list[Command]:
    """`vin`'s commands waiting for it (pending, with an expiry), oldest first."""
    c = CommandModel
    query = (
        select(
            c.id, c.vin, c.name, c.params, c.sovd, c.timeout_s, c.submitted_by,
            c.submitted_at, c.expires_at,
        )
        .where(c.vin == vin, c.status == CommandStatus.PENDING.value, c.expires_at.is_not(None))
        .order_by(c.submitted_at)
    )  # fmt: skip
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Command(
            id=row.id,
            vin=row.vin,
            name=row.name,
            params=row.params,
            sovd=_sovd_request(row.sovd),
            timeout_s=row.timeout_s,
            submitted_by=row.submitted_by,
            submitted_at=row.submitted_at,
            expires_at=row.expires_at,
        )
        for row in rows
    ]


async def expire_waiting(
    writer: AsyncEngine, now: datetime, spare: Collection[str]
) -> list[tuple[str, CommandUpdate]]:
    """Pending commands past their expiry, except for the VINs in `spare`, become expired.

    Returns each command's VIN and its change, with its submitter.
    """
    c = CommandModel
    due = select(c.id, c.vin, c.submitted_by).where(
        c.status == CommandStatus.PENDING.value, c.expires_at.is_not(None), c.expires_at <= now
    )
    async with writer.begin() as conn:
        rows = (await conn.execute(due.with_for_update())).all()
        error = "the vehicle stayed offline past the command's ttl_s"
        kept = [row for row in rows if row.vin not in spare]
        changes = [StatusChange(row.id, EXPIRED, now, error) for row in kept]
        if changes:
            await _apply_changes(conn, changes)
    return [
        (row.vin, CommandUpdate(row.submitted_by, change))
        for row, change in zip(kept, changes, strict=True)
    ]


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
) -> tuple[CommandRow | None, list[CommandEventRecord]]:
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
    """
    refused: frozenset[uuid.UUID] = frozenset()
    audits: list[AuditRow] = []
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
            await _apply_changes(conn, changes, node_id, audits)
        await append_audit_rows(conn, audits)  # last: it locks the audit chain's head
    return refused


async def interrupt_unfinished(
    writer: AsyncEngine, at: datetime, reason: str, node_id: str | None
) -> list[tuple[str, CommandUpdate]]:
    """`node_id`'s active commands (and unstamped ones) become interrupted, audited.

    Commands waiting for an offline vehicle (pending, with an expiry) keep
    waiting. Returns each command's VIN and its change, with its submitter.
    """
    c = CommandModel
    waiting = (c.status == CommandStatus.PENDING.value) & c.expires_at.is_not(None)
    held = c.node_id.is_(None) if node_id is None else (c.node_id == node_id) | c.node_id.is_(None)
    query = (
        select(c.id, c.vin, c.submitted_by)
        .where(c.status.in_(_ACTIVE), ~waiting, held)
        .order_by(c.submitted_at, c.id)
    )
    async with writer.begin() as conn:
        rows = (await conn.execute(query.with_for_update())).all()
        changes = [StatusChange(row.id, CommandStatus.INTERRUPTED, at, reason) for row in rows]
        if changes:
            await _apply_changes(conn, changes)
    return [
        (row.vin, CommandUpdate(row.submitted_by, change))
        for row, change in zip(rows, changes, strict=True)
    ]


EXPIRED = CommandStatus.EXPIRED
_COMMANDS = cast(Table, CommandModel.__table__)
# Inlined literals, not an expanding IN: these statements run with executemany.
_ACTIVE_ROW = (_COMMANDS.c.id == bindparam("b_id")) & _COMMANDS.c.status.in_(
    [literal_column(f"'{status}'") for status in _ACTIVE]
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
_SET_FINAL = (
    update(_COMMANDS)
    .where(_ACTIVE_ROW)
    .values(status=bindparam("b_status"), finished_at=bindparam("b_at"), error=bindparam("b_error"))
)


async def _apply_changes(
    conn: AsyncConnection,
    changes: Sequence[StatusChange],
    node_id: str | None = None,
    audits: list[AuditRow] | None = None,
) -> None:
    """Apply a batch of changes with one statement per kind (statuses only move forward).

    A dispatched command is stamped with `node_id`, the node now holding it.

    A dispatch and a final change append their audit events ("command.dispatched",
    "command.<status>", with the command's VIN) only if the command was still
    active, i.e. the first final status of a command wins. Audit events go
    to `audits` when given (the caller appends them last), else straight in.
    """
    phases: dict[str, list[StatusChange]] = {"dispatched": [], "running": [], "final": []}
    for change in changes:
        status = CommandStatus(change.status)
        phase = "final" if status.is_final else status.value
        phases.setdefault(phase, []).append(change)
    # One query (rows locked on Postgres) for the commands whose changes are audited.
    vins = await _active_vins(conn, [*phases["dispatched"], *phases["final"]])
    node: dict[str, JSON] = {} if node_id is None else {"node": node_id}
    rows: list[AuditRow] = [
        {
            "at": c.at,
            "actor": "hub",
            "action": "command.dispatched",
            "target": f"command:{c.command_id}",
            "details": {"vin": vins[c.command_id], **node},
        }
        for c in phases["dispatched"]
        if c.command_id in vins
    ]
    for phase, statement in (("dispatched", _SET_DISPATCHED), ("running", _SET_RUNNING)):
        if phases[phase]:
            params = [
                {"b_id": c.command_id, "b_status": c.status.value, "b_at": c.at, "b_node": node_id}
                for c in phases[phase]
            ]
            await conn.execute(statement, params)
    final = _first_changes(phases["final"], vins)
    if final:
        final_params = [
            {"b_id": c.command_id, "b_status": c.status.value, "b_at": c.at, "b_error": c.error}
            for c in final
        ]
        await conn.execute(_SET_FINAL, final_params)
        rows.extend(
            {
                "at": c.at,
                "actor": "hub",
                "action": f"command.{c.status.value}",
                "target": f"command:{c.command_id}",
                "details": {"vin": vins[c.command_id], "error": c.error},
            }
            for c in final
        )
    if audits is None:
        await append_audit_rows(conn, rows)
    else:
        audits.extend(rows)


async def _active_vins(conn: AsyncConnection, changes: list[StatusChange]) -> dict[uuid.UUID, str]:
    """The VIN of each command among `changes` that is not final yet (rows locked on Postgres)."""
    if not changes:
        return {}
    ids = {c.command_id for c in changes}
    query = select(_COMMANDS.c.id, _COMMANDS.c.vin).where(
        _COMMANDS.c.id.in_(ids), _COMMANDS.c.status.in_(_ACTIVE)
    )
    return {row.id: row.vin for row in await conn.execute(query.with_for_update())}


def _first_changes(
    changes: list[StatusChange], active: Mapping[uuid.UUID, str]
) -> list[StatusChange]:
    """The first change of each command in `active` (the first final status wins)."""
    first: dict[uuid.UUID, StatusChange] = {}
    for change in changes:
        if change.command_id in active:
            first.setdefault(change.command_id, change)
    return list(first.values())


def _insert_events_ignoring_duplicates(conn: AsyncConnection) -> Insert:
    events = cast(Table, CommandEventModel.__table__)
    return _insert_ignoring_conflicts(conn, events, ["command_id", "seq"])


def _insert_ignoring_conflicts(conn: AsyncConnection, table: Table, columns: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (columns) DO NOTHING, in the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=columns)
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=columns)
    raise StorageError(f"database dialect {dialect!r} is not supported")


def _sovd_request(stored: dict[str, JSON]) -> SovdRequest:
    query = stored.get("query") or {}
    return SovdRequest(
        method=str(stored["method"]),
        path=str(stored["path"]),
        query=cast(dict[str, str], query),
        body=stored.get("body"),
    )


# -- audit -------------------------------------------------------------------


async def append_audit(
    writer: AsyncEngine, actor: str, action: str, target: str, details: dict[str, JSON]
) -> None:
    async with writer.begin() as conn:
        await _audit(conn, datetime.now(UTC), actor, action, target, details)


async def append_audits(writer: AsyncEngine, rows: Sequence[AuditRow]) -> None:
    """Append `rows`, in order, in one transaction."""
    async with writer.begin() as conn:
        await append_audit_rows(conn, rows)


async def list_audit(reader: AsyncEngine, target: str | None) -> list[AuditEvent]:
    a = AuditEventModel
    query = select(a.id, a.at, a.actor, a.action, a.target, a.details).order_by(a.id)
    if target is not None:
        query = query.where(a.target == target)
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditEvent(*row) for row in rows]


async def _audit(
    conn: AsyncConnection,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, JSON],
) -> None:
    """Append one audit event to the connection's chain (as the transaction's last write)."""
    row: AuditRow = {
        "at": at, "actor": actor, "action": action, "target": target, "details": details
    }  # fmt: skip
    await append_audit_rows(conn, [row])
