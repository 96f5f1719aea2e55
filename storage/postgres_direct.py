"""The hot transactions on Postgres, straight through asyncpg.

`command_queries.record`, the journal's group commit, is the transaction
every command's life goes through (new commands, their events, status
changes, audit rows), about two per command at 100 commands/s; a vehicle's
connect runs three more (`vehicle_queries.find_vehicles_by_token`,
`vehicle_queries.record_seen` and `storage.audit`'s append of the
`vehicle.connected` rows). Through SQLAlchemy Core a statement costs about
twice what it costs through asyncpg (issue 13: 770-930 us against 443 us of
CPU for a transaction of three statements, measured on this machine), so on
Postgres they run here, on the pooled connection's own asyncpg connection,
with prepared statements (asyncpg's statement cache), one pipelined round
trip per `executemany` and the lookup as one statement without BEGIN and
ROLLBACK. SQLite keeps the Core versions.

Each does what its Core version does (the same rows, the same conditions,
the same audit chain), and the storage tests run both on every change.
Driver errors leave as asyncpg's, translated by
`storage.errors.translate_errors`; after a broken connection the pool
replaces it and every older one, as SQLAlchemy does on a disconnect. The
statements are counted in `Engine.statistics()` like SQLAlchemy's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from hub import (
    JSON,
    AuditNote,
    Command,
    CommandEventRecord,
    CommandStatus,
    EventKind,
    StatusChange,
    VehicleCredentials,
)
from storage.audit_chain import GENESIS_HASH, chain_of, chained_values, head_written, wrote_head
from storage.command_changes import ACTIVE, advances, final_audit_notes, submitted_note
from storage.engine import count_driver_work
from storage.errors import is_connection_failure

__all__ = [
    "append_audits",
    "find_vehicles_by_token",
    "is_pending",
    "record",
    "record_seen",
    "stamp_pending",
]

_ACTIVE_SQL = ", ".join(f"'{status}'" for status in ACTIVE)
_COMMAND_COLUMNS = (
    "id, vin, submitted_by, name, params, sovd, status, timeout_s, submitted_at, "
    "expires_at, idempotency_key, request_hash, node_id"
)
_COMMAND_VALUES = "$1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13"
_INSERT_COMMANDS = f"INSERT INTO commands ({_COMMAND_COLUMNS}) VALUES ({_COMMAND_VALUES})"
_INSERT_KEYED = (
    f"{_INSERT_COMMANDS} ON CONFLICT (submitted_by, idempotency_key) DO NOTHING RETURNING id"
)
_INSERT_EVENTS = (
    "INSERT INTO command_events (command_id, seq, kind, status, body, final, received_at) "
    "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7) ON CONFLICT (command_id, seq) DO NOTHING"
)
_ADVANCE = (
    "UPDATE commands SET status = $2, node_id = coalesce($3, node_id), "
    "started_at = coalesce(started_at, $4), finished_at = coalesce($5, finished_at), "
    f"error = coalesce($6, error) WHERE id = $1 AND status IN ({_ACTIVE_SQL}) "
    "RETURNING id, vin, node_id"
)
_CLAIM_HEAD = (
    "UPDATE audit_chains SET last_seq = $4, last_hash = $5 "
    "WHERE chain = $1 AND last_seq = $2 AND last_hash = $3"
)
_LOCK_HEAD = "SELECT last_seq, last_hash FROM audit_chains WHERE chain = $1 FOR UPDATE"
_CREATE_HEAD = (
    "INSERT INTO audit_chains (chain, last_seq, last_hash, anchor_seq, anchor_hash) "
    "VALUES ($1, 0, $2, 0, $2) ON CONFLICT (chain) DO NOTHING"
)
_ADVANCE_HEAD = "UPDATE audit_chains SET last_seq = $2, last_hash = $3 WHERE chain = $1"
_RECORD_SEEN = (
    "UPDATE vehicles SET last_seen_at = $2 "
    "WHERE vin = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)"
)
_BY_TOKEN = (
    "SELECT v.vin, v.token_hash, v.enabled, EXISTS (SELECT 1 FROM commands c "
    f"WHERE c.vin = v.vin AND c.status = '{CommandStatus.PENDING.value}' "
    "AND c.expires_at IS NOT NULL) AS waiting FROM vehicles v WHERE v.token_hash = ANY($1::text[])"
)
_PENDING = f"id = $1 AND status = '{CommandStatus.PENDING.value}'"
_IS_PENDING = f"SELECT 1 FROM commands WHERE {_PENDING}"
_STAMP_PENDING = f"UPDATE commands SET node_id = $2 WHERE {_PENDING}"
_INSERT_AUDIT = (
    "INSERT INTO audit_events (at, actor, action, target, details, chain, seq, prev_hash, "
    "hash, vin) VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8, $9, $10)"
)


class _Transaction:
    """One asyncpg connection's work for `engine` (a transaction, or one statement),
    counting its statements."""

    def __init__(self, driver: Any, engine: AsyncEngine) -> None:
        self.driver = driver
        self.engine = engine
        self.statements = 0

    @property
    def chain(self) -> str:
        """The audit chain the engine's transactions append to."""
        return chain_of(self.engine)

    async def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.statements += 1
        await self.driver.executemany(sql, rows)

    async def fetch_many(self, sql: str, rows: Sequence[Sequence[object]]) -> list[Any]:
        self.statements += 1
        return list(await self.driver.fetchmany(sql, rows))

    async def fetch(self, sql: str, *args: object) -> list[Any]:
        self.statements += 1
        return list(await self.driver.fetch(sql, *args))

    async def execute(self, sql: str, *args: object) -> str:
        self.statements += 1
        status: str = await self.driver.execute(sql, *args)
        return status


