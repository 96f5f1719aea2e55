"""Group commit of actor records and batched last-seen writes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import pytest
import trio
import trio.lowlevel

from hub.batching import CredentialLookup, GroupCommitJournal, JournalWriteFailed, LastSeen
from hub.config import HubConfig, load_config
from hub.credentials import hash_vehicle_token
from hub.errors import ConfigError
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
        #: Per transaction: when it began (fake clock) and the command ids of its changes.
        self.log: list[tuple[float, list[uuid.UUID]]] = []
        #: Command ids of the changes committed so far.
        self.committed: set[uuid.UUID] = set()

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        self.transactions += 1
        self.log.append((trio.current_time(), [c.command_id for c in changes]))
        await trio.sleep(0.01)
        if self.fail or any(c.error == "poison" for c in changes):
            raise OSError("database went away")
        await super().record(events, changes, commands)
        self.committed.update(c.command_id for c in changes)


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

        async def find_vehicles_by_token(
            self, token_hashes: Collection[str]
        ) -> list[VehicleCredentials]:
            self.queries.append(len(token_hashes))
            await trio.sleep(0.01)
            return await super().find_vehicles_by_token(token_hashes)

    directory = CountingDirectory()
    vins = [f"{n:017d}" for n in range(50)]
    for vin in vins[:-1]:
        directory.add(vin, f"token-{vin}")
    lookup = CredentialLookup(directory)
    found: dict[str, list[VehicleCredentials]] = {}

    async def find(vin: str) -> None:
        found[vin] = await lookup.find(hash_vehicle_token(f"token-{vin}"))

    async with trio.open_nursery() as nursery:
        await nursery.start(lookup.run)
        async with trio.open_nursery() as finders:
            finders.start_soon(find, vins[0])
            await trio.sleep(0.005)
            for vin in vins[1:]:
                finders.start_soon(find, vin)
        nursery.cancel_scope.cancel()
    assert directory.queries == [1, 49]
    assert found[vins[-1]] == []
    assert all(found[vin] == [directory.vehicles[vin]] for vin in vins[:-1])


async def _record_all(
    journal: GroupCommitJournal, inner: SlowJournal, calls: Sequence[Sequence[StatusChange]]
) -> list[uuid.UUID]:
    """Record `calls` concurrently, in order, while the writer is busy with a first record.

    Returns the ids whose caller was released before its change was committed.
    """
    released_early: list[uuid.UUID] = []

    async def record(changes: Sequence[StatusChange]) -> None:
        await journal.record((), changes)
        released_early.extend(c.command_id for c in changes if c.command_id not in inner.committed)

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            writers.start_soon(record, [_change()])
            await trio.sleep(0.005)  # that transaction is under way: the others queue up
            for changes in calls:
                writers.start_soon(record, changes)
                await trio.lowlevel.checkpoint()  # each joins before the next starts
        nursery.cancel_scope.cancel()
    return released_early


async def test_a_backlog_is_split_into_batches_of_at_most_max_records_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner, max_batch_records=5)
    calls = [[_change()] for _ in range(12)] + [[_change(), _change()] for _ in range(4)]

    released_early = await _record_all(journal, inner, calls)

    sizes = [len(ids) for _, ids in inner.log]
    assert sizes == [1, 5, 5, 4, 4, 2]  # whole calls only: 1+1+2 and 2+2 fit in 5, 2+2+2 not
    assert [i for _, ids in inner.log[1:] for i in ids] == [
        c.command_id for cs in calls for c in cs
    ]
    assert released_early == []
    assert (journal.batches, journal.records) == (6, 17)


async def test_a_call_larger_than_the_bound_is_committed_alone_and_whole(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner, max_batch_records=2)
    calls = [[_change()], [_change(), _change(), _change()], [_change()]]

    released_early = await _record_all(journal, inner, calls)

    assert [len(ids) for _, ids in inner.log] == [1, 1, 3, 1]
    assert released_early == []


async def test_max_batch_records_1_is_one_transaction_per_record_call(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner, max_batch_records=1)
    calls = [[_change()] for _ in range(10)]

    released_early = await _record_all(journal, inner, calls)

    assert inner.transactions == 11
    assert [ids for _, ids in inner.log[1:]] == [[c.command_id for c in cs] for cs in calls]
    assert released_early == []


async def test_a_batch_waits_at_most_max_wait_after_its_first_record(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner, max_wait_s=0.002)
    first, second, late = _change(), _change(), _change()
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        start = trio.current_time()
        async with trio.open_nursery() as writers:
            writers.start_soon(journal.record, (), [first])
            await trio.sleep(0.001)
            writers.start_soon(journal.record, (), [second])  # within the wait: same batch
            await trio.sleep(0.0015)
            writers.start_soon(journal.record, (), [late])  # after it: the next batch
        nursery.cancel_scope.cancel()
    assert [ids for _, ids in inner.log] == [
        [first.command_id, second.command_id],
        [late.command_id],
    ]
    assert inner.log[0][0] - start == pytest.approx(0.002)
    # the late one joined while the first batch committed: it does not wait again
    assert inner.log[1][0] - start == pytest.approx(0.012)


async def test_a_full_batch_does_not_wait(autojump_clock: trio.abc.Clock) -> None:
    inner = SlowJournal()
    journal = GroupCommitJournal(inner, max_batch_records=3, max_wait_s=0.05)
    changes = [_change() for _ in range(4)]
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        start = trio.current_time()
        async with trio.open_nursery() as writers:
            for change in changes:
                writers.start_soon(journal.record, (), [change])
        nursery.cancel_scope.cancel()
    assert [(round(at - start, 4), len(ids)) for at, ids in inner.log] == [
        (0.0, 3),  # three fill the batch: committed at once
        (0.05, 1),  # the fourth, alone, waits its bound from when it came (0 s) for company
    ]


def test_hub_config_reads_the_group_commit_bounds_from_the_environment() -> None:
    environ = {
        "SOVD_HUB_JOURNAL_MAX_BATCH_RECORDS": "1",
        "SOVD_HUB_JOURNAL_MAX_WAIT_MS": "2.5",
    }
    config = load_config(HubConfig, environ=environ)
    assert (config.journal_max_batch_records, config.journal_max_wait_ms) == (1, 2.5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"journal_max_batch_records": 0}, "journal_max_batch_records must be a finite number"),
        ({"journal_max_wait_ms": -1.0}, "journal_max_wait_ms must be 0-100 ms"),
        ({"journal_max_wait_ms": 500.0}, "journal_max_wait_ms must be 0-100 ms"),
        ({"journal_max_wait_ms": float("nan")}, "journal_max_wait_ms must be 0-100 ms"),
    ],
)
def test_hub_config_refuses_bad_group_commit_bounds(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        HubConfig(**settings)  # type: ignore[arg-type]
