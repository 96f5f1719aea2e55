"""The WebSocket frames embed the hub's JSON form of what they carry (`api.ws_frames`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from api.schemas import EventOut
from api.ws_frames import event_frame, status_frame, update_frame, vehicle_frame
from hub import CommandEventRecord, CommandStatus, EventKind, StatusChange, VehicleStatus

NOW = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)
EVENT = CommandEventRecord(
    uuid.uuid4(), 1, EventKind.RESULT, 200, {"text": 'a "quoted" ünïcode'}, True, NOW
)


def test_an_event_frame_is_type_topic_and_the_events_json_form() -> None:
    topic = 'vehicle:W"Ü'
    for frame in (event_frame(topic, EVENT), update_frame(topic, EVENT)):
        assert orjson.loads(orjson.dumps(frame)) == {
            "type": "event",
            "topic": topic,
            **EVENT.to_json(),
        }


def test_status_and_vehicle_frames_are_type_topic_and_the_json_form() -> None:
    change = StatusChange(EVENT.command_id, CommandStatus.CANCELLED, NOW, "cancelled by x")
    assert status_frame("t", change) == {"type": "status", "topic": "t", **change.to_json()}
    assert update_frame("t", change) == status_frame("t", change)
    status = VehicleStatus("WVWZZZ1JZXW000001", True, NOW)
    assert vehicle_frame("fleet", status) == {
        "type": "vehicle",
        "topic": "fleet",
        **status.to_json(),
    }


def test_the_rest_event_schema_has_the_fields_of_the_json_form() -> None:
    assert list(EventOut.model_fields) == list(EVENT.to_json())
    assert EventOut.model_validate(EVENT.to_json()).model_dump() == {
        "command_id": EVENT.command_id,
        "seq": 1,
        "kind": "result",
        "status": 200,
        "body": {"text": 'a "quoted" ünïcode'},
        "final": True,
        "received_at": NOW,
    }
