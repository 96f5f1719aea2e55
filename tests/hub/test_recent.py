"""RecentCommands holds what was published of the commands handed to this node's actors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hub import CommandEventRecord, CommandStatus, EventKind, InProcessBus, StatusChange
from hub.recent import RecentCommands, RememberingBus
from hub.testing import command

VIN = "WVWZZZ1JZXW000001"
AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def _event(command_id: uuid.UUID, seq: int, final: bool = False) -> CommandEventRecord:
    kind = EventKind.RESULT if final else EventKind.PROGRESS
    return CommandEventRecord(command_id, seq, kind, 200, {"seq": seq}, final, AT)


def test_a_held_command_has_its_published_events_and_status_as_storage_would() -> None:
    recent = RecentCommands(10)
    bus = RememberingBus(InProcessBus(), recent)
    held = command(VIN)
    recent.dispatched(held)
    bus.publish("x", StatusChange(held.id, CommandStatus.DISPATCHED, AT))
    bus.publish("x", StatusChange(held.id, CommandStatus.RUNNING, AT))
    events = [_event(held.id, 0), _event(held.id, 1, final=True)]
    for event in events:
        bus.publish("x", event)
    bus.publish("x", StatusChange(held.id, CommandStatus.SUCCEEDED, AT))
    bus.publish("x", StatusChange(held.id, CommandStatus.INTERRUPTED, AT, "late"))  # final wins

    found = recent.get(held.id)
    assert found is not None
    stored, replay = found
    assert (stored.status, stored.started_at, stored.finished_at, stored.error) == (
        CommandStatus.SUCCEEDED,
        AT,
        AT,
        None,
    )
    assert replay == events
    assert recent.get(held.id, from_seq=1) == (stored, events[1:])


def test_a_command_not_handed_here_is_not_held() -> None:
    recent = RecentCommands(10)
    other = command(VIN)
    recent.observe(_event(other.id, 0))
    assert recent.get(other.id) is None


def test_an_event_out_of_order_drops_the_command_to_the_database() -> None:
    recent = RecentCommands(10)
    held = command(VIN)
    recent.dispatched(held)
    recent.observe(_event(held.id, 1))  # seq 0 never passed here
    assert recent.get(held.id) is None


def test_the_oldest_command_goes_first_past_capacity_and_zero_keeps_none() -> None:
    recent = RecentCommands(2)
    first, second, third = command(VIN), command(VIN), command(VIN)
    for held in (first, second, third):
        recent.dispatched(held)
    assert [recent.get(c.id) is not None for c in (first, second, third)] == [False, True, True]
    none = RecentCommands(0)
    none.dispatched(first)
    assert none.get(first.id) is None and len(none) == 0
