"""Storage of the history: idempotency keys under group commit, and the listing queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from hub import (
    Command,
    CommandEventRecord,
    GroupCommitJournal,
    IdempotencyKeyTaken,
    SovdRequest,
    StatusChange,
)
from storage import (
    CommandFilter,
    ConflictError,
    Database,
    UnknownVehicleError,
    VehicleChanges,
    VehicleFilter,
)

VIN = "WVWZZZ1JZXW000001"
OTHER_VIN = "WVWZZZ1JZXW000002"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _command(by: str = "alice", key: str | None = None, minutes: int = 0) -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=VIN,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=5.0,
        submitted_by=by,
        submitted_at=T0 + timedelta(minutes=minutes),
        idempotency_key=key,
        request_hash="a" * 64 if key else None,
    )


@pytest.fixture
async def db(database: Database) -> Database:
    await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    await database.vehicles.add_vehicle(OTHER_VIN, make="Honda", model="Accord", year=2003)
    return database


async def _submitted(db: Database) -> list[str]:
    return sorted(a.target for a in await db.audit.list_audit() if a.action == "command.submitted")


async def test_a_taken_key_skips_only_its_command_in_a_batch(db: Database) -> None:
    first = _command(key="k")
    assert await db.commands.record((), (), [first]) == frozenset()
    duplicate, bystander, same_key_other_user = _command(key="k"), _command(), _command("bob", "k")
    refused = await db.commands.record((), (), [bystander, duplicate, same_key_other_user])
    assert refused == {duplicate.id}
    for stored in (first, bystander, same_key_other_user):
        assert await db.commands.get_command(stored.id) is not None
    assert await db.commands.get_command(duplicate.id) is None
    assert await _submitted(db) == sorted(
        f"command:{c.id}" for c in (first, bystander, same_key_other_user)
    )
    found = await db.commands.find_idempotent("alice", "k")
    assert found is not None and found.id == first.id and found.request_hash == "a" * 64
    assert await db.commands.find_idempotent("carol", "k") is None
    with pytest.raises(ConflictError, match="alice already used idempotency key 'k'"):
        await db.commands.create_command(_command(key="k"))


class CountingJournal:
    """The database as a journal, counting its transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions = 0

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> frozenset[uuid.UUID]:
        self.transactions += 1
        return await self.db.commands.record(events, changes, commands)


async def test_a_lost_race_fails_only_its_caller_and_the_batch_is_written_once(
    db: Database,
) -> None:
    await db.commands.record((), (), [_command(key="k")])  # as if another node stored it first
    inner = CountingJournal(db)
    journal = GroupCommitJournal(inner)
    outcomes: dict[str, Any] = {}
    commands = {"dup": _command(key="k"), "a": _command("bob", "k"), "b": _command()}

    async def submit(name: str) -> None:
        try:
            await journal.record((), (), [commands[name]])
        except IdempotencyKeyTaken as exc:
            outcomes[name] = exc
        else:
            outcomes[name] = "stored"

    async with trio.open_nursery() as writer:
        async with trio.open_nursery() as submitters:
            for name in commands:
                submitters.start_soon(submit, name)
            await trio.testing.wait_all_tasks_blocked()
            await writer.start(journal.run)  # all three are waiting: one batch
        writer.cancel_scope.cancel()
    assert (journal.batches, inner.transactions) == (1, 1)
    assert (outcomes["a"], outcomes["b"]) == ("stored", "stored")
    assert isinstance(outcomes["dup"], IdempotencyKeyTaken)
    assert outcomes["dup"].command_ids == {commands["dup"].id}
    assert await db.commands.get_command(commands["dup"].id) is None
    assert await db.commands.get_command(commands["a"].id) is not None


async def test_search_and_live_status_filters(db: Database) -> None:
    page = await db.vehicles.search_vehicles(
        VehicleFilter(vins=frozenset({OTHER_VIN, "X" * 17})), limit=5
    )
    assert ([v.vin for v in page.items], page.total) == ([OTHER_VIN], 1)
    page = await db.vehicles.search_vehicles(
        VehicleFilter(not_vins=frozenset({OTHER_VIN})), limit=5
    )
    assert [v.vin for v in page.items] == [VIN]
    nobody: frozenset[str] = frozenset()
    assert (await db.vehicles.search_vehicles(VehicleFilter(vins=nobody), limit=5)).total == 0
    assert (await db.vehicles.search_vehicles(VehicleFilter(not_vins=nobody), limit=5)).total == 2
    fleet = frozenset(f"WVWZZZ1JZXW{i:06d}" for i in range(40_000))  # one parameter, any size
    assert (await db.vehicles.search_vehicles(VehicleFilter(vins=fleet), limit=1)).total == 2
    assert (await db.vehicles.search_vehicles(VehicleFilter(search="ACC"), limit=5)).total == 1


async def test_update_vehicle_writes_only_what_changed(db: Database) -> None:
    updated = await db.vehicles.update_vehicle(
        VIN, VehicleChanges(make="VW", year=2022), by="admin"
    )
    assert (updated.make, updated.year) == ("VW", 2022)
    await db.vehicles.update_vehicle(VIN, VehicleChanges(year=2022), by="admin")
    updates = [a.details for a in await db.audit.list_audit() if a.action == "vehicle.updated"]
    assert updates == [{"changed": {"year": {"from": 2021, "to": 2022}}}]
    with pytest.raises(UnknownVehicleError):
        await db.vehicles.update_vehicle("WVWZZZ1JZXW999999", VehicleChanges(year=2022), by="admin")


async def test_list_commands_by_time_range(db: Database) -> None:
    commands = [_command(minutes=m) for m in range(4)]
    await db.commands.record((), (), commands)
    wanted = CommandFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    page = await db.commands.list_commands(wanted, limit=10)
    assert [c.id for c in page.items] == [commands[2].id, commands[1].id]
    assert page.total == 2
