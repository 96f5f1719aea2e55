"""Fixtures of the storage tests: `url_at_0003`, a database at migration 0003 (before the
audit chain), on each backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command as alembic_command

from storage.migrations import alembic_config
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
    with_database_name,
)


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def url_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to revision 0003 (before the audit chain)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        alembic_command.upgrade(alembic_config(url), "0003")
        yield url
        return
    server_url = postgres_server_url()
    name = f"sovd_test_{uuid.uuid4().hex}"
    create_postgres_database(server_url, name)
    try:
        url = with_database_name(server_url, name)
        alembic_command.upgrade(alembic_config(url), "0003")
        yield url
    finally:
        drop_postgres_database(server_url, name)
