"""The hot transactions on Postgres through asyncpg (`storage.postgres_direct`): counted like
SQLAlchemy's, and a broken connection is an outage the pool recovers from.

What it stores is checked on both backends by `test_commands.py` and `test_history.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub import CommandStatus, StatusChange, run_asyncio
from storage import Database, DatabaseUnavailable, open_database
from storage.errors import translate_errors
from tests.support.commands import T0, VIN, make_command, make_event
from tests.support.databases import truncate_all


@pytest.fixture
async def postgres(postgres_database_url: str) -> AsyncIterator[Database]:
    await run_asyncio(truncate_all, postgres_database_url)
    async with open_database(postgres_database_url, bcrypt_rounds=4) as db:
        await db.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
        yield db


async def test_a_group_commit_is_counted_as_one_transaction_of_its_statements(
    postgres: Database,
) -> None:
    command = make_command()
    await postgres.commands.record([], [], [command])  # the chain's head is known from now
    before = postgres.statistics()

    await postgres.commands.record(
        [make_event(command, 0, final=True)],
        [StatusChange(command.id, CommandStatus.SUCCEEDED, T0)],
    )

    after = postgres.statistics()
    # the events, the UPDATE of the command, the head, the audit row (as SQLAlchemy counts:
    # not BEGIN and COMMIT)
    assert (after.transactions - before.transactions, after.statements - before.statements) == (
        1,
        4,
    )


async def test_a_killed_connection_is_an_outage_and_the_pool_replaces_it(
    postgres: Database, postgres_database_url: str
) -> None:
    await postgres.commands.record([], [], [make_command()])  # a pooled connection exists
    await run_asyncio(_terminate_backends, postgres_database_url.replace("+asyncpg", ""))

    with pytest.raises(DatabaseUnavailable, match="is unavailable"):
        await postgres.commands.record([], [], [make_command()])

    command = make_command()
    await postgres.commands.record([], [], [command])
    stored = await postgres.commands.get_command(command.id)
    assert stored is not None
    assert stored.status is CommandStatus.PENDING


async def _terminate_backends(url: str) -> None:
    """Kill every other session on the test database (as a Postgres restart would)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


def test_an_unwrapped_driver_error_of_a_lost_connection_is_an_outage_and_others_pass() -> None:
    class AdapterError(Exception):
        """What SQLAlchemy's asyncpg adapter raises when a raw checkout cannot connect."""

    unavailable = pytest.raises(DatabaseUnavailable, match="database at db is unavailable: gone")
    with unavailable, translate_errors("db"):
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as exc:
            raise AdapterError("gone") from exc
    with pytest.raises(KeyError), translate_errors("db"):  # a bug, not the database
        raise KeyError("b_id")
