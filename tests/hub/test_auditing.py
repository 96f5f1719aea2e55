"""`AuditBatcher`: link events reach the audit trail in batches, in order, through outages."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from hub import JSON, AuditBatcher, AuditNote, AuditNoteStatistics
from hub.auditing import RETRY_S, storable, vehicle_target


class FlakyLog:
    """An `AuditLog` whose commits take 10 ms and that can be down or refuse some notes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.down = False
        self.refused: set[str] = set()
        self.attempts = 0

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        await self.append_audits([])

    async def append_audits(self, notes: Sequence[AuditNote]) -> None:
        self.attempts += 1
        await trio.sleep(0.01)
        if self.down:
            raise ConnectionError("the database is down")
        if any(note.target in self.refused for note in notes):
            raise ValueError("value too long for type character varying(200)")
        self.batches.append([note.target for note in notes])


def _note(batcher: AuditBatcher, n: int) -> None:
    batcher.note("vehicle.connected", actor="hub", target=f"t{n}", details={})


async def _settle(batcher: AuditBatcher) -> None:
    """Let the batcher write what it holds (virtual time: each commit takes 10 ms)."""
    await trio.sleep(0.5)
    assert batcher.statistics().pending == 0


async def test_notes_made_while_a_batch_commits_go_together_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log = FlakyLog()
    batcher = AuditBatcher(log)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        _note(batcher, 0)
        await trio.sleep(0.005)  # the first batch is committing
        for n in range(1, 6):
            _note(batcher, n)
        await _settle(batcher)
        nursery.cancel_scope.cancel()
    assert log.batches == [["t0"], ["t1", "t2", "t3", "t4", "t5"]]
    assert batcher.statistics() == AuditNoteStatistics(pending=0, written=6, dropped=0)


async def test_a_note_the_database_refuses_is_dropped_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log = FlakyLog()
    log.refused = {"t2"}
    batcher = AuditBatcher(log)
    for n in range(4):
        _note(batcher, n)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        await _settle(batcher)
        nursery.cancel_scope.cancel()
    assert log.batches == [["t0"], ["t1"], ["t3"]]  # the batch, retried note by note
    assert batcher.statistics() == AuditNoteStatistics(pending=0, written=3, dropped=1)


async def test_notes_wait_out_an_outage_and_the_oldest_go_past_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log = FlakyLog()
    log.down = True
    batcher = AuditBatcher(log, max_pending=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        for n in range(5):
            _note(batcher, n)
        await trio.sleep(3 * RETRY_S)
        assert log.batches == []
        assert batcher.statistics() == AuditNoteStatistics(pending=3, written=0, dropped=2)
        log.down = False
        await trio.sleep(RETRY_S)  # the next retry
        await _settle(batcher)
        nursery.cancel_scope.cancel()
    assert log.batches == [["t2", "t3", "t4"]]
    assert batcher.statistics() == AuditNoteStatistics(pending=0, written=3, dropped=2)


async def test_what_is_left_is_written_when_the_batcher_stops() -> None:
    log = FlakyLog()
    batcher = AuditBatcher(log)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.cancel_scope.cancel()
        _note(batcher, 0)  # made as the hub stops: still written
    assert log.batches == [["t0"]]


def test_a_vin_that_cannot_be_one_stays_out_of_the_target() -> None:
    assert vehicle_target("WVWZZZ1JZXW000001") == ("vehicle:WVWZZZ1JZXW000001", {})
    long = "X" * 5000
    assert vehicle_target(long) == ("vehicle:?", {"claimed_vin": repr("X" * 40)})
    assert vehicle_target("WVWZZZ1JZXW00000\x00") == (
        "vehicle:?",
        {"claimed_vin": "'WVWZZZ1JZXW00000\\x00'"},
    )


def test_text_from_a_vehicle_is_bounded_and_without_nul() -> None:
    assert storable("agent\x00 1.0" + "x" * 200, 20) == "agent\\x00 1.0xxxxxxx"
