"""Commands: creation with its audit event, the journal of events and status changes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, timedelta

import pytest

from hub import (
    JSON,
    CommandEventRecord,
    CommandStatus,
    EventKind,
    StatusChange,
)
from storage import ConflictError, Database, StorageError, UnknownVehicleError, open_database
from tests.support.commands import T0, VIN, make_command, make_event


@pytest.fixture
async def vehicle(database: Database) -> str:
    await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    return VIN


async def test_create_command_stores_it_pending_with_its_audit_event(
    database: Database, vehicle: str
) -> None:
    command = make_command()
    await database.commands.create_command(command)

    row = await database.commands.get_command(command.id)
    assert row is not None
    assert (row.id, row.vin, row.name, row.submitted_by) == (command.id, VIN, "ReadDTC", "alice")
    assert row.params == {"ecuAddress": "0x10"}
    assert row.sovd == command.sovd
    assert row.status is CommandStatus.PENDING
    assert (row.error, row.started_at, row.finished_at) == (None, None, None)
    assert row.timeout_s == 30.0
    assert row.submitted_at == T0
    assert row.submitted_at.tzinfo is UTC

    [audit] = await database.audit.list_audit(target=f"command:{command.id}")
    assert (audit.actor, audit.action, audit.at) == ("alice", "command.submitted", T0)
    assert audit.details == {"vin": VIN, "name": "ReadDTC", "params": {"ecuAddress": "0x10"}}


async def test_create_command_for_an_unknown_vehicle_stores_nothing(database: Database) -> None:
    command = make_command(vin="WVWZZZ1JZXW999999")

    with pytest.raises(UnknownVehicleError, match="vehicle WVWZZZ1JZXW999999 is not registered"):
        await database.commands.create_command(command)
    assert await database.commands.get_command(command.id) is None
    assert await database.audit.list_audit() == []


async def test_create_command_twice_is_a_conflict(database: Database, vehicle: str) -> None:
    command = make_command()
    await database.commands.create_command(command)

    with pytest.raises(ConflictError, match=f"command {command.id} already exists"):
        await database.commands.create_command(command)
    assert len(await database.audit.list_audit(target=f"command:{command.id}")) == 1


async def test_get_command_unknown_id(database: Database) -> None:
    assert await database.commands.get_command(uuid.uuid4()) is None


async def test_record_stores_events_once_and_lists_them_from_a_seq(
    database: Database, vehicle: str
) -> None:
    command = make_command()
    await database.commands.create_command(command)
    events = [make_event(command, seq) for seq in range(3)]

    await database.commands.record(events[:2], [])
    # A replayed batch (vehicle resent after a flap) overlaps what is stored.
    await database.commands.record([events[1], events[2], events[1]], [])

    assert await database.commands.list_events(command.id) == events
    assert await database.commands.list_events(command.id, from_seq=2) == events[2:]
    assert await database.commands.list_events(command.id, from_seq=3) == []
    assert (await database.commands.list_events(command.id))[0].received_at.tzinfo is UTC


async def test_events_keep_their_json_body(database: Database, vehicle: str) -> None:
    command = make_command()
    await database.commands.create_command(command)
    bodies: list[JSON] = [None, "text", 3, [1, "two"], {"nested": {"ok": True, "n": None}}]
    events = [
        CommandEventRecord(command.id, seq, EventKind.PROGRESS, 206, body, False, T0)
        for seq, body in enumerate(bodies)
    ]

    await database.commands.record(events, [])

    assert [e.body for e in await database.commands.list_events(command.id)] == bodies


async def test_status_changes_set_timestamps_and_audit_the_final_one(
    database: Database, vehicle: str
) -> None:
    command = make_command()
    await database.commands.create_command(command)
    t1, t2, t3 = (T0 + timedelta(seconds=n) for n in (1, 2, 3))

    await database.commands.record([], [StatusChange(command.id, CommandStatus.DISPATCHED, t1)])
    row = await database.commands.get_command(command.id)
    assert row is not None
    assert (row.status, row.started_at, row.finished_at) == (CommandStatus.DISPATCHED, None, None)

    await database.commands.record(
        [make_event(command, 0)],
        [
            StatusChange(command.id, CommandStatus.RUNNING, t2),
            StatusChange(command.id, CommandStatus.RUNNING, t2 + timedelta(seconds=0.5)),
        ],
    )
    row = await database.commands.get_command(command.id)
    assert row is not None
    assert (row.status, row.started_at, row.finished_at) == (CommandStatus.RUNNING, t2, None)

    await database.commands.record(
        [make_event(command, 1, final=True)],
        [StatusChange(command.id, CommandStatus.FAILED, t3, error="ECU 0x10 did not answer")],
    )
    row = await database.commands.get_command(command.id)
    assert row is not None
    assert (row.status, row.started_at, row.finished_at) == (CommandStatus.FAILED, t2, t3)
    assert row.error == "ECU 0x10 did not answer"
    assert row.finished_at is not None
    assert row.finished_at.tzinfo is UTC

    audit = await database.audit.list_audit(target=f"command:{command.id}")
    assert [(a.action, a.actor) for a in audit] == [
        ("command.submitted", "alice"),
        ("command.failed", "hub"),
    ]
    assert audit[1].details == {"vin": command.vin, "error": "ECU 0x10 did not answer"}
    assert audit[1].at == t3


async def test_a_final_status_is_never_overwritten(database: Database, vehicle: str) -> None:
    command = make_command()
    await database.commands.create_command(command)
    t1 = T0 + timedelta(seconds=1)
    late = T0 + timedelta(seconds=9)

    await database.commands.record([], [StatusChange(command.id, CommandStatus.SUCCEEDED, t1)])
    await database.commands.record(
        [],
        [
            StatusChange(command.id, CommandStatus.RUNNING, late),
            StatusChange(command.id, CommandStatus.TIMED_OUT, late, error="deadline passed"),
        ],
    )

    row = await database.commands.get_command(command.id)
    assert row is not None
    assert (row.status, row.error, row.started_at, row.finished_at) == (
        CommandStatus.SUCCEEDED,
        None,
        None,
        t1,
    )
    actions = [a.action for a in await database.audit.list_audit(target=f"command:{command.id}")]
    assert actions == ["command.submitted", "command.succeeded"]


async def test_record_is_one_transaction(database: Database, vehicle: str) -> None:
    command = make_command()
    await database.commands.create_command(command)
    unknown = make_command()  # never created: its event breaks the foreign key

    with pytest.raises(StorageError, match="refused the operation"):
        await database.commands.record(
            [make_event(command, 0), make_event(unknown, 0)],
            [StatusChange(command.id, CommandStatus.RUNNING, T0)],
        )

    assert await database.commands.list_events(command.id) == []
    row = await database.commands.get_command(command.id)
    assert row is not None
    assert row.status is CommandStatus.PENDING


async def test_interrupt_unfinished_moves_only_non_final_commands(
    database: Database, vehicle: str
) -> None:
    pending, running, done = make_command(), make_command(), make_command()
    for command in (pending, running, done):
        await database.commands.create_command(command)
    await database.commands.record(
        [],
        [
            StatusChange(running.id, CommandStatus.RUNNING, T0),
            StatusChange(done.id, CommandStatus.SUCCEEDED, T0),
        ],
    )
    restart = T0 + timedelta(minutes=5)

    assert len(await database.commands.interrupt_unfinished(restart, "hub restarted")) == 2
    assert await database.commands.interrupt_unfinished(restart, "hub restarted") == []

    for command in (pending, running):
        row = await database.commands.get_command(command.id)
        assert row is not None
        assert (row.status, row.error, row.finished_at) == (
            CommandStatus.INTERRUPTED,
            "hub restarted",
            restart,
        )
        [*_, audit] = await database.audit.list_audit(target=f"command:{command.id}")
        assert (audit.action, audit.actor, audit.details) == (
            "command.interrupted",
            "hub",
            {"vin": command.vin, "error": "hub restarted"},
        )
    row = await database.commands.get_command(done.id)
    assert row is not None
    assert row.status is CommandStatus.SUCCEEDED


async def test_one_record_holds_a_whole_batch(database: Database, vehicle: str) -> None:
    first, second = make_command(), make_command()
    t1 = T0 + timedelta(seconds=1)
    await database.commands.record(
        [make_event(first, 0, final=True)],
        [
            StatusChange(first.id, CommandStatus.DISPATCHED, t1),
            StatusChange(second.id, CommandStatus.DISPATCHED, t1),
            StatusChange(first.id, CommandStatus.RUNNING, t1),
            StatusChange(first.id, CommandStatus.SUCCEEDED, t1),
            StatusChange(second.id, CommandStatus.TIMED_OUT, t1, "no final event"),
            StatusChange(second.id, CommandStatus.FAILED, t1, "too late"),  # first final wins
        ],
        [first, second],
    )
    rows = [await database.commands.get_command(c.id) for c in (first, second)]
    assert [(r.status, r.error) for r in rows if r] == [
        (CommandStatus.SUCCEEDED, None),
        (CommandStatus.TIMED_OUT, "no final event"),
    ]
    assert [e.seq for e in await database.commands.list_events(first.id)] == [0]
    audit = [a.action for a in await database.audit.list_audit(target=f"command:{second.id}")]
    assert audit == ["command.submitted", "command.timed_out"]


async def test_waiting_commands_survive_a_restart_and_expire_on_time(
    database: Database, vehicle: str
) -> None:
    waiting = replace(make_command(), expires_at=T0 + timedelta(minutes=5))
    later = replace(make_command(at=T0 + timedelta(seconds=1)), expires_at=T0 + timedelta(hours=1))
    await database.commands.record([], [], [later, waiting])

    assert await database.commands.interrupt_unfinished(T0, "hub restarted") == []
    assert [c.id for c in await database.commands.waiting_commands(vehicle)] == [
        waiting.id,
        later.id,
    ]

    assert await database.commands.expire_waiting(T0 + timedelta(minutes=10), spare={vehicle}) == []
    [(expired_vin, update)] = await database.commands.expire_waiting(
        T0 + timedelta(minutes=10),
        spare={"WVWZZZ1JZXW999999"},  # others connected: not spared
    )
    expired = update.update
    assert expired_vin == vehicle and update.submitted_by == "alice"
    assert (expired.command_id, expired.status) == (waiting.id, CommandStatus.EXPIRED)
    row = await database.commands.get_command(waiting.id)
    assert row is not None and row.status is CommandStatus.EXPIRED
    assert [c.id for c in await database.commands.waiting_commands(vehicle)] == [later.id]


async def test_the_final_audit_names_the_node_that_dispatched_the_command(
    database_url: str,
) -> None:
    async with (
        open_database(database_url, bcrypt_rounds=4, node_id="node-a") as a,
        open_database(database_url, bcrypt_rounds=4, node_id="node-b") as b,
    ):
        await a.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
        together, apart = make_command(), make_command()
        await a.commands.record([], [], [together, apart])  # accepted by node-a
        t1 = T0 + timedelta(seconds=1)
        # node-b dispatches and ends one in a single batch, the other in two
        await b.commands.record(
            [],
            [
                StatusChange(together.id, CommandStatus.DISPATCHED, t1),
                StatusChange(together.id, CommandStatus.RUNNING, t1),
                StatusChange(together.id, CommandStatus.SUCCEEDED, t1),
                StatusChange(apart.id, CommandStatus.DISPATCHED, t1),
            ],
        )
        await b.commands.record([], [StatusChange(apart.id, CommandStatus.FAILED, t1, "no")])

        for command, action in ((together, "command.succeeded"), (apart, "command.failed")):
            *_, audit = await a.audit.list_audit(target=f"command:{command.id}")
            assert (audit.action, audit.details["node"]) == (action, "node-b")
            row = await a.commands.get_command(command.id)
            assert row is not None
            assert row.finished_at == t1
        stored = await a.commands.get_command(together.id)
        assert stored is not None
        assert stored.started_at == t1
