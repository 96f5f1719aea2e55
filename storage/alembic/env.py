"""Alembic environment: runs migrations through our async drivers.

The URL comes from `Config.attributes` (see `storage.migrations`), the
engine is async (aiosqlite or asyncpg) and is driven with `asyncio.run`, so
this must be entered from a thread with no running event loop.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.migrations import URL_ATTRIBUTE
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: build the Config with storage.migrations")
    return str(url)


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade --sql`)."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations use batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_migrations_online() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run the migrations against the database."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_migrations_online())
        return
    raise RuntimeError(
        "storage.migrate() was called with an event loop running in this thread; "
        "call it before trio.run or through trio.to_thread.run_sync"
    )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
