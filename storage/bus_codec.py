"""The wire form of the hub's bus messages between nodes: compact, versioned JSON (orjson).

One message is one JSON object, the envelope:

    {"v": 1, "n": "<node id>", "t": "<type>", "m": {...fields...}}

`v` is the format version (a node drops versions it does not know, so a
rolling upgrade loses live messages, never crashes), `n` the publishing node
(a node skips its own: it delivered them locally already), `t` the message
type and `m` its fields. Types: `event` (`CommandEventRecord`), `status`
(`StatusChange`), `update` (`CommandUpdate`, whose `u` is an `event` or a
`status` envelope without `v`/`n`), `vehicle` (`VehicleStatus`), `session`
(`SessionRevoked`). UUIDs are strings, datetimes ISO 8601 strings, enums
their values. The topic is the Redis channel, not repeated here.

`decode` raises `CodecError` for anything it cannot read back exactly.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from hub.model import (
    JSON,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    DisconnectReason,
    EventKind,
    SessionRevoked,
    StatusChange,
    VehicleStatus,
)
from hub.ports import BusMessage

__all__ = ["VERSION", "CodecError", "decode", "encode"]

#: The envelope version this node writes and reads.
VERSION = 1

Fields = dict[str, JSON]


class CodecError(ValueError):
    """A bus message that is not valid JSON, of another version, or not a known message."""


def encode(node_id: str, message: BusMessage) -> bytes:
    """`message` from `node_id` as one envelope (UTF-8 JSON bytes)."""
    kind, fields = _fields(message)
    return orjson.dumps({"v": VERSION, "n": node_id, "t": kind, "m": fields})


def decode(data: bytes) -> tuple[str, BusMessage]:
    """The publishing node's id and the message of an envelope; `CodecError` if it is not one."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise CodecError(f"expected a JSON object, got {type(envelope).__name__}")
    version = envelope.get("v")
    if version != VERSION:
        raise CodecError(f"expected envelope version {VERSION}, got {version!r}")
    node_id = _str(envelope, "n")
    try:
        return node_id, _message(_str(envelope, "t"), _object(envelope, "m"))
    except (ValueError, TypeError, KeyError) as exc:  # bad UUID, enum value, datetime...
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed message: {exc!r}") from exc


def _fields(message: BusMessage) -> tuple[str, Fields]:
    match message:
        case CommandEventRecord():
            return "event", {
                "c": str(message.command_id),
                "s": message.seq,
                "k": message.kind.value,
                "st": message.status,
                "b": message.body,
                "f": message.final,
                "at": message.received_at.isoformat(),
            }
        case StatusChange():
            return "status", {
                "c": str(message.command_id),
                "s": message.status.value,
                "at": message.at.isoformat(),
                "e": message.error,
            }
        case CommandUpdate():
            kind, fields = _fields(message.update)
            return "update", {"by": message.submitted_by, "u": {"t": kind, "m": fields}}
        case VehicleStatus():
            return "vehicle", {
                "vin": message.vin,
                "up": message.connected,
                "at": message.at.isoformat(),
                "r": None if message.reason is None else message.reason.value,
                "d": message.detail,
            }
        case SessionRevoked():
            return "session", {"id": str(message.session_id), "at": message.at.isoformat()}


def _message(kind: str, m: Fields) -> BusMessage:
    if kind == "event":
        body = m["b"]
        return CommandEventRecord(
            command_id=uuid.UUID(_str(m, "c")),
            seq=_int(m, "s"),
            kind=EventKind(_str(m, "k")),
            status=_int(m, "st"),
            body=body,
            final=_bool(m, "f"),
            received_at=_datetime(m, "at"),
        )
    if kind == "status":
        return StatusChange(
            command_id=uuid.UUID(_str(m, "c")),
            status=CommandStatus(_str(m, "s")),
            at=_datetime(m, "at"),
            error=_optional_str(m, "e"),
        )
    if kind == "update":
        inner = _object(m, "u")
        update = _message(_str(inner, "t"), _object(inner, "m"))
        if not isinstance(update, CommandEventRecord | StatusChange):
            raise CodecError(f"an update carries an event or a status, got {type(update).__name__}")
        return CommandUpdate(submitted_by=_optional_str(m, "by"), update=update)
    if kind == "vehicle":
        reason = _optional_str(m, "r")
        return VehicleStatus(
            vin=_str(m, "vin"),
            connected=_bool(m, "up"),
            at=_datetime(m, "at"),
            reason=None if reason is None else DisconnectReason(reason),
            detail=_optional_str(m, "d"),
        )
    if kind == "session":
        return SessionRevoked(session_id=uuid.UUID(_str(m, "id")), at=_datetime(m, "at"))
    raise CodecError(f"unknown message type {kind!r}")


def _object(m: Fields, key: str) -> Fields:
    value = m[key]
    if not isinstance(value, dict):
        raise CodecError(f"{key!r}: expected an object, got {type(value).__name__}")
    return value


def _str(m: Fields, key: str) -> str:
    value = m[key]
    if not isinstance(value, str):
        raise CodecError(f"{key!r}: expected a string, got {type(value).__name__}")
    return value


def _optional_str(m: Fields, key: str) -> str | None:
    return None if m.get(key) is None else _str(m, key)


def _int(m: Fields, key: str) -> int:
    value = m[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise CodecError(f"{key!r}: expected an integer, got {type(value).__name__}")
    return value


def _bool(m: Fields, key: str) -> bool:
    value = m[key]
    if not isinstance(value, bool):
        raise CodecError(f"{key!r}: expected true or false, got {type(value).__name__}")
    return value


def _datetime(m: Fields, key: str) -> datetime:
    return datetime.fromisoformat(_str(m, key))
