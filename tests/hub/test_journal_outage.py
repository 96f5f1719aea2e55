"""The group-commit journal through a database outage (fake clock, in-memory store).

The same behaviour against real Postgres behind a cut TCP proxy is in
tests/api/test_database_outage.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import pytest
import trio

from hub.batching import GroupCommitJournal, JournalUnavailable
from hub.errors import StorageUnavailable
from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    EventKind,
    SovdRequest,
    StatusChange,
)
from hub.testing import MemoryJournal


class Unreachable(StorageUnavailable):
    """What the store raises while it is down."""


class FlakyJournal(MemoryJournal):
    """A store that can be taken down (`down`) or made to hang (`hang`); answers `ping`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.hang = False
        self.pings = 0

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        if self.hang:
            await trio.sleep_forever()
        if self.down:
            raise Unreachable("database went away")
        await super().record(events, changes, commands)

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise Unreachable("database went away")


class Audit:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, JSON] | None]] = []

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        self.events.append((action, target, details))


class Observer:
    def __init__(self) -> None:
        self.lost = 0

    def batch_committed(self, records: int, seconds: float) -> None:
        pass

    def recorded(self, commands: Sequence[Command], changes: Sequence[StatusChange]) -> None:
        pass

    def records_lost(self, records: int) -> None:
        self.lost += records


COMMAND = uuid.uuid4()


def _event(seq: int) -> CommandEventRecord:
    return CommandEventRecord(COMMAND, seq, EventKind.PROGRESS, 200, None, False, _now())


def _command() -> Command:
    return Command(
        id=uuid.uuid4(),
        vin="V" * 17,
        name="ReadDTC",
        params={},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=5,
        submitted_by="engineer",
        submitted_at=_now(),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _journal(
    inner: FlakyJournal, *, buffer_records: int = 100, commit_timeout_s: float = 30
) -> GroupCommitJournal:
    journal = GroupCommitJournal(
        inner,
        buffer_records=buffer_records,
        commit_timeout_s=commit_timeout_s,
        retry_max_s=1.0,
        probe=inner.ping,
    )
    journal.observer = Observer()
    return journal


async def test_records_are_held_through_an_outage_and_published_in_order_once_stored(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = FlakyJournal()
    journal = _journal(inner)
    published: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        await journal.record([_event(0)], (), on_stored=lambda: published.append(0))
        inner.down = True
        for seq in range(1, 5):  # each returns at once: the actor goes on
            with trio.fail_after(0.001):
                await journal.record([_event(seq)], (), on_stored=partial(published.append, seq))
        assert published == [0]  # not stored, not published
        outage = journal.outage
        assert outage is not None and outage.buffered_records == 4
        assert "database went away" in outage.describe()
        with trio.fail_after(0.001), pytest.raises(JournalUnavailable) as refused:
            await journal.record((), (), [_command()])  # a new command: refused at once
        assert refused.value.retry_after_s >= 1
        assert "has not answered since" in str(refused.value)
        await trio.sleep(10)
        inner.down = False
        await trio.sleep(2)  # the next retry writes them
        assert journal.outage is None and journal.buffered_records == 0
        nursery.cancel_scope.cancel()
    assert published == [0, 1, 2, 3, 4]
    assert [e.seq for e in inner.events] == [0, 1, 2, 3, 4]


async def test_a_full_buffer_drops_the_newest_counts_them_and_marks_the_command(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = FlakyJournal()
    journal = _journal(inner, buffer_records=2)
    audit = Audit()
    journal.audit = audit
    marked: list[StatusChange] = []
    journal.on_marked = marked.append
    published: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        inner.down = True
        for seq in range(5):
            await journal.record([_event(seq)], (), on_stored=partial(published.append, seq))
        final = StatusChange(COMMAND, CommandStatus.SUCCEEDED, _now())
        await journal.record((), [final], on_stored=lambda: published.append(-1))
        assert journal.records_lost == 4  # seq 2, 3, 4 and the final status
        inner.down = False
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert published == [0, 1]  # what was stored, in order; the rest never
    assert [e.seq for e in inner.events] == [0, 1]
    assert isinstance(journal.observer, Observer) and journal.observer.lost == 4
    [mark] = marked
    assert (mark.command_id, mark.status) == (COMMAND, CommandStatus.INTERRUPTED)
    assert mark.error is not None and "4 of its records" in mark.error
    assert "journal_buffer_records=2" in mark.error
    assert inner.changes == [mark]
    assert audit.events == [
        (
            "command.records_lost",
            f"command:{COMMAND}",
            {"records_lost": 4, "journal_buffer_records": 2},
        )
    ]


async def test_with_nothing_to_write_the_journal_probes_until_the_database_answers(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = FlakyJournal()
    journal = _journal(inner)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        inner.down = True
        with pytest.raises(JournalUnavailable):
            await journal.record((), (), [_command()])
        await trio.sleep(5)
        assert journal.outage is not None and inner.pings >= 3  # backoff: 0.1, 0.2, 0.4, 0.8, 1
        inner.down = False
        await trio.sleep(1.5)
        assert journal.outage is None
        await journal.record((), (), [_command()])  # accepted again
        nursery.cancel_scope.cancel()
    assert len(inner.commands) == 1


async def test_a_commit_that_hangs_is_an_outage(autojump_clock: trio.abc.Clock) -> None:
    inner = FlakyJournal()
    journal = _journal(inner, commit_timeout_s=3)
    published: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        inner.hang = True  # a partition: nothing answers, nothing fails
        start = trio.current_time()
        await journal.record([_event(0)], (), on_stored=lambda: published.append(0))
        assert trio.current_time() - start == pytest.approx(3)  # released by the timeout
        outage = journal.outage
        assert outage is not None and "no commit within 3 s" in outage.error
        inner.hang = False
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert published == [0] and [e.seq for e in inner.events] == [0]


async def test_stopping_during_an_outage_loses_what_is_held_and_releases_everyone(
    autojump_clock: trio.abc.Clock,
) -> None:
    inner = FlakyJournal()
    journal = _journal(inner)
    published: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        inner.down = True
        await journal.record([_event(0)], (), on_stored=lambda: published.append(0))
        nursery.cancel_scope.cancel()
    assert published == [] and journal.records_lost == 1
