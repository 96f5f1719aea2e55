"""The hub's database, opened once: the stores of what it owns, over one engine.

`Database` holds one store per concept: `commands` (`storage.commands`),
`vehicles` (`storage.vehicles`), `accounts` (`storage.accounts`) and `audit`
(`storage.audit`). Each store implements its hub ports and is wired into
the hub by keyword (`open_hub(directory=db.vehicles, journal=db.commands,
...)`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from storage.accounts import BCRYPT_ROUNDS, AccountStore
from storage.audit import AuditStore
from storage.commands import CommandStore
from storage.engine import Engine, EngineStatistics, open_engine
from storage.vehicles import VehicleStore

__all__ = ["Database", "open_database"]


@dataclass(frozen=True, slots=True)
class Database:
    """The stores of one database, sharing its connection pool."""

    engine: Engine
    commands: CommandStore
    vehicles: VehicleStore
    accounts: AccountStore
    audit: AuditStore

    @classmethod
    def over(cls, engine: Engine, *, bcrypt_rounds: int = BCRYPT_ROUNDS) -> Database:
        """The stores over `engine`."""
        return cls(
            engine=engine,
            commands=CommandStore(engine),
            vehicles=VehicleStore(engine),
            accounts=AccountStore(engine, bcrypt_rounds),
            audit=AuditStore(engine),
        )

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self.engine.url

    @property
    def node_id(self) -> str | None:
        """The node writing through this database (None: a tool, not a node)."""
        return self.engine.node_id

    @property
    def audit_chain(self) -> str:
        """The audit hash chain this database's writes extend (see `storage.audit_chain`)."""
        return self.engine.audit_chain

    async def ping(self) -> None:
        """Return once the database answers a query; raise `DatabaseUnavailable` if not."""
        await self.engine.ping()

    def statistics(self) -> EngineStatistics:
        """The pool's work since it opened: transactions, statements, checkouts, connections."""
        return self.engine.statistics()


@asynccontextmanager
async def open_database(
    url: str,
    *,
    pool_size: int = 10,
    bcrypt_rounds: int = BCRYPT_ROUNDS,
    node_id: str | None = None,
    audit_chain: str | None = None,
    connect_timeout_s: float = 5.0,
    command_timeout_s: float = 10.0,
) -> AsyncIterator[Database]:
    """Open a connection pool to the database at `url` (any URL `normalise_url` takes).

    `node_id`: the hub node writing through it; the commands it stores or
    dispatches are stamped with it (crash recovery). `audit_chain`: the audit
    hash chain its audit events extend (default: `node_id`, else the host
    name; see `storage.audit_chain`). Must run in trio hosted on asyncio
    (`hub.run_with_asyncio`). Connects lazily: a database that is down shows
    up as `DatabaseUnavailable` from the first call (see `Database.ping`). The
    pool is closed on exit, shielded from cancellation. On Postgres a
    connection attempt gives up after `connect_timeout_s` and a statement
    after `command_timeout_s` (a partitioned network answers nothing: without
    them a query would hang); the pool is fixed at `pool_size` and not
    pre-pinged: a connection that died fails its transaction (`DatabaseUnavailable`)
    and every connection older than it is replaced (`storage.engine`). SQLite, a
    local file, has no such failure.
    """
    if not 4 <= bcrypt_rounds <= 31:
        raise ValueError(f"bcrypt_rounds must be 4-31, got {bcrypt_rounds}")
    async with open_engine(
        url,
        pool_size=pool_size,
        node_id=node_id,
        audit_chain=audit_chain,
        connect_timeout_s=connect_timeout_s,
        command_timeout_s=command_timeout_s,
    ) as engine:
        yield Database.over(engine, bcrypt_rounds=bcrypt_rounds)
