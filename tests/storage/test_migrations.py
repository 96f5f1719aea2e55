"""Migrations: `migrate` builds the schema the models describe; `check_schema` guards it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage import DatabaseUnavailable, StorageError, check_schema, migrate, normalise_url
from storage.migrations import head_revision
from storage.models import Base
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
    with_database_name,
)


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server_url = postgres_server_url()
    name = f"sovd_test_{uuid.uuid4().hex}"
    create_postgres_database(server_url, name)
    try:
        yield with_database_name(server_url, name)
    finally:
        drop_postgres_database(server_url, name)


def test_check_schema_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    with pytest.raises(StorageError) as caught:
        check_schema(empty_database_url)
    assert str(caught.value) == (
        f"database at {empty_database_url} is at revision none, "
        f"expected head {head_revision()}: run `sovd-hub migrate`"
    )


def test_migrate_brings_the_database_to_head_and_is_idempotent(empty_database_url: str) -> None:
    migrate(empty_database_url)
    check_schema(empty_database_url)
    migrate(empty_database_url)  # already at head: nothing to do, no error
    check_schema(empty_database_url)


def test_check_schema_says_when_postgres_does_not_answer() -> None:
    with pytest.raises(DatabaseUnavailable, match="is unavailable") as caught:
        check_schema("postgresql://hub:s3cret@127.0.0.1:1/hub")
    assert "s3cret" not in str(caught.value)
    assert "hub:***@127.0.0.1:1/hub" in str(caught.value)


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _schema_differences(url: str) -> list[object]:
    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    assert asyncio.run(_schema_differences(database_url)) == []
