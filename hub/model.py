"""Domain types shared by every layer: commands, their events and status changes.

They are frozen, slotted dataclasses so they can cross task and process
boundaries (mailboxes, the event bus, storage) without anyone mutating them.

A command (`Command`, as submitted), an event (`CommandEventRecord`), a
status change (`StatusChange`) and a vehicle's status (`VehicleStatus`) each
have one JSON form, defined by their `to_json()` and read back exactly by
`from_json()`: the WebSocket frames embed the last three, the REST schemas
match them, the bus between nodes carries them, and a scale-out stream entry
carries the command. UUIDs are strings, datetimes ISO 8601, enums their values.
`from_json` raises `ValueError` naming the field it could not read.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias, TypeVar

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
#: A JSON object, as `to_json()` gives and `from_json()` takes.
JSONObject: TypeAlias = dict[str, JSON]


class CommandStatus(enum.StrEnum):
    """Where a command is in its lifecycle (DESIGN.md, "Command lifecycle")."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        """True once the command can change no more."""
        return self not in _ACTIVE


_ACTIVE = frozenset({CommandStatus.PENDING, CommandStatus.DISPATCHED, CommandStatus.RUNNING})


class EventKind(enum.StrEnum):
    """What a vehicle's `CommandEvent` reports."""

    ACCEPTED = "accepted"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SovdRequest:
    """A SOVD request addressed to one vehicle, e.g. `GET /components/engine/faults`."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: JSON = None


@dataclass(frozen=True, slots=True)
class Command:
    """An operator's command: as accepted by the API, and as stored, with its lifecycle.

    The one type of a command in every layer: the API builds it (status
    `pending`), the hub runs it, storage returns it with the status fields
    as they are stored. The hub's in-flight copies keep the status they were
    submitted with; the journal is where the status moves.
    """

    id: uuid.UUID
    vin: str
    name: str
    params: dict[str, JSON]
    sovd: SovdRequest
    timeout_s: float
    submitted_by: str
    submitted_at: datetime
    #: Set when the command may wait for its vehicle to come online until then.
    expires_at: datetime | None = None
    #: The operator's `Idempotency-Key`: unique per submitter, a retry returns this command.
    idempotency_key: str | None = None
    #: SHA-256 (hex) of the canonical request body the key came with.
    request_hash: str | None = None
    #: Where the command is in its lifecycle, as last stored.
    status: CommandStatus = CommandStatus.PENDING
    #: Why it failed (or was cancelled, expired, interrupted), once final.
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_json(self) -> JSONObject:
        """The command as submitted (no status fields), e.g. in a scale-out stream entry."""
        return {
            "id": str(self.id),
            "vin": self.vin,
            "name": self.name,
            "params": dict(self.params),
            "sovd": {
                "method": self.sovd.method,
                "path": self.sovd.path,
                "query": dict(self.sovd.query),
                "body": self.sovd.body,
            },
            "timeout_s": self.timeout_s,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }

    @classmethod
    def from_json(cls, m: JSONObject) -> Command:
        """The pending command `to_json()` gave `m`; `ValueError` naming the field if not one."""
        command_id = _uuid(m, "id")
        sovd = _object(m, "sovd")
        query = _object(sovd, "query")
        return cls(
            id=command_id,
            vin=_str(m, "vin"),
            name=_str(m, "name"),
            params=_object(m, "params"),
            sovd=SovdRequest(
                method=_str(sovd, "method"),
                path=_str(sovd, "path"),
                query={key: _str(query, key) for key in query},
                body=sovd.get("body"),
            ),
            timeout_s=_float(m, "timeout_s"),
            submitted_by=_str(m, "submitted_by"),
            submitted_at=_datetime(m, "submitted_at"),
            expires_at=None if m.get("expires_at") is None else _datetime(m, "expires_at"),
        )


@dataclass(frozen=True, slots=True)
class CommandEventRecord:
    """One event of a command as received from the vehicle, numbered by `seq`."""

    command_id: uuid.UUID
    seq: int
    kind: EventKind
    status: int
    body: JSON
    final: bool
    received_at: datetime

    def to_json(self) -> JSONObject:
        """The event's JSON form (the REST `EventOut`, the WebSocket `event` frame's fields)."""
        return {
            "command_id": str(self.command_id),
            "seq": self.seq,
            "kind": self.kind.value,
            "status": self.status,
            "body": self.body,
            "final": self.final,
            "received_at": self.received_at.isoformat(),
        }

    @classmethod
    def from_json(cls, m: JSONObject) -> CommandEventRecord:
        """The event `to_json()` gave `m`; `ValueError` naming the field if it is not one."""
        return cls(
            command_id=_uuid(m, "command_id"),
            seq=_int(m, "seq"),
            kind=_enum(EventKind, m, "kind"),
            status=_int(m, "status"),
            body=_field(m, "body"),
            final=_bool(m, "final"),
            received_at=_datetime(m, "received_at"),
        )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A command moved to `status` at `at`; `error` says why when it failed."""

    command_id: uuid.UUID
    status: CommandStatus
    at: datetime
    error: str | None = None

    def to_json(self) -> JSONObject:
        """The change's JSON form (the WebSocket `status` frame's fields)."""
        return {
            "command_id": str(self.command_id),
            "status": self.status.value,
            "error": self.error,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, m: JSONObject) -> StatusChange:
        """The change `to_json()` gave `m`; `ValueError` naming the field if it is not one."""
        return cls(
            command_id=_uuid(m, "command_id"),
            status=_enum(CommandStatus, m, "status"),
            at=_datetime(m, "at"),
            error=_optional_str(m, "error"),
        )


