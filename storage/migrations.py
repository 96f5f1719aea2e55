"""Schema migrations with Alembic, configured in code (no alembic.ini).

Both functions are synchronous and run the async driver with `asyncio.run`:
call them before `trio.run`, or from the running hub through
`trio.to_thread.run_sync(migrate, url)`, never directly in a trio task.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.errors import StorageError, translate_errors
from storage.urls import create_private_sqlite, mask_url, normalise_url

__all__ = ["alembic_config", "check_schema", "head_revision", "migrate"]

_SCRIPT_LOCATION = Path(__file__).with_name("alembic")

# `env.py` reads the database URL from `Config.attributes` under this key, so
# no URL (with its password) ever goes through ConfigParser interpolation.
URL_ATTRIBUTE = "sovd_hub_database_url"


def alembic_config(url: str) -> Config:
    """An Alembic `Config` for the database at `url` (any URL `normalise_url` takes)."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes[URL_ATTRIBUTE] = normalise_url(url)
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "storage/alembic/versions holds no migration"
    return head


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (`alembic upgrade head`).

    A SQLite file it creates is private (0600, `create_private_sqlite`).
    Raises `DatabaseUnavailable` when the database does not answer. Blocks;
    not cancellable once started.
    """
    config = alembic_config(url)
    create_private_sqlite(url)
    with translate_errors(mask_url(url)):
        command.upgrade(config, "head")


def check_schema(url: str) -> None:
    """Raise `StorageError` unless the database at `url` is at the newest migration.

    Raises `DatabaseUnavailable` when the database does not answer. Blocks.
    """
    async_url = normalise_url(url)
    create_private_sqlite(url)  # SQLite would create a missing file, world-readable
    head = head_revision()
    with translate_errors(mask_url(url)):
        current = asyncio.run(_current_revision(async_url))
    if current != head:
        raise StorageError(
            f"database at {mask_url(url)} is at revision {current or 'none'}, "
            f"expected head {head}: run `sovd-hub migrate`"
        )


async def _current_revision(async_url: str) -> str | None:
    engine = create_async_engine(async_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
