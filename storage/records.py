"""What storage returns besides the hub's own types (`hub.Command`, `hub.AuditRecord`): frozen
dataclasses detached from SQLAlchemy (users, vehicles, sessions)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from hub import JSON

__all__ = [
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
