"""What storage returns: plain frozen dataclasses, detached from SQLAlchemy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from hub.model import JSON, CommandStatus, SovdRequest

__all__ = ["AuditEvent", "CommandRow", "User", "Vehicle"]


@dataclass(frozen=True, slots=True)
class User:
    """An operator account (never its password hash)."""

    id: int
    username: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle (never its token hash)."""

    vin: str
    make: str
    model: str
    year: int
    metadata: dict[str, JSON]
    enabled: bool
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class CommandRow:
    """A stored command and where it is in its lifecycle."""

    id: uuid.UUID
    vin: str
    submitted_by: str
    name: str
    params: dict[str, JSON]
    sovd: SovdRequest
    status: CommandStatus
    error: str | None
    timeout_s: float
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit trail: `actor` did `action` to `target` at `at`."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, JSON]


@dataclass(frozen=True, slots=True)
class NewVehicle:
    """A vehicle to register (`Database.add_vehicles`)."""

    vin: str
    make: str
    model: str
    year: int
    metadata: dict[str, JSON] = field(default_factory=dict)
