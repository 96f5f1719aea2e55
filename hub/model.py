"""Domain types shared by every layer: commands, their events and status changes.

They are frozen, slotted dataclasses so they can cross task and process
boundaries (mailboxes, the event bus, storage) without anyone mutating them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None


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
    """An operator's command as accepted by the API (validated, not yet run)."""

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


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A command moved to `status` at `at`; `error` says why when it failed."""

    command_id: uuid.UUID
    status: CommandStatus
    at: datetime
    error: str | None = None


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
    """What the gateway needs to admit a vehicle: its token's hash and whether it is enabled."""

    vin: str
    token_hash: str
    enabled: bool


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


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """What the hub needs to know of a stored command to end or cancel it."""

    id: uuid.UUID
    vin: str
    submitted_by: str


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """Scale-out: one piece of work for a node, read from its command stream.

    `dispatch` / `cancel` a command (`by`: the node that sent a dispatch, or
    the operator asking to cancel), or `taken` (a vehicle linked here was
    taken over by node `by`).
    """

    entry_id: str
    kind: str
    vin: str
    command_id: uuid.UUID | None = None
    by: str = ""
