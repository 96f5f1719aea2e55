"""The frames of the operator WebSocket (see `api.websocket` for the protocol): sans-IO."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import orjson

from hub import (
    JSON,
    CommandEventRecord,
    CommandStatus,
    StatusChange,
    VehicleStatus,
    command_topic,
)

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


class ClientError(Exception):
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
    return {
        "type": "vehicle",
        "topic": topic,
        "vin": status.vin,
        "status": "connected" if status.connected else "disconnected",
        "reason": status.reason.value if status.reason else None,
        "detail": status.detail,
        "at": status.at.isoformat(),
    }


def update_frame(topic: str, update: CommandEventRecord | StatusChange) -> Message:
    """An `event` or `status` frame, whichever `update` is."""
    if isinstance(update, CommandEventRecord):
        return event_frame(topic, update)
    return status_frame(topic, update.command_id, update.status, update.error, update.at)


def event_frame(topic: str, event: CommandEventRecord) -> Message:
    """An `event` frame: one event of a command, with its command id."""
    return {
        "type": "event",
        "topic": topic,
        "command_id": str(event.command_id),
        "seq": event.seq,
        "kind": event.kind.value,
        "status": event.status,
        "body": event.body,
        "final": event.final,
    }


def status_frame(
    topic: str,
    command_id: uuid.UUID,
    status: CommandStatus,
    error: str | None,
    at: datetime | None,
) -> Message:
    """A `status` frame: a command's final status, with its command id."""
    return {
        "type": "status",
        "topic": topic,
        "command_id": str(command_id),
        "status": status.value,
        "error": error,
        "at": at.isoformat() if at else None,
    }
