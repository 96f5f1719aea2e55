"""What storage returns: plain frozen dataclasses, detached from SQLAlchemy."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from hub import JSON, Command, CommandStatus, SovdRequest, StoredCommand

__all__ = [
    "AuditEvent",
    "CommandRow",
    "LoginSession",
    "RefreshOutcome",
    "RefreshResult",
    "User",
    "UserUpdate",
    "Vehicle",
]


@dataclass(frozen=True, slots=True)
class User:
    """An operator account (never its password hash)."""

    id: int
    username: str
    role: str
    created_at: datetime
    #: A disabled user cannot log in, and their sessions were revoked when disabled.
    enabled: bool = True


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

    def command(self) -> Command:
        """The hub's `Command` of this row (what it was submitted as)."""
        return Command(
            id=self.id,
            vin=self.vin,
            name=self.name,
            params=self.params,
            sovd=self.sovd,
            timeout_s=self.timeout_s,
            submitted_by=self.submitted_by,
            submitted_at=self.submitted_at,
            expires_at=self.expires_at,
        )

    def stored(self) -> StoredCommand:
        """The hub's `StoredCommand` of this row."""
        return StoredCommand(self.id, self.vin, self.submitted_by)


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
    """A vehicle to register (`VehicleStore.add_vehicles`)."""

    vin: str
    make: str
    model: str
    year: int
    metadata: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoginSession:
    """One login: a family of rotating refresh tokens (never their hashes).

    `generation` counts the refreshes; `expires_at` moves forward with each.
    """

    id: uuid.UUID
    user_id: int
    generation: int
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    address: str | None
    user_agent: str | None


class RefreshOutcome(enum.StrEnum):
    """What presenting a refresh token did (`AccountStore.rotate_session`)."""

    ROTATED = "rotated"  # the session moved to the next generation
    UNKNOWN = "unknown"  # no such session, or not a token of it
    EXPIRED = "expired"  # the session was idle past its expiry
    REVOKED = "revoked"  # the session had ended (logout, reuse, disabled user...)
    REUSED = "reused"  # an older generation: the session is revoked now


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The outcome of a refresh, with the user and session when they were found."""

    outcome: RefreshOutcome
    user: User | None = None
    session: LoginSession | None = None


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """An account before and after an admin's change, and the sessions it revoked."""

    before: User
    after: User
    revoked_sessions: list[uuid.UUID]