@dataclass(frozen=True, slots=True)
class CommandUpdate:
    """An event or final status of one of a vehicle's commands, as its vehicle topic carries it.

    `submitted_by` (None: not known) lets a subscriber filter by ownership
    without reading the command.
    """

    submitted_by: str | None
    update: CommandEventRecord | StatusChange


@dataclass(frozen=True, slots=True)
class VehicleCredentials:
    """To admit a vehicle: its token's hash, if it is enabled, if commands wait for it."""

    vin: str
    token_hash: str
    enabled: bool
    waiting: bool = True


class DisconnectReason(enum.StrEnum):
    """Why a vehicle's link ended (or why its last attempt was refused)."""

    CLOSED_BY_VEHICLE = "closed_by_vehicle"
    CONNECTION_LOST = "connection_lost"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    REPLACED = "replaced"
    HUB_SHUTDOWN = "hub_shutdown"
    REFUSED = "refused"
    REVOKED = "revoked"
    PROTOCOL_ERROR = "protocol_error"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Disconnect:
    """How and when a vehicle's link last ended; `detail` is for people."""

    reason: DisconnectReason
    detail: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SessionRevoked:
    """An operator's login session was revoked (logout, password or role change) at `at`:
    every node refuses its access tokens from now on (bus topic `sessions`)."""

    session_id: uuid.UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """A vehicle's link came up (`connected`) or ended (with `reason` and `detail`)."""

    vin: str
    connected: bool
    at: datetime
    reason: DisconnectReason | None = None
    detail: str | None = None

    def to_json(self) -> JSONObject:
        """The status's JSON form (the WebSocket `vehicle` frame's fields)."""
        return {
            "vin": self.vin,
            "status": "connected" if self.connected else "disconnected",
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, m: JSONObject) -> VehicleStatus:
        """The status `to_json()` gave `m`; `ValueError` naming the field if it is not one."""
        status = _str(m, "status")
        if status not in _LINK_STATES:
            raise ValueError(f"'status': expected 'connected' or 'disconnected', got {status!r}")
        reason = _optional_str(m, "reason")
        return cls(
            vin=_str(m, "vin"),
            connected=status == "connected",
            at=_datetime(m, "at"),
            reason=None if reason is None else _enum(DisconnectReason, m, "reason"),
            detail=_optional_str(m, "detail"),
        )


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """Scale-out: one piece of work for a node, read from its command stream.

    `dispatch` / `cancel` a command (`by`: the node that sent a dispatch, or
    the operator asking to cancel), or `taken` (a vehicle linked here was
    taken over by node `by`). A `dispatch` carries its `command` (as
    submitted), so the receiver need not read it back.
    """

    entry_id: str
    kind: str
    vin: str
    command_id: uuid.UUID | None = None
    by: str = ""
    command: Command | None = None


_LINK_STATES = frozenset({"connected", "disconnected"})


# -- strict readers of JSON fields: each names the field it could not read --


def _field(m: JSONObject, key: str) -> JSON:
    try:
        return m[key]
    except KeyError:
        raise ValueError(f"{key!r}: missing") from None


def _str(m: JSONObject, key: str) -> str:
    value = _field(m, key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r}: expected a string, got {type(value).__name__}")
    return value


def _optional_str(m: JSONObject, key: str) -> str | None:
    return None if m.get(key) is None else _str(m, key)


def _int(m: JSONObject, key: str) -> int:
    value = _field(m, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r}: expected an integer, got {type(value).__name__}")
    return value


def _float(m: JSONObject, key: str) -> float:
    value = _field(m, key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key!r}: expected a number, got {type(value).__name__}")
    return float(value)


def _object(m: JSONObject, key: str) -> JSONObject:
    value = _field(m, key)
    if not isinstance(value, dict):
        raise ValueError(f"{key!r}: expected an object, got {type(value).__name__}")
    return value


def _bool(m: JSONObject, key: str) -> bool:
    value = _field(m, key)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r}: expected true or false, got {type(value).__name__}")
    return value


def _uuid(m: JSONObject, key: str) -> uuid.UUID:
    value = _str(m, key)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"{key!r}: expected a UUID, got {value!r}") from None


def _datetime(m: JSONObject, key: str) -> datetime:
    value = _str(m, key)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{key!r}: expected an ISO 8601 time, got {value!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"{key!r}: expected a time with a zone, got {value!r}")
    return at


_Enum = TypeVar("_Enum", bound=enum.StrEnum)


def _enum(kind: type[_Enum], m: JSONObject, key: str) -> _Enum:
    value = _str(m, key)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in kind)
        raise ValueError(f"{key!r}: expected one of {allowed}, got {value!r}") from None
