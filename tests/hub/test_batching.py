"""Group commit of actor records and batched last-seen writes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import pytest
import trio

from hub.batching import CredentialLookup, GroupCommitJournal, JournalWriteFailed, LastSeen
from hub.model import (
    Command,
    CommandEventRecord,
    CommandStatus,
    StatusChange,
    VehicleCredentials,
)
from hub.testing import MemoryDirectory, MemoryJournal


class SlowJournal(MemoryJournal):
    """Takes 10 ms (fake clock) per transaction and counts them; can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0
        self.fail = False

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        self.transactions += 1
        await trio.sleep(0.01)
        if self.fail or any(c.error == "poison" for c in changes):
            raise OSError("database went away")
        await super().record(events, changes, commands)


def _change() -> StatusChange:
    return StatusChange(uuid.uuid4(), CommandStatus.SUCCEEDED, datetime.now(UTC))


async def test_concurrent_records_share_transactions(autojump_clock: trio.abc.Clock) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner)
    changes = [_change() for _ in range(50)]
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            writers.start_soon(journal.record, (), [changes[0]])
            await trio.sleep(0.005)  # its transaction is under way: the others gather meanwhile
            for change in changes[1:]:
                writers.start_soon(journal.record, (), [change])
        nursery.cancel_scope.cancel()
    assert sorted(c.command_id for c in inner.changes) == sorted(c.command_id for c in changes)
    assert inner.transactions == 2  # the first alone, the other 49 together
    assert (journal.batches, journal.records) == (2, 50)


async def test_a_failed_batch_fails_each_of_its_callers(autojump_clock: trio.abc.Clock) -> None:
    inner = SlowJournal()
    inner.fail = True
    journal = GroupCommitJournal(inner)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with pytest.raises(JournalWriteFailed, match="could not record: database went away"):
            await journal.record((), [_change()])
        nursery.cancel_scope.cancel()


async def test_stopping_the_writer_still_commits_what_it_holds(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner)
    change = _change()
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        nursery.start_soon(journal.record, (), [change])
        await trio.sleep(0.005)  # the writer is mid-commit
        nursery.cancel_scope.cancel()
    assert inner.changes == [change]


async def test_last_seen_writes_in_batches(autojump_clock: trio.abc.Clock) -> None:
    class CountingDirectory(MemoryDirectory):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[int] = []

        async def record_seen(self, seen: Mapping[str, datetime]) -> None:
            self.writes.append(len(seen))
            await trio.sleep(0.01)
            await super().record_seen(seen)

    directory = CountingDirectory()
    last_seen = LastSeen(directory)
    now = datetime.now(UTC)
    async with trio.open_nursery() as nursery:
        await nursery.start(last_seen.run)
        last_seen.mark("A" * 17, now)
        await trio.sleep(0.001)
        for n in range(100):
            last_seen.mark(f"{n:017d}", now)
        await trio.sleep(1)
        last_seen.mark("B" * 17, now)  # pending when the hub stops: still written
        nursery.cancel_scope.cancel()
    assert directory.writes == [1, 100, 1]
    assert sorted(directory.seen)[-2:] == ["A" * 17, "B" * 17] and len(directory.seen) == 102


async def test_a_bad_record_fails_alone(autojump_clock: trio.abc.Clock) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner)
    good = [_change() for _ in range(3)]
    poison = StatusChange(uuid.uuid4(), CommandStatus.FAILED, datetime.now(UTC), "poison")
    failures: list[BaseException] = []

    async def record(change: StatusChange) -> None:
        try:
            await journal.record((), [change])
        except JournalWriteFailed as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            for change in [*good, poison]:
                writers.start_soon(record, change)
        nursery.cancel_scope.cancel()
    assert sorted(c.command_id for c in inner.changes) == sorted(c.command_id for c in good)
    assert len(failures) == 1


async def test_credential_lookups_share_a_query(autojump_clock: trio.abc.Clock) -> None:
    class CountingDirectory(MemoryDirectory):
        def __init__(self) -> None:
            super().__init__()
            self.queries: list[int] = []

        async def find_vehicles(self, vins: Collection[str]) -> dict[str, VehicleCredentials]:
            self.queries.append(len(vins))
            await trio.sleep(0.01)
            return await super().find_vehicles(vins)

    directory = CountingDirectory()
    vins = [f"{n:017d}" for n in range(50)]
    for vin in vins[:-1]:
        directory.add(vin, "token")
    lookup = CredentialLookup(directory)
    found: dict[str, VehicleCredentials | None] = {}

    async def find(vin: str) -> None:
        found[vin] = await lookup.find(vin)

    async with trio.open_nursery() as nursery:
        await nursery.start(lookup.run)
        async with trio.open_nursery() as finders:
            finders.start_soon(find, vins[0])
            await trio.sleep(0.005)
            for vin in vins[1:]:
                finders.start_soon(find, vin)
        nursery.cancel_scope.cancel()
    assert directory.queries == [1, 49]
    assert found[vins[-1]] is None
    assert all(found[vin] == directory.vehicles[vin] for vin in vins[:-1])
