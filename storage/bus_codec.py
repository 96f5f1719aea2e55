"""The wire form of the hub's bus messages between nodes: compact, versioned JSON (orjson).

One message is one JSON object, the envelope:

    {"v": 1, "n": "<node id>", "t": "<type>", "m": {...fields...}}

`v` is the format version (a node drops versions it does not know, so a
rolling upgrade loses live messages, never crashes), `n` the publishing node
(a node skips its own: it delivered them locally already), `t` the message
type and `m` its fields. Types: `event` (`CommandEventRecord`), `status`
(`StatusChange`) and `vehicle` (`VehicleStatus`), whose `m` is the message's
own JSON form (`to_json()`, the same one the WebSocket frames embed);
`update` (`CommandUpdate`, whose `u` is an `event` or a `status` envelope
without `v`/`n`) and `session` (`SessionRevoked`). UUIDs are strings,
datetimes ISO 8601 strings, enums their values. The topic is the Redis
channel, not repeated here.

`decode` raises `CodecError` for anything it cannot read back exactly.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from hub import (
    JSON,
    BusMessage,
    CommandEventRecord,
    CommandUpdate,
    SessionRevoked,
    StatusChange,
    VehicleStatus,
)
from storage.errors import CodecError

__all__ = ["VERSION", "CodecError", "decode", "encode"]

#: The envelope version this node writes and reads (2: `m` is the message's `to_json()`).
VERSION = 2

Fields = dict[str, JSON]


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
            return "event", message.to_json()
        case StatusChange():
            return "status", message.to_json()
        case CommandUpdate():
            kind, fields = _fields(message.update)
            return "update", {"by": message.submitted_by, "u": {"t": kind, "m": fields}}
        case VehicleStatus():
            return "vehicle", message.to_json()
        case SessionRevoked():
            return "session", {"id": str(message.session_id), "at": message.at.isoformat()}


def _message(kind: str, m: Fields) -> BusMessage:
    if kind == "event":
        return CommandEventRecord.from_json(m)
    if kind == "status":
        return StatusChange.from_json(m)
    if kind == "update":
        inner = _object(m, "u")
        update = _message(_str(inner, "t"), _object(inner, "m"))
        if not isinstance(update, CommandEventRecord | StatusChange):
            raise CodecError(f"an update carries an event or a status, got {type(update).__name__}")
        return CommandUpdate(submitted_by=_optional_str(m, "by"), update=update)
    if kind == "vehicle":
        return VehicleStatus.from_json(m)
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


def _datetime(m: Fields, key: str) -> datetime:
    return datetime.fromisoformat(_str(m, key))
