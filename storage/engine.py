"""The database engine every store shares: SQLite/Postgres setup, the bridge crossing, `ping`.

SQLAlchemy's async engine is asyncio; the hub is trio. `Engine.run` is the
one way a store crosses the bridge: it runs one whole transaction (an asyncio
coroutine of a `*_queries` module) and translates driver errors into
`StorageError`s (`storage.errors.translate_errors`). It needs trio hosted on
asyncio (`hub.run_with_asyncio`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

import trio
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool

from hub import run_asyncio
from storage.audit_chain import AUDIT_CHAIN_OPTION
from storage.errors import StorageError, translate_errors
from storage.urls import mask_url, normalise_url

__all__ = ["Engine", "EngineStatistics", "Store", "count_driver_work", "open_engine"]

P = ParamSpec("P")
T = TypeVar("T")

_SQLITE_BUSY_TIMEOUT_MS = 5000
#: Pooled Postgres connections are replaced after this long (a proxy may drop idle ones).
POOL_RECYCLE_S = 1800
_WRITE = "sovd_hub_write"  # execution option marking a transaction that writes


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """What the pool has done since it opened (counted by SQLAlchemy's events)."""

    #: Transactions begun.
    transactions: int
    #: Statements sent (an executemany counts once).
    statements: int
    #: Connections taken from the pool.
    checkouts: int
    #: New connections opened to the database.
    connections_opened: int


class _Counts:
    __slots__ = ("__weakref__", "checkouts", "connections_opened", "statements", "transactions")

    def __init__(self, engine: AsyncEngine) -> None:
        self.transactions = self.statements = self.checkouts = self.connections_opened = 0
        sync = engine.sync_engine
        _COUNTS[sync.pool] = self
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync.pool, "checkout", self._checkout)
        event.listen(sync.pool, "connect", self._connect)

    def _begin(self, *_: object) -> None:
        self.transactions += 1

    def _statement(self, *_: object) -> None:
        self.statements += 1

    def _checkout(self, *_: object) -> None:
        self.checkouts += 1

    def _connect(self, *_: object) -> None:
        self.connections_opened += 1


#: Each pool's counts, for the transactions that bypass SQLAlchemy's events.
_COUNTS: WeakKeyDictionary[Pool, _Counts] = WeakKeyDictionary()


def count_driver_work(engine: AsyncEngine, statements: int) -> None:
    """Count one transaction of `statements` run on the driver directly (no SQLAlchemy
    events fire for them; see `storage.postgres_direct`)."""
    counts = _COUNTS.get(engine.sync_engine.pool)
    if counts is not None:
        counts.transactions += 1
        counts.statements += statements


class Engine:
    """One connection pool, seen as a reader and a writer, and who writes through it.

    `reader` runs read-only transactions; `writer` is the same pool marked
    as writing (on SQLite it begins with `BEGIN IMMEDIATE`) and appending to
    `audit_chain`.
    """

    __slots__ = ("_counts", "audit_chain", "node_id", "reader", "url", "writer")

    def __init__(
        self, engine: AsyncEngine, masked_url: str, *, node_id: str | None, audit_chain: str | None
    ) -> None:
        #: The database URL with its password masked.
        self.url = masked_url
        #: The node writing through this engine (None: a tool, not a node); see `open_database`.
        self.node_id = node_id
        #: The audit hash chain this engine appends to (see `storage.audit_chain`).
        self.audit_chain = audit_chain or node_id or socket.gethostname()
        self.reader = engine
        self._counts = _Counts(engine)
        self.writer = engine.execution_options(
            **{_WRITE: True, AUDIT_CHAIN_OPTION: self.audit_chain}
        )

    async def run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` (one asyncio transaction) across the bridge, translating driver errors.

        Cancelling the call cancels the transaction, which is rolled back.
        """
        with translate_errors(self.url):
            return await run_asyncio(fn, *args, **kwargs)

    async def ping(self) -> None:
        """Return once the database answers a query; raise `DatabaseUnavailable` if not."""
        await self.run(_ping, self.reader)

    def statistics(self) -> EngineStatistics:
        """Transactions, statements, checkouts and new connections since the pool opened."""
        c = self._counts
        return EngineStatistics(c.transactions, c.statements, c.checkouts, c.connections_opened)


class Store:
    """A store over the shared `Engine`: each of its methods crosses the bridge once
    (`Engine.run`) to run one transaction of its `*_queries` module.

    Every method raises `DatabaseUnavailable` when the database does not
    answer and `StorageError` when it refuses. Cancelling a call cancels its
    transaction, which is rolled back.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._run = engine.run
        self._reader = engine.reader
        self._writer = engine.writer


@asynccontextmanager
async def open_engine(
    url: str,
    *,
    pool_size: int,
    node_id: str | None,
    audit_chain: str | None,
    connect_timeout_s: float,
    command_timeout_s: float,
) -> AsyncIterator[Engine]:
    """The engine of the database at `url` while open; its pool is disposed on exit, shielded.

    See `storage.open_database` for the parameters.
    """
    async_url = normalise_url(url)
    _check_sqlite_directory(async_url, url)
    engine = _create_engine(async_url, pool_size, connect_timeout_s, command_timeout_s)
    try:
        yield Engine(engine, mask_url(url), node_id=node_id, audit_chain=audit_chain)
    finally:
        with trio.CancelScope(shield=True):
            await run_asyncio(engine.dispose)


async def _ping(reader: AsyncEngine) -> None:
    async with reader.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _check_sqlite_directory(async_url: str, url: str) -> None:
    # SQLite creates a missing file but not its directory; say so plainly
    # rather than "unable to open database file".
    parsed = make_url(async_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent
    if not directory.is_dir():
        raise StorageError(
            f"database at {mask_url(url)}: directory {directory} does not exist; "
            "create it or change SOVD_HUB_DATABASE_URL"
        )


def _create_engine(
    async_url: str, pool_size: int, connect_timeout_s: float, command_timeout_s: float
) -> AsyncEngine:
    parsed = make_url(async_url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, object] = {
            "timeout": connect_timeout_s,
            "command_timeout": command_timeout_s,
        }
        if "sslmode" in parsed.query:  # libpq's name; asyncpg calls it `ssl`
            mode = parsed.query["sslmode"]
            parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
        if not _names_tls(parsed.query):
            connect_args["ssl"] = False  # asyncpg would try TLS first on every connect
        return create_async_engine(
            parsed,
            # A fixed pool: an overflow connection is opened and closed per burst, and
            # starts with a cold statement cache. No pre-ping (a round trip per checkout):
            # a dead connection fails its transaction and SQLAlchemy then replaces every
            # connection older than the failure.
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=command_timeout_s,
            pool_recycle=POOL_RECYCLE_S,
            connect_args=connect_args,
        )
    in_memory = parsed.database in (None, "", ":memory:")
    engine = create_async_engine(parsed, **({} if in_memory else {"pool_size": pool_size}))
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _names_tls(query: Mapping[str, object]) -> bool:
    """Whether the URL (or libpq's `PGSSLMODE`) says how to use TLS; else the hub uses none."""
    return "ssl" in query or "PGSSLMODE" in os.environ


def _on_sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Turn off the driver's implicit BEGIN: `_on_sqlite_begin` emits our own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    # A writer takes the write lock up front: a deferred transaction that
    # upgrades later fails at once with "database is locked" instead of waiting.
    writes = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
