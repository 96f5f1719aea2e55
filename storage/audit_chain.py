"""The audit trail's hash chain: how a row is hashed, appended and verified.

Each node appends to its own chain (its `node_id`). A row carries `seq`
(1, 2, 3... per chain), the `prev_hash` of the row before it (64 zeros for the
first) and its own `hash`:

    hash = sha256(prev_hash + canonical(chain, seq, at, actor, action, target, details))

where `canonical` is compact JSON with sorted keys, ASCII only, integral
numbers as integers, and `at` as UTC ISO 8601 with microseconds
(`2026-11-26T10:00:00.000000Z`). The head table `audit_chains` keeps each
chain's last seq and hash; every transaction that appends locks its chain's
head row (as its last step: see `lock_head`), so concurrent writers (routes,
the group commit, other processes with the same chain) extend one gap-free
chain. Every audit insert goes through `append_audit_rows` (or `lock_head`
+ `insert_rows`). `append_audit_rows` takes and advances the head in one
statement when it can: each engine remembers the head it last wrote per
chain, and a conditional UPDATE (`WHERE last_seq = .. AND last_hash = ..`)
both checks that nobody appended since and locks the row; only when it
matches nothing (another process appended, a transaction rolled back,
retention moved the anchor) is the head read, locked and advanced in three
statements as before. Retention removes a prefix of a
chain and moves the chain's anchor (`anchor_seq`, `anchor_hash`) up to it;
verification starts at the anchor.

`row_hash` is FROZEN: migration 0004 imports it to chain the rows that
existed before it. Changing it breaks every stored chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON, AuditNote
from storage.audit_queries import audit_vin
from storage.errors import StorageError
from storage.models import AuditChainModel, AuditEventModel

__all__ = [
    "AUDIT_CHAIN_OPTION",
    "CHAINS",
    "GENESIS_HASH",
    "MIGRATED_CHAIN",
    "RETENTION_ACTION",
    "ChainHead",
    "append_audit_row",
    "append_audit_rows",
    "canonical_row",
    "chain_of",
    "chained_values",
    "head_written",
    "insert_rows",
    "key_id",
    "lock_head",
    "row_hash",
    "sign_row",
    "signing_key",
    "wrote_head",
]

#: The action of the signed summary retention leaves (see `storage.audit_retention`).
RETENTION_ACTION = "audit.retention"
#: Execution option of the writer engine naming the chain its transactions append to.
AUDIT_CHAIN_OPTION = "sovd_hub_audit_chain"

#: `prev_hash` of a chain's first row.
GENESIS_HASH = "0" * 64
#: The chain that migration 0004 puts the rows written before it in.
MIGRATED_CHAIN = "migrated"


def _normalise(value: object) -> object:
    """JSON as it reads back from every backend.

    Postgres' JSONB prints an integral number without exponent or fraction
    (`1e16` comes back as the integer 10000000000000000), and refuses NaN and
    infinities; so integral floats hash as integers and non-finite ones as text.
    """
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} in the audit trail")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_row(
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, JSON],
) -> str:
    """The canonical text of an audit row that its hash covers (frozen)."""
    return json.dumps(
        {
            "chain": chain,
            "seq": seq,
            "at": _timestamp(at),
            "actor": actor,
            "action": action,
            "target": target,
            "details": _normalise(details),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def row_hash(
    prev_hash: str,
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, JSON],
) -> str:
    """The hex SHA-256 of `prev_hash` followed by the row's canonical text (frozen)."""
    text = prev_hash + canonical_row(chain, seq, at, actor, action, target, details)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A chain's head row: its last row and where verification starts."""

    chain: str
    last_seq: int
    last_hash: str
    anchor_seq: int
    anchor_hash: str


_EVENTS = cast(Table, AuditEventModel.__table__)
#: The chain heads' table (`audit_chains`).
CHAINS = cast(Table, AuditChainModel.__table__)
_HEAD = select(
    CHAINS.c.chain,
    CHAINS.c.last_seq,
    CHAINS.c.last_hash,
    CHAINS.c.anchor_seq,
    CHAINS.c.anchor_hash,
)
# Built once: building a statement costs about as much as SQLAlchemy's cached compile.
_LOCK_HEAD = _HEAD.where(CHAINS.c.chain == bindparam("b_chain")).with_for_update()
_ADVANCE_HEAD = (
    update(CHAINS)
    .where(CHAINS.c.chain == bindparam("b_chain"))
    .values(last_seq=bindparam("b_seq"), last_hash=bindparam("b_hash"))
)
#: Advances a head only if it is still the one this engine wrote last (see the module doc).
_CLAIM_HEAD = (
    update(CHAINS)
    .where(
        CHAINS.c.chain == bindparam("b_chain"),
        CHAINS.c.last_seq == bindparam("b_old_seq"),
        CHAINS.c.last_hash == bindparam("b_old_hash"),
    )
    .values(last_seq=bindparam("b_seq"), last_hash=bindparam("b_hash"))
)
_INSERT_EVENTS = insert(_EVENTS)
#: Per engine: chain -> (last seq, last hash) as this engine last wrote it.
_WRITTEN: WeakKeyDictionary[Engine, dict[str, tuple[int, str]]] = WeakKeyDictionary()


