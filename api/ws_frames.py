"""The frames of the operator WebSocket (see `api.websocket` for the protocol): sans-IO."""

from __future__ import annotations

import uuid
from typing import TypeAlias

import orjson

from api.errors import EdgeError
from hub import (
    JSON,
    CommandEventRecord,
    StatusChange,
    VehicleStatus,
    command_topic,
)

#: A frame, as sent (JSON text) and received (a JSON object).
Message: TypeAlias = dict[str, JSON]

#: `code` of the error frames, each with a `message` saying what to change.
ERROR_CODES = (
    "malformed_message",
    "unknown_type",
    "bad_topic",
    "bad_from_seq",
    "already_subscribed",
    "not_subscribed",
    "unknown_command",
    "unknown_vehicle",
    "overflow",
    "bad_auth",
    "storage_unavailable",
    "too_many_subscriptions",
    "rate_limited",
)


class ClientError(EdgeError):
    """A client message we cannot act on; answered with an error frame."""

    def __init__(self, code: str, message: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.frame: Message = {"type": "error", "code": code, "message": message}
        if topic is not None:
            self.frame["topic"] = topic


def parse_message(raw: str | bytes) -> Message:
    """One client message: a JSON object, else `ClientError` malformed_message."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ClientError("malformed_message", "messages must be JSON objects") from None
    if not isinstance(message, dict):
        raise ClientError("malformed_message", "messages must be JSON objects")
    return message


def command_request(message: Message) -> tuple[str, uuid.UUID, int]:
    """The topic, command id and `from_seq` of a `command:<id>` subscribe; else `ClientError`."""
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic.startswith("command:"):
        raise ClientError(
            "bad_topic", f"topic must be 'command:<id>', 'vehicle:<vin>' or 'fleet', got {topic!r}"
        )
    try:
        command_id = uuid.UUID(topic.removeprefix("command:"))
    except ValueError:
        raise ClientError("bad_topic", f"{topic!r}: the command id is not a UUID", topic) from None
    from_seq = message.get("from_seq", 0)
    if not isinstance(from_seq, int) or isinstance(from_seq, bool) or from_seq < 0:
        raise ClientError(
            "bad_from_seq", f"from_seq must be an integer >= 0, got {from_seq!r}", topic
        )
    return command_topic(command_id), command_id, from_seq


def vehicle_frame(topic: str, status: VehicleStatus) -> Message:
    """A `vehicle` frame: a vehicle connected, or disconnected (why, when)."""
    return {"type": "vehicle", "topic": topic, **status.to_json()}


def update_frame(topic: str, update: CommandEventRecord | StatusChange) -> Message:
    """An `event` or `status` frame, whichever `update` is."""
    if isinstance(update, CommandEventRecord):
        return event_frame(topic, update)
    return status_frame(topic, update)


def event_frame(topic: str, event: CommandEventRecord) -> Message:
    """An `event` frame: `type`, `topic`, then the event's JSON form (`to_json()`)."""
    return {"type": "event", "topic": topic, **event.to_json()}


def status_frame(topic: str, change: StatusChange) -> Message:
    """A `status` frame: `type`, `topic`, then the change's JSON form (`to_json()`)."""
    return {"type": "status", "topic": topic, **change.to_json()}