async def record(
    writer: AsyncEngine,
    commands: Sequence[Command],
    events: Sequence[CommandEventRecord],
    changes: Sequence[StatusChange],
    node_id: str | None = None,
) -> frozenset[uuid.UUID]:
    """`command_queries.record` on Postgres: one group commit; the refused new commands."""
    async with _transaction(writer) as tx:
        refused = await _insert_commands(tx, commands, node_id) if commands else frozenset()
        audits = [submitted_note(c) for c in commands if c.id not in refused]
        if events:
            await tx.many(_INSERT_EVENTS, list(_event_rows(events)))
        if changes:
            audits.extend(await _apply_changes(tx, changes, node_id))
        if audits:  # last: it locks the audit chain's head
            await _append_audit_rows(tx, audits)
    return refused


async def append_audits(writer: AsyncEngine, rows: Sequence[AuditNote]) -> None:
    """`storage.audit`'s append on Postgres: `rows`, in order, in one transaction."""
    async with _transaction(writer) as tx:
        await _append_audit_rows(tx, rows)


async def record_seen(writer: AsyncEngine, seen: Mapping[str, datetime]) -> None:
    """`vehicle_queries.record_seen` on Postgres: each VIN's `last_seen_at`, never backwards."""
    async with _transaction(writer) as tx:
        await tx.many(_RECORD_SEEN, [(vin, _aware(at)) for vin, at in seen.items()])


async def find_vehicles_by_token(
    reader: AsyncEngine, token_hashes: Collection[str]
) -> list[VehicleCredentials]:
    """`vehicle_queries.find_vehicles_by_token` on Postgres, as one statement."""
    async with _transaction(reader, begin=False) as tx:
        rows = await tx.fetch(_BY_TOKEN, list(token_hashes))
    return [VehicleCredentials(r["vin"], r["token_hash"], r["enabled"], r["waiting"]) for r in rows]


async def is_pending(reader: AsyncEngine, command_id: uuid.UUID) -> bool:
    """`cluster_queries.is_pending` on Postgres: one statement."""
    async with _transaction(reader, begin=False) as tx:
        return bool(await tx.fetch(_IS_PENDING, command_id))


async def stamp_pending(writer: AsyncEngine, command_id: uuid.UUID, node_id: str) -> bool:
    """`cluster_queries.stamp_pending` on Postgres: one statement."""
    async with _transaction(writer, begin=False) as tx:
        status: str = await tx.execute(_STAMP_PENDING, command_id, node_id)
    return status == "UPDATE 1"


@asynccontextmanager
async def _transaction(engine: AsyncEngine, *, begin: bool = True) -> Any:
    """A pooled asyncpg connection, in a transaction if `begin` (else for one statement, its
    own); the pool replaces it if it broke. Taken from the pool itself, without a SQLAlchemy
    `Connection` around it (57 against 26 us a checkout)."""
    raw = await engine.raw_connection()
    tx = _Transaction(raw.driver_connection, engine)
    try:
        if begin:
            async with tx.driver.transaction():
                yield tx
        else:
            yield tx
    except Exception as exc:
        if is_connection_failure(exc):
            # What SQLAlchemy does on a disconnect it sees itself (in
            # `Connection._handle_dbapi_exception`): this connection, and every
            # one opened before it, is replaced at its next checkout.
            engine.sync_engine.pool._invalidate(raw, exc)
        raise
    finally:
        count_driver_work(engine, statements=tx.statements)
        await greenlet_spawn(raw.close)  # back to the pool (its reset may await)


