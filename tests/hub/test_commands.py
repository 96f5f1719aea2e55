"""The per-vehicle command state machine, driven without sockets or sleeps."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from hub import Command, CommandEventRecord, CommandStatus, EventKind, SovdRequest, StatusChange
from hub.commands import CommandTracker
from hub.model import JSON

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)


def _command(timeout_s: float = 30.0) -> Command:
    return Command(
        id=uuid.uuid4(),
        vin="WVWZZZ1JZXW000001",
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=timeout_s,
        submitted_by="alice",
        submitted_at=T0,
    )


def _event(
    command: Command,
    seq: int,
    kind: EventKind = EventKind.PROGRESS,
    *,
    final: bool = False,
    status: int = 200,
    body: JSON = None,
) -> CommandEventRecord:
    return CommandEventRecord(command.id, seq, kind, status, body, final, T1)


def _statuses(changes: list[StatusChange] | tuple[StatusChange, ...]) -> list[CommandStatus]:
    return [c.status for c in changes]


def _tracker_running(*commands: Command, max_in_flight: int = 4) -> CommandTracker:
    tracker = CommandTracker(max_in_flight=max_in_flight)
    for command in commands:
        tracker.submit(command)
    tracker.start_ready(now=0.0, at=T0)
    return tracker


def test_commands_start_in_submission_order() -> None:
    tracker = CommandTracker(max_in_flight=4)
    commands = [_command() for _ in range(3)]
    for command in commands:
        tracker.submit(command)

    started = tracker.start_ready(now=0.0, at=T0)

    assert [c for c, _ in started] == commands
    assert [change for _, change in started] == [
        StatusChange(c.id, CommandStatus.DISPATCHED, T0) for c in commands
    ]
    assert tracker.start_ready(now=0.0, at=T0) == []


def test_at_most_max_in_flight_run_and_a_finished_one_frees_a_slot() -> None:
    tracker = CommandTracker(max_in_flight=2)
    first, second, third = _command(), _command(), _command()
    for command in (first, second, third):
        tracker.submit(command)

    assert [c for c, _ in tracker.start_ready(now=0.0, at=T0)] == [first, second]
    assert tracker.start_ready(now=0.0, at=T0) == []

    tracker.on_event(_event(first, 0, EventKind.RESULT, final=True))

    assert [c for c, _ in tracker.start_ready(now=1.0, at=T1)] == [third]


def test_running_then_succeeded() -> None:
    command = _command()
    tracker = _tracker_running(command)

    accepted = tracker.on_event(_event(command, 0, EventKind.ACCEPTED))
    progress = tracker.on_event(_event(command, 1))
    result = tracker.on_event(_event(command, 2, EventKind.RESULT, final=True, body={"dtcs": []}))

    assert accepted.changes == (StatusChange(command.id, CommandStatus.RUNNING, T1),)
    assert accepted.events == (_event(command, 0, EventKind.ACCEPTED),)
    assert progress.changes == ()
    assert progress.events == (_event(command, 1),)
    assert result.changes == (StatusChange(command.id, CommandStatus.SUCCEEDED, T1),)
    assert result.events[0].body == {"dtcs": []}
    assert tracker.running == {}


def test_a_single_final_event_runs_and_finishes_the_command() -> None:
    command = _command()
    tracker = _tracker_running(command)

    outcome = tracker.on_event(_event(command, 0, EventKind.RESULT, final=True))

    assert _statuses(outcome.changes) == [CommandStatus.RUNNING, CommandStatus.SUCCEEDED]
    assert outcome.ignored is None


def test_final_error_fails_with_the_vehicles_message() -> None:
    command = _command()
    tracker = _tracker_running(command)

    outcome = tracker.on_event(
        _event(command, 0, EventKind.ERROR, final=True, status=503, body={"message": "ECU busy"})
    )

    assert outcome.changes[-1] == StatusChange(command.id, CommandStatus.FAILED, T1, "ECU busy")


def test_final_error_without_message_names_the_status() -> None:
    command = _command()
    tracker = _tracker_running(command)

    outcome = tracker.on_event(_event(command, 0, EventKind.ERROR, final=True, status=404))

    assert outcome.changes[-1].status is CommandStatus.FAILED
    assert outcome.changes[-1].error == "vehicle reported status 404"


def test_repeated_seq_is_ignored() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.on_event(_event(command, 0, EventKind.ACCEPTED))
    tracker.on_event(_event(command, 1))

    outcome = tracker.on_event(_event(command, 1))

    assert outcome.events == ()
    assert outcome.changes == ()
    assert outcome.ignored == f"repeated seq 1 of command {command.id}"
    # The command is still running and takes seq 2 next.
    assert tracker.on_event(_event(command, 2)).events == (_event(command, 2),)


def test_skipped_seq_fails_the_command() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.on_event(_event(command, 0, EventKind.ACCEPTED))

    outcome = tracker.on_event(_event(command, 3, EventKind.RESULT, final=True))

    assert outcome.events == ()
    assert outcome.changes == (
        StatusChange(command.id, CommandStatus.FAILED, T1, "vehicle skipped from seq 1 to 3"),
    )
    assert command.id not in tracker.running
    assert tracker.on_event(_event(command, 1)).ignored is not None


def test_event_for_a_command_never_given_is_a_violation() -> None:
    tracker = _tracker_running(_command())
    stranger = _command()

    outcome = tracker.on_event(_event(stranger, 0))

    assert outcome.events == ()
    assert outcome.changes == ()
    assert outcome.violation == (
        f"event for command {stranger.id}, which this vehicle was never given"
    )


def test_event_for_a_queued_command_is_a_violation() -> None:
    running, queued = _command(), _command()
    tracker = _tracker_running(running, queued, max_in_flight=1)

    outcome = tracker.on_event(_event(queued, 0))

    assert outcome.violation == f"event for command {queued.id}, which this vehicle was never given"
    assert list(tracker.queued) == [queued]


def test_a_late_event_after_a_timeout_is_ignored() -> None:
    command = _command(timeout_s=5)
    tracker = _tracker_running(command)
    tracker.expire(now=10.0, at=T1)

    outcome = tracker.on_event(_event(command, 0))

    assert outcome.ignored == f"late event for command {command.id}, which has ended"
    assert outcome.violation is None


def test_event_after_the_final_one_is_ignored() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.on_event(_event(command, 0, EventKind.RESULT, final=True))

    outcome = tracker.on_event(_event(command, 1))

    assert outcome.ignored == f"late event for command {command.id}, which has ended"
    assert outcome.changes == ()


def test_next_deadline_is_the_earliest_running_one() -> None:
    tracker = CommandTracker(max_in_flight=4)
    assert tracker.next_deadline() == math.inf

    slow, fast = _command(timeout_s=60), _command(timeout_s=5)
    tracker.submit(slow)
    tracker.submit(fast)
    tracker.start_ready(now=100.0, at=T0)

    assert tracker.next_deadline() == 105.0


def test_expire_times_out_only_commands_past_their_deadline() -> None:
    slow, fast = _command(timeout_s=60), _command(timeout_s=5)
    tracker = _tracker_running(slow, fast)

    assert tracker.expire(now=4.9, at=T1) == []
    expired = tracker.expire(now=5.0, at=T1)

    assert expired == [
        StatusChange(fast.id, CommandStatus.TIMED_OUT, T1, "no final event within 5 s")
    ]
    assert list(tracker.running) == [slow.id]
    assert tracker.next_deadline() == 60.0
    assert tracker.on_event(_event(fast, 0)).ignored is not None


def test_timeout_message_keeps_fractions() -> None:
    command = _command(timeout_s=2.5)
    tracker = _tracker_running(command)

    (change,) = tracker.expire(now=3.0, at=T1)

    assert change.error == "no final event within 2.5 s"


def test_interrupt_running_leaves_the_queue() -> None:
    running, queued = _command(), _command()
    tracker = _tracker_running(running, queued, max_in_flight=1)

    changes = tracker.interrupt_running(T1, "link lost")

    assert changes == [StatusChange(running.id, CommandStatus.INTERRUPTED, T1, "link lost")]
    assert tracker.running == {}
    assert list(tracker.queued) == [queued]
    assert [c for c, _ in tracker.start_ready(now=2.0, at=T1)] == [queued]


def test_interrupt_all_ends_running_and_queued() -> None:
    running, queued = _command(), _command()
    tracker = _tracker_running(running, queued, max_in_flight=1)

    changes = tracker.interrupt_all(T1, "hub stopping")

    assert changes == [
        StatusChange(running.id, CommandStatus.INTERRUPTED, T1, "hub stopping"),
        StatusChange(queued.id, CommandStatus.INTERRUPTED, T1, "hub stopping"),
    ]
    assert tracker.running == {}
    assert list(tracker.queued) == []
    assert tracker.start_ready(now=2.0, at=T1) == []


def test_cancelling_a_waiting_command_ends_it_at_once() -> None:
    running, waiting = _command(), _command()
    tracker = _tracker_running(running, waiting, max_in_flight=1)

    changes, ask_vehicle = tracker.cancel(waiting.id, "alice", now=1.0, at=T1, grace_s=5)

    assert not ask_vehicle
    assert [(c.command_id, c.status, c.error) for c in changes] == [
        (waiting.id, CommandStatus.CANCELLED, "cancelled by alice before it was sent")
    ]
    assert [c.id for c, _ in tracker.start_ready(now=1.0, at=T1)] == []  # nothing left queued


def test_a_running_command_ends_cancelled_when_the_vehicle_confirms() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.on_event(_event(command, 0))

    changes, ask_vehicle = tracker.cancel(command.id, "alice", now=1.0, at=T1, grace_s=5)
    assert (changes, ask_vehicle) == ([], True)
    assert tracker.cancel(command.id, "bob", now=1.5, at=T1, grace_s=5) == ([], False)  # once

    confirm = tracker.on_event(_event(command, 1, EventKind.ERROR, final=True, status=499))
    assert [(c.status, c.error) for c in confirm.changes] == [
        (CommandStatus.CANCELLED, "cancelled by alice")
    ]


def test_a_command_that_finishes_before_the_cancel_lands_succeeds() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.cancel(command.id, "alice", now=1.0, at=T1, grace_s=5)
    done = tracker.on_event(_event(command, 0, EventKind.RESULT, final=True))
    assert _statuses(done.changes) == [CommandStatus.RUNNING, CommandStatus.SUCCEEDED]


def test_an_unconfirmed_cancel_ends_cancelled_after_the_grace() -> None:
    command = _command(timeout_s=30)
    tracker = _tracker_running(command)
    tracker.cancel(command.id, "alice", now=1.0, at=T1, grace_s=5)

    assert tracker.next_deadline() == 6.0
    assert tracker.expire(now=5.9, at=T1) == []
    [change] = tracker.expire(now=6.0, at=T1)
    assert (change.status, change.error) == (
        CommandStatus.CANCELLED,
        "cancelled by alice; the vehicle did not confirm in time",
    )


def test_cancelling_a_command_not_held_ends_it_at_once() -> None:
    # Stored and not final (the caller checked), but nothing here holds it: nothing will run it.
    tracker = _tracker_running(_command())
    unknown = uuid.uuid4()
    changes, ask = tracker.cancel(unknown, "alice", now=1.0, at=T1, grace_s=5)
    assert ask is False
    assert [(c.command_id, c.status, c.error) for c in changes] == [
        (unknown, CommandStatus.CANCELLED, "cancelled by alice before it was sent")
    ]


def test_a_command_cancelled_before_it_arrives_is_dropped_when_it_does() -> None:
    # The command reaches the actor through a stream, its cancel directly: the cancel can win.
    running, late = _command(), _command()
    tracker = _tracker_running(running, max_in_flight=1)
    changes, _ = tracker.cancel(late.id, "alice", now=1.0, at=T1, grace_s=5)
    assert _statuses(changes) == [CommandStatus.CANCELLED]  # recorded now

    assert tracker.submit(late) is False  # never queued, never sent, not cancelled twice
    assert tracker.start_ready(now=1.0, at=T1) == []
    assert not tracker.holds(late.id)
    assert tracker.cancel(late.id, "bob", now=2.0, at=T1, grace_s=5) == ([], False)
    assert tracker.early_cancels == {}


def test_a_cancel_for_an_ended_command_is_not_remembered() -> None:
    command = _command()
    tracker = _tracker_running(command)
    tracker.on_event(_event(command, 0, final=True))
    assert tracker.cancel(command.id, "alice", now=1.0, at=T1, grace_s=5) == ([], False)
    assert tracker.early_cancels == {}
