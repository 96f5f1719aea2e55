"""Throwaway Postgres databases for tests: the server URL, creating, dropping and emptying them."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from storage.models import Base

POSTGRES_URL_ENV = "SOVD_HUB_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 5.0


def postgres_server_url() -> str:
    """The URL of the Postgres server the tests may create databases on."""
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def with_database_name(url: str, name: str) -> str:
    """`url` pointing at database `name` on the same server."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(server_url), timeout=CONNECT_TIMEOUT_S)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def create_postgres_database(server_url: str, name: str) -> None:
    """Create database `name`: skip the test (fail it when CI=true) if Postgres is down."""
    try:
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        masked = make_url(server_url).render_as_string(hide_password=True)
        message = (
            f"Postgres at {masked} did not answer ({exc!r}): start it "
            f"(pg_ctlcluster ... main start) or set {POSTGRES_URL_ENV}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def drop_postgres_database(server_url: str, name: str) -> None:
    """Drop database `name`, ending the connections still open to it first."""
    asyncio.run(
        _admin(
            server_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        )
    )


async def truncate_all(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    # Replica mode skips triggers, such as the one that keeps audit_events append-only.
    await _admin(
        url, "SET session_replication_role = replica", f"TRUNCATE {tables} RESTART IDENTITY CASCADE"
    )