def chain_of(conn: AsyncConnection | AsyncEngine) -> str:
    """The chain this connection's (or engine's) transactions append to (the writer
    engine's option)."""
    sync = conn.sync_engine if isinstance(conn, AsyncEngine) else conn.sync_connection
    chain = None if sync is None else sync.get_execution_options().get(AUDIT_CHAIN_OPTION)
    if not isinstance(chain, str) or not chain:
        raise StorageError(
            "this connection appends audit events but names no audit chain; "
            "use the writer of a Database opened by open_database"
        )
    return chain


async def lock_head(conn: AsyncConnection, chain: str) -> ChainHead:
    """The chain's head, locked until the transaction ends (created empty if it is new).

    On Postgres the row lock serialises every transaction that appends to
    the chain; on SQLite the writer's `BEGIN IMMEDIATE` already does. Take it
    LAST in a transaction (after every other row lock) so that two
    transactions never wait for each other.
    """
    row = (await conn.execute(_LOCK_HEAD, {"b_chain": chain})).one_or_none()
    if row is None:
        genesis = {
            "chain": chain,
            "last_seq": 0,
            "last_hash": GENESIS_HASH,
            "anchor_seq": 0,
            "anchor_hash": GENESIS_HASH,
        }
        dialect = conn.dialect.name
        statement = (
            postgresql_insert(CHAINS) if dialect == "postgresql" else sqlite_insert(CHAINS)
        ).on_conflict_do_nothing(index_elements=["chain"])
        await conn.execute(statement, genesis)
        row = (await conn.execute(_LOCK_HEAD, {"b_chain": chain})).one()
    return ChainHead(*row)


async def insert_rows(
    conn: AsyncConnection, head: ChainHead, rows: Sequence[AuditNote]
) -> ChainHead:
    """Append `rows` after `head` (locked by this transaction); returns the new head."""
    if not rows:
        return head
    values, seq, last = chained_values(head.chain, head.last_seq, head.last_hash, rows)
    await conn.execute(_INSERT_EVENTS, values)
    await conn.execute(_ADVANCE_HEAD, {"b_chain": head.chain, "b_seq": seq, "b_hash": last})
    return ChainHead(head.chain, seq, last, head.anchor_seq, head.anchor_hash)


def chained_values(
    chain: str, seq: int, prev: str, rows: Sequence[AuditNote]
) -> tuple[list[dict[str, Any]], int, str]:
    """The rows' column values after (`seq`, `prev`), and the new last seq and hash."""
    values = []
    for row in rows:
        seq += 1
        digest = row_hash(prev, chain, seq, row.at, row.actor, row.action, row.target, row.details)
        values.append(
            {
                "at": row.at,
                "actor": row.actor,
                "action": row.action,
                "target": row.target,
                "details": row.details,
                "chain": chain,
                "seq": seq,
                "prev_hash": prev,
                "hash": digest,
                "vin": audit_vin(row.target, row.details),  # GET /api/v1/audit?vin=
            }
        )
        prev = digest
    return values, seq, prev


async def append_audit_rows(conn: AsyncConnection, rows: Sequence[AuditNote]) -> None:
    """Append `rows`, in order, to the connection's chain: THE way audit events are written.

    Locks the chain's head (one statement when this engine wrote it last; see
    the module docstring): call it as the last statement of the transaction.
    (`storage.postgres_direct` does the same through asyncpg.)
    """
    if not rows:
        return
    chain = chain_of(conn)
    known = head_written(conn.sync_engine, chain)
    if known is not None:
        values, seq, last = chained_values(chain, *known, rows)
        claim = {
            "b_chain": chain, "b_old_seq": known[0], "b_old_hash": known[1],
            "b_seq": seq, "b_hash": last,
        }  # fmt: skip
        if (await conn.execute(_CLAIM_HEAD, claim)).rowcount == 1:
            await conn.execute(_INSERT_EVENTS, values)
            wrote_head(conn.sync_engine, chain, seq, last)  # a rollback makes it stale
            return
    head = await insert_rows(conn, await lock_head(conn, chain), rows)
    wrote_head(conn.sync_engine, chain, head.last_seq, head.last_hash)


def head_written(engine: Engine, chain: str) -> tuple[int, str] | None:
    """The (seq, hash) `engine` last wrote at the head of `chain`, if any."""
    return _WRITTEN.get(engine, {}).get(chain)


def wrote_head(engine: Engine, chain: str, seq: int, last_hash: str) -> None:
    """Remember that `engine` moved `chain`'s head to (seq, hash)."""
    _WRITTEN.setdefault(engine, {})[chain] = (seq, last_hash)


async def append_audit_row(
    conn: AsyncConnection,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, JSON],
) -> None:
    """Append one audit event to the connection's chain (as the transaction's last write)."""
    await append_audit_rows(conn, [AuditNote(at, actor, action, target, details)])


def signing_key(secret: str) -> bytes:
    """The HMAC key retention summaries are signed with, derived from a configured secret."""
    return hmac.new(secret.encode(), b"sovd-hub audit retention summary v1", "sha256").digest()


def key_id(key: bytes) -> str:
    """A short public name of a signing key, so a mismatch can say which key signed."""
    return hashlib.sha256(key).hexdigest()[:12]


def sign_row(
    key: bytes,
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, JSON],
) -> str:
    """HMAC-SHA256 (hex) of the row's canonical text; `details` without its "signature"."""
    unsigned = {k: v for k, v in details.items() if k != "signature"}
    text = canonical_row(chain, seq, at, actor, action, target, unsigned)
    return hmac.new(key, text.encode("ascii"), "sha256").hexdigest()
