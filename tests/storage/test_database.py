"""The database as a whole: reachability, errors, concurrency, time zones."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import trio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import (
    AuditLog,
    CommandBacklog,
    CommandJournal,
    CommandStatus,
    StatusChange,
    VehicleDirectory,
)
from storage import Database, DatabaseUnavailable, StorageError, migrate, open_database
from tests.support.commands import make_command, make_event


async def test_database_serves_the_hub_ports(database: Database) -> None:
    # The annotations make mypy check that the stores implement the hub's ports.
    directory: VehicleDirectory = database.vehicles
    journal: CommandJournal = database.commands
    backlog: CommandBacklog = database.commands
    audit: AuditLog = database.audit

    await database.vehicles.add_vehicle("WVWZZZ1JZXW000002", make="VW", model="Golf", year=2021)
    found = await directory.find_vehicles(["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"])
    assert list(found) == ["WVWZZZ1JZXW000002"] and found["WVWZZZ1JZXW000002"].enabled
    await journal.record([], [])
    assert await backlog.waiting_commands("WVWZZZ1JZXW000002") == []
    await audit.append_audits([])


async def test_ping_and_url(database: Database, database_url: str) -> None:
    await database.ping()
    assert database.url == database_url  # no password in the test URLs to mask


async def test_an_unreachable_postgres_is_unavailable(aio_loop: object) -> None:
    async with open_database("postgresql://hub:s3cret@127.0.0.1:1/hub") as db:
        assert db.url == "postgresql://hub:***@127.0.0.1:1/hub"
        with pytest.raises(DatabaseUnavailable, match="is unavailable") as caught:
            await db.ping()
        with pytest.raises(DatabaseUnavailable):
            await db.vehicles.list_vehicles()
    assert "s3cret" not in str(caught.value)
    assert "SOVD_HUB_DATABASE_URL" in str(caught.value)


async def test_a_missing_sqlite_directory_is_named(aio_loop: object, tmp_path: Path) -> None:
    missing = tmp_path / "missing-dir"
    with pytest.raises(StorageError, match=f"directory {missing} does not exist"):
        async with open_database(f"sqlite:///{missing / 'hub.db'}"):
            pass


async def test_an_unopenable_sqlite_file_is_unavailable(aio_loop: object, tmp_path: Path) -> None:
    async with open_database(f"sqlite:///{tmp_path}") as db:  # a directory, not a file
        with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
            await db.ping()
    # aiosqlite stops the worker thread of a failed connection without waiting
    # for it; let it finish before the loop closes, or it reports to a dead loop.
    await trio.to_thread.run_sync(_join_aiosqlite_threads)


def _join_aiosqlite_threads() -> None:
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(timeout=5)


async def test_an_unmigrated_database_says_to_migrate(aio_loop: object, tmp_path: Path) -> None:
    async with open_database(f"sqlite:///{tmp_path / 'hub.db'}") as db:
        await db.ping()
        with pytest.raises(StorageError, match="run `sovd-hub migrate`"):
            await db.vehicles.list_vehicles()


async def test_naive_datetimes_are_refused(database: Database) -> None:
    await database.vehicles.add_vehicle("WVWZZZ1JZXW000001", make="VW", model="Golf", year=2021)

    with pytest.raises(Exception, match="naive datetime") as caught:
        await database.vehicles.record_seen({"WVWZZZ1JZXW000001": datetime(2025, 1, 1)})
    assert not isinstance(caught.value, StorageError)  # a caller's bug, not the database's


async def test_concurrent_writers_all_commit(database: Database) -> None:
    vin = "WVWZZZ1JZXW000001"
    await database.vehicles.add_vehicle(vin, make="VW", model="Golf", year=2021)
    commands = [make_command() for _ in range(20)]

    async def submit_and_finish(index: int) -> None:
        command = commands[index]
        await database.commands.create_command(command)
        await database.commands.record(
            [make_event(command, 0, final=True)],
            [StatusChange(command.id, CommandStatus.SUCCEEDED, datetime.now(UTC))],
        )

    async with trio.open_nursery() as nursery:
        for index in range(len(commands)):
            nursery.start_soon(submit_and_finish, index)
        for n in range(10):
            nursery.start_soon(database.vehicles.record_seen, {vin: datetime.now(UTC)})
            nursery.start_soon(
                partial(database.audit.append_audit, actor="hub", action="x", target=f"{n}")
            )

    for command in commands:
        row = await database.commands.get_command(command.id)
        assert row is not None
        assert row.status is CommandStatus.SUCCEEDED
        assert len(await database.commands.list_events(command.id)) == 1
    # The vehicle (added, token issued), each command (submitted, succeeded), the 10 others.
    assert len(await database.audit.list_audit()) == 2 + 2 * len(commands) + 10


async def test_a_cancelled_call_leaves_the_database_usable(database: Database) -> None:
    with trio.move_on_after(0):
        await database.vehicles.add_vehicle("WVWZZZ1JZXW000001", make="VW", model="Golf", year=2021)

    await database.vehicles.add_vehicle("WVWZZZ1JZXW000002", make="VW", model="Golf", year=2021)
    assert await database.commands.get_command(uuid.uuid4()) is None
    assert "WVWZZZ1JZXW000002" in [v.vin for v in await database.vehicles.list_vehicles()]


async def test_open_database_closes_its_pool_when_cancelled(
    aio_loop: object, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    await trio.to_thread.run_sync(migrate, url)  # the way a running hub migrates
    with trio.move_on_after(1) as scope:
        async with open_database(url) as db:
            await db.ping()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_postgres_tls_is_what_the_url_says(
    aio_loop: object, postgres_database_url: str
) -> None:
    # No mode in the URL: no TLS attempted. libpq's `sslmode` reaches asyncpg as `ssl`.
    for suffix in ("", "?sslmode=disable", "?ssl=disable"):
        async with open_database(postgres_database_url + suffix) as db:
            await db.ping()
    async with open_database(postgres_database_url) as db:
        server_has_tls = await db.engine.run(_show_ssl, db.engine.reader)
    async with open_database(postgres_database_url + "?sslmode=require") as db:
        if server_has_tls:
            await db.ping()
        else:
            with pytest.raises(DatabaseUnavailable, match="SSL"):
                await db.ping()


async def _show_ssl(reader: AsyncEngine) -> bool:
    async with reader.connect() as conn:
        return bool((await conn.execute(text("SHOW ssl"))).scalar() == "on")
