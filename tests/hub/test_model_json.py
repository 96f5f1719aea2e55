"""The one JSON form of a command, an event, a status change and a vehicle's status."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    DisconnectReason,
    EventKind,
    SovdRequest,
    StatusChange,
    VehicleStatus,
)

NOW = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)
COMMAND = uuid.UUID("7c0b3c1e-8d44-4b8e-9d6f-0a1b2c3d4e5f")
EVENT = CommandEventRecord(COMMAND, 3, EventKind.PROGRESS, 206, {"dtcs": ["P0420"]}, False, NOW)


def test_an_event_has_the_documented_fields() -> None:
    assert EVENT.to_json() == {
        "command_id": str(COMMAND),
        "seq": 3,
        "kind": "progress",
        "status": 206,
        "body": {"dtcs": ["P0420"]},
        "final": False,
        "received_at": "2026-11-26T12:30:15.123456+00:00",
    }


def test_a_status_change_and_a_vehicle_status_have_the_documented_fields() -> None:
    change = StatusChange(COMMAND, CommandStatus.FAILED, NOW, "the vehicle said no")
    assert change.to_json() == {
        "command_id": str(COMMAND),
        "status": "failed",
        "error": "the vehicle said no",
        "at": "2026-11-26T12:30:15.123456+00:00",
    }
    status = VehicleStatus("WVWZZZ1JZXW000001", False, NOW, DisconnectReason.REVOKED, "disabled")
    assert status.to_json() == {
        "vin": "WVWZZZ1JZXW000001",
        "status": "disconnected",
        "reason": "revoked",
        "detail": "disabled",
        "at": "2026-11-26T12:30:15.123456+00:00",
    }


@pytest.mark.parametrize(
    "message",
    [
        EVENT,
        CommandEventRecord(COMMAND, 0, EventKind.RESULT, 200, None, True, NOW),
        StatusChange(COMMAND, CommandStatus.RUNNING, NOW),
        StatusChange(COMMAND, CommandStatus.FAILED, NOW, error="no"),
        VehicleStatus("WVWZZZ1JZXW000001", True, NOW),
        VehicleStatus(
            "WVWZZZ1JZXW000001",
            False,
            NOW.astimezone(timezone(timedelta(hours=2))),
            DisconnectReason.HEARTBEAT_TIMEOUT,
            "silent for 30 s",
        ),
    ],
    ids=lambda m: type(m).__name__,
)
def test_from_json_reads_back_what_to_json_gave(
    message: CommandEventRecord | StatusChange | VehicleStatus,
) -> None:
    assert type(message).from_json(message.to_json()) == message


def _event_with(**changes: JSON) -> dict[str, JSON]:
    return {**EVENT.to_json(), **changes}


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({k: v for k, v in EVENT.to_json().items() if k != "seq"}, "'seq': missing"),
        (_event_with(seq="3"), "'seq': expected an integer, got str"),
        (_event_with(seq=True), "'seq': expected an integer, got bool"),
        (_event_with(final=1), "'final': expected true or false, got int"),
        (_event_with(command_id="x"), "'command_id': expected a UUID, got 'x'"),
        (_event_with(kind="chunk"), "'kind': expected one of 'accepted', .*, got 'chunk'"),
        (_event_with(received_at="yesterday"), "'received_at': expected an ISO 8601 time"),
        (
            _event_with(received_at="2026-11-26T12:30:15"),
            "'received_at': expected a time with a zone",
        ),
    ],
)
def test_an_event_that_is_not_one_is_refused_naming_the_field(
    fields: dict[str, JSON], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        CommandEventRecord.from_json(fields)


def test_a_vehicle_status_must_be_connected_or_disconnected() -> None:
    fields = {**VehicleStatus("V", True, NOW).to_json(), "status": "up"}
    with pytest.raises(ValueError, match="'status': expected 'connected' or 'disconnected'"):
        VehicleStatus.from_json(fields)


SUBMITTED = Command(
    id=COMMAND,
    vin="WVWZZZ1JZXW000001",
    name="ReadDTC",
    params={"ecuAddress": "0x10"},
    sovd=SovdRequest("GET", "/components/engine/faults", {"status": "active"}, None),
    timeout_s=30.0,
    submitted_by="engineer",
    submitted_at=NOW,
    expires_at=NOW + timedelta(minutes=5),
)


def test_a_command_reads_back_exactly_as_submitted() -> None:
    assert Command.from_json(SUBMITTED.to_json()) == SUBMITTED
    without_ttl = replace(SUBMITTED, expires_at=None, sovd=SovdRequest("POST", "/x", {}, {"a": 1}))
    assert Command.from_json(without_ttl.to_json()) == without_ttl


def test_a_commands_json_form_leaves_its_stored_status_out() -> None:
    stored = replace(SUBMITTED, status=CommandStatus.FAILED, error="no", finished_at=NOW)
    back = Command.from_json(stored.to_json())
    assert (back.status, back.error, back.finished_at) == (CommandStatus.PENDING, None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "nope"}, "'id': expected a UUID, got 'nope'"),
        ({"timeout_s": "30"}, "'timeout_s': expected a number, got str"),
        ({"timeout_s": True}, "'timeout_s': expected a number, got bool"),
        ({"params": []}, "'params': expected an object, got list"),
        ({"sovd": {"method": "GET", "path": "/x"}}, "'query': missing"),
        ({"sovd": {"method": "GET", "path": "/x", "query": {"a": 1}}}, "'a': expected a string"),
        ({"submitted_at": "2026-11-26T12:30:15"}, "'submitted_at': expected a time with a zone"),
        ({"expires_at": 5}, "'expires_at': expected a string, got int"),
    ],
)
def test_a_command_that_is_not_one_is_refused_naming_the_field(
    change: dict[str, JSON], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        Command.from_json(SUBMITTED.to_json() | change)
    broken = SUBMITTED.to_json()
    del broken["vin"]
    with pytest.raises(ValueError, match=r"^'vin': missing$"):
        Command.from_json(broken)
