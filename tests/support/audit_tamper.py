"""Tamper with the audit trail as a database superuser would: past the append-only triggers.

`tamper(url, *statements)` runs SQL with the triggers out of the way
(Postgres: `session_replication_role = replica`, which needs a superuser;
SQLite: the triggers are dropped and created again around the statements).
`run_sql(url, *statements)` runs SQL plainly, triggers and all. Both are
synchronous: from a trio test call them through `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
from sqlalchemy.engine import make_url

__all__ = ["query", "run_sql", "tamper"]


def _sqlite_path(url: str) -> str | None:
    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else None


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg(url: str, statements: tuple[str, ...], bypass: bool) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        async with conn.transaction():
            if bypass:
                await conn.execute("SET LOCAL session_replication_role = replica")
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                rows = [tuple(r) for r in await conn.fetch(statement)]
            return rows
    finally:
        await conn.close()


def _sqlite(path: str, statements: tuple[str, ...], bypass: bool) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'trigger' AND tbl_name = 'audit_events'"
        ).fetchall()
        if bypass:
            for name, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
        rows: list[tuple[object, ...]] = []
        try:
            for statement in statements:
                rows = [tuple(r) for r in conn.execute(statement).fetchall()]
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        if bypass:
            for _, sql in triggers:
                conn.execute(sql)
        conn.execute("COMMIT")
        return rows
    finally:
        conn.close()


def _run(url: str, statements: tuple[str, ...], bypass: bool) -> list[tuple[object, ...]]:
    path = _sqlite_path(url)
    if path is not None:
        return _sqlite(path, statements, bypass)
    return asyncio.run(_pg(url, statements, bypass))


def tamper(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run `statements` in one transaction with the audit triggers bypassed; the last's rows."""
    return _run(url, statements, True)


def run_sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run `statements` in one transaction as any client would; the last one's rows."""
    return _run(url, statements, False)


def query(url: str, statement: str) -> list[tuple[object, ...]]:
    """The rows of one read-only statement."""
    return _run(url, (statement,), False)