async def _insert_commands(
    tx: _Transaction, commands: Sequence[Command], node_id: str | None
) -> frozenset[uuid.UUID]:
    """New commands as pending; those whose idempotency key is taken are skipped, ids returned."""
    plain = [_command_row(c, node_id) for c in commands if c.idempotency_key is None]
    keyed = [c for c in commands if c.idempotency_key is not None]
    if plain:
        await tx.many(_INSERT_COMMANDS, plain)
    if not keyed:
        return frozenset()
    rows = await tx.fetch_many(_INSERT_KEYED, [_command_row(c, node_id) for c in keyed])
    stored = {row["id"] for row in rows}
    return frozenset(c.id for c in keyed if c.id not in stored)


def _command_row(c: Command, node_id: str | None) -> tuple[object, ...]:
    query: dict[str, JSON] = dict(c.sovd.query)
    sovd = {"method": c.sovd.method, "path": c.sovd.path, "query": query, "body": c.sovd.body}
    return (
        c.id, c.vin, c.submitted_by, c.name, json.dumps(c.params), json.dumps(sovd),
        CommandStatus.PENDING.value, c.timeout_s, _aware(c.submitted_at), _aware(c.expires_at),
        c.idempotency_key, c.request_hash, node_id,
    )  # fmt: skip


def _event_rows(events: Sequence[CommandEventRecord]) -> Iterator[tuple[object, ...]]:
    for e in events:
        kind = EventKind(e.kind).value
        yield (
            e.command_id,
            e.seq,
            kind,
            e.status,
            json.dumps(e.body),
            e.final,
            _aware(e.received_at),
        )


async def _apply_changes(
    tx: _Transaction, changes: Sequence[StatusChange], node_id: str | None
) -> list[AuditNote]:
    """`command_changes.apply_changes`: one UPDATE per command, pipelined; the audit notes of
    the commands it ended (those it moved, RETURNING their VIN and holder)."""
    moves = advances(changes, node_id)
    rows = [
        (
            m.command_id,
            m.status.value,
            m.node_id,
            _aware(m.started_at),
            _aware(m.finished_at),
            m.error,
        )
        for m in moves
    ]
    moved = await tx.fetch_many(_ADVANCE, rows)
    held = {r["id"]: (r["vin"], r["node_id"]) for r in moved}
    return final_audit_notes(moves, held)


async def _append_audit_rows(tx: _Transaction, rows: Sequence[AuditNote]) -> None:
    """`audit_chain.append_audit_rows`: the head claimed in one statement when it can."""
    chain = tx.chain
    known = head_written(tx.engine.sync_engine, chain)
    if known is not None:
        values, seq, last = chained_values(chain, *known, rows)
        if await tx.execute(_CLAIM_HEAD, chain, *known, seq, last) == "UPDATE 1":
            await tx.many(_INSERT_AUDIT, [_audit_row(v) for v in values])
            wrote_head(tx.engine.sync_engine, chain, seq, last)  # a rollback makes it stale
            return
    head = await tx.fetch(_LOCK_HEAD, chain)
    if not head:
        await tx.execute(_CREATE_HEAD, chain, GENESIS_HASH)
        head = await tx.fetch(_LOCK_HEAD, chain)
    values, seq, last = chained_values(chain, head[0]["last_seq"], head[0]["last_hash"], rows)
    await tx.many(_INSERT_AUDIT, [_audit_row(v) for v in values])
    await tx.execute(_ADVANCE_HEAD, chain, seq, last)
    wrote_head(tx.engine.sync_engine, chain, seq, last)


def _audit_row(v: dict[str, Any]) -> tuple[object, ...]:
    return (
        v["at"], v["actor"], v["action"], v["target"], json.dumps(v["details"]), v["chain"],
        v["seq"], v["prev_hash"], v["hash"], v["vin"],
    )  # fmt: skip


def _aware(at: datetime | None) -> datetime | None:
    """`at`, refused if naive (as `storage.models.UTCDateTime` refuses it): its zone is a guess."""
    if at is not None and at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} given; pass a timezone-aware one")
    return at
