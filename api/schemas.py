"""Request and response bodies of the REST API (pydantic; they also make the OpenAPI spec)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.auth import MIN_PASSWORD_LENGTH
from hub import Command, CommandStatus

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"


class Strict(BaseModel):
    """Bodies we accept: unknown properties are an error, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LoginRequest(Strict):
    # No control characters: Postgres refuses NUL in text, and they are nobody's name.
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str = Field(description="send as 'Authorization: Bearer <access_token>'")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(
        description="POST it to /api/v1/auth/refresh for new tokens; each works once"
    )
    refresh_expires_in: int = Field(description="seconds the refresh token is valid if unused")
    session_id: uuid.UUID


class ConnectionOut(BaseModel):
    status: Literal["connected", "disconnected"]
    since: datetime | None
    last_seen_at: datetime | None
    reason: str | None = Field(
        default=None,
        description="why the last link ended: closed_by_vehicle, connection_lost, "
        "heartbeat_timeout, hub_shutdown or refused (null while connected or never seen)",
    )
    detail: str | None = None
    node_id: str | None = Field(
        default=None, description="the hub node holding the live link (null when disconnected)"
    )
    source: Literal["cluster", "local"] = Field(
        default="local",
        description="cluster: every node's links (Redis leases); local: this node's only "
        "(no Redis, or Redis does not answer)",
    )


class VehicleOut(BaseModel):
    vin: str
    make: str
    model: str
    year: int
    metadata: dict[str, JsonValue]
    enabled: bool = Field(description="false: the hub refuses the vehicle's link")
    created_at: datetime
    connection: ConnectionOut


class VehicleList(BaseModel):
    items: list[VehicleOut]
    total: int = Field(description="how many vehicles match the filters (not just this page)")
    limit: int
    offset: int


class ConnectionDetail(ConnectionOut):
    session_id: str | None = Field(
        default=None, description="the live link's session (from Welcome); null when disconnected"
    )


class VehicleDetail(VehicleOut):
    connection: ConnectionDetail
    active_commands: dict[str, int] = Field(
        description="how many of the vehicle's commands are pending, dispatched and running"
    )
    recent_commands: list[CommandOut] = Field(
        description="its 10 newest commands, newest first: every submitter's for admins, "
        "only your own otherwise"
    )


#: Text a query may carry: no control characters (Postgres refuses NUL in text).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class PageQuery(BaseModel):
    """Query strings: unknown parameters are an error; values are converted from text."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500, description="page size (1-500)")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="items to skip")


class VehicleQuery(PageQuery):
    status: Literal["connected", "disconnected"] | None = Field(
        default=None, description="only vehicles with (or without) a live link to this node"
    )
    search: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NO_CONTROL_CHARACTERS,
        description="case-insensitive substring of the VIN, make or model",
    )


def _without_nul(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    if _has_nul(value):
        raise ValueError("must not contain NUL characters (\\u0000): they cannot be stored")
    return value


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


VehicleName = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
VehicleMetadata = Annotated[dict[str, JsonValue], AfterValidator(_without_nul)]


class VehiclePatch(Strict):
    """New values for some of a vehicle's fields; `metadata` replaces the whole object."""

    make: VehicleName | None = None
    model: VehicleName | None = None
    year: int | None = Field(default=None, ge=1980, le=2100)
    metadata: VehicleMetadata | None = None

    @field_validator("make", "model", "year", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null; leave the field out to keep its value")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> VehiclePatch:
        if not self.model_fields_set:
            raise ValueError("the body must set at least one of make, model, year, metadata")
        return self


class NewVehicleIn(Strict):
    vin: str = Field(pattern=VIN_PATTERN, description="17-character VIN (no I, O or Q)")
    make: VehicleName
    model: VehicleName
    year: int = Field(ge=1980, le=2100)
    metadata: VehicleMetadata = Field(default_factory=dict)


class VehicleCreated(VehicleOut):
    token: str = Field(description="the vehicle's secret token: shown once, only its hash is kept")


class VehicleToken(BaseModel):
    vin: str
    token: str = Field(description="the new token: shown once; the old one no longer works")


class SubmitCommand(Strict):
    vin: str = Field(pattern=VIN_PATTERN, description="17-character VIN (no I, O or Q)")
    command: str = Field(
        description="a catalog command, e.g. ReadDTC or StartOperation; GET /api/v1/catalog "
        "lists them all with the JSON Schema of their params"
    )
    params: dict[str, JsonValue] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, description="deadline for the vehicle")
    ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="how long the command may wait for an offline vehicle (else offline is 409)",
    )


class CommandOut(BaseModel):
    """A command as the API answers it: the stored `hub.Command`, with its links."""

    id: uuid.UUID
    vin: str
    command: str
    params: dict[str, JsonValue]
    status: str
    error: str | None = None
    submitted_by: str
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    timeout_s: float
    links: dict[str, str]

    @classmethod
    def of(cls, command: Command) -> CommandOut:
        """The response body of `command` (as stored; a new one is `pending`)."""
        base = f"/api/v1/commands/{command.id}"
        return cls(
            id=command.id,
            vin=command.vin,
            command=command.name,
            params=command.params,
            status=command.status.value,
            error=command.error,
            submitted_by=command.submitted_by,
            submitted_at=command.submitted_at,
            started_at=command.started_at,
            finished_at=command.finished_at,
            expires_at=command.expires_at,
            timeout_s=command.timeout_s,
            links={"self": base, "events": f"{base}/events", "stream": "/api/v1/ws"},
        )


class EventOut(BaseModel):
    """One event of a command: `CommandEventRecord.to_json()`, field for field."""

    command_id: uuid.UUID
    seq: int
    kind: str
    status: int
    body: JsonValue
    final: bool
    received_at: datetime


class EventList(BaseModel):
    items: list[EventOut]
    total: int


# -- accounts --

#: Usernames given over the API: letters, digits and . _ @ -, starting with a letter or digit.
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
RoleName = Literal["viewer", "engineer", "admin"]


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=256,
        description=f"at least {MIN_PASSWORD_LENGTH} characters, at most 72 bytes of UTF-8",
    )


class PasswordChanged(BaseModel):
    sessions_revoked: int = Field(description="your other sessions, now logged out")


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime = Field(description="when the refresh token expires if unused")
    address: str | None
    user_agent: str | None


class UserOut(BaseModel):
    id: int
    username: str
    role: RoleName
    enabled: bool
    created_at: datetime


class MeOut(UserOut):
    session: SessionOut


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserPage(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class NewUserIn(Strict):
    username: str = Field(
        pattern=USERNAME_PATTERN,
        description="1-64 letters, digits and . _ @ -, starting with a letter or digit",
    )
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=256,
        description=f"at least {MIN_PASSWORD_LENGTH} characters, at most 72 bytes of UTF-8",
    )
    role: RoleName


class UserPatch(Strict):
    role: RoleName | None = None
    enabled: bool | None = Field(
        default=None, description="false logs the user out everywhere and refuses their logins"
    )


class CommandList(BaseModel):
    items: list[CommandOut] = Field(description="newest first")
    total: int = Field(description="how many commands match the filters (not just this page)")
    limit: int
    offset: int


_STATUSES = ", ".join(s.value for s in CommandStatus)


class CommandQuery(PageQuery):
    vin: str | None = Field(default=None, pattern=VIN_PATTERN)
    status: str | None = Field(
        default=None,
        description=f"one status or a comma-separated list of them: {_STATUSES}",
    )
    submitted_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=150,
        pattern=NO_CONTROL_CHARACTERS,
        description="a username; only admins may name someone other than themselves",
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NO_CONTROL_CHARACTERS,
        description="the command's name, e.g. ReadDTC",
    )
    since: AwareDatetime | None = Field(
        default=None,
        description="submitted at or after this instant (ISO 8601 with a time zone, e.g. "
        "2025-06-01T12:00:00Z; encode '+' as %2B)",
    )
    until: AwareDatetime | None = Field(
        default=None, description="submitted before this instant (ISO 8601 with a time zone)"
    )

    @field_validator("status")
    @classmethod
    def _known_statuses(cls, value: str | None) -> str | None:
        if value is not None:
            known = {s.value for s in CommandStatus}
            for name in value.split(","):
                if name.strip() not in known:
                    raise ValueError(
                        f"unknown status {name.strip()!r}; expected some of {_STATUSES}"
                    )
        return value

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if until is not None and isinstance(since, datetime) and since >= until:
            raise ValueError(
                f"until ({until.isoformat()}) must be after since ({since.isoformat()})"
            )
        return until

    def statuses(self) -> frozenset[CommandStatus]:
        """The statuses asked for (empty: any)."""
        if self.status is None:
            return frozenset()
        return frozenset(CommandStatus(name.strip()) for name in self.status.split(","))


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="a retry with the same key and body returns the first command (200) "
        "instead of submitting again; the same key with another body is a 409",
    )

    @field_validator("idempotency_key")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not _PRINTABLE_KEY.fullmatch(value):
            raise ValueError(
                "Idempotency-Key must be 1-200 printable ASCII characters (no control "
                "characters, not blank); use e.g. a UUID"
            )
        return value


_PRINTABLE_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


# -- audit trail --

#: An action (`auth.login`) or every action under a prefix (`auth.*`).
AUDIT_ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$"


def _utc_instant(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


class AuditFilters(BaseModel):
    """Which audit events (every filter given must hold)."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(
        default=None,
        description="at or after this instant (ISO 8601 with a time zone, e.g. "
        "2025-06-01T12:00:00Z; encode '+' as %2B)",
    )
    until: AwareDatetime | None = Field(
        default=None, description="before this instant (ISO 8601 with a time zone)"
    )
    actor: str | None = Field(
        default=None,
        min_length=1,
        max_length=150,
        pattern=NO_CONTROL_CHARACTERS,
        description="who did it: a username, `hub`, or `vehicle:<VIN>`",
    )
    vin: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]{17}$",
        description="events about this vehicle: its registry, credentials and links, "
        "and every event of its commands",
    )
    action: str | None = Field(
        default=None,
        max_length=100,
        pattern=AUDIT_ACTION_PATTERN,
        description="one action (e.g. auth.login_failed) or all under a prefix (auth.*)",
    )

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return _utc_instant(value)

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if until is not None and isinstance(since, datetime) and since >= until:
            raise ValueError(
                f"until ({until.isoformat()}) must be after since ({since.isoformat()})"
            )
        return until


#: Largest row id (64-bit).
MAX_AUDIT_ID = 2**63 - 1


class AuditQuery(AuditFilters):
    after_id: int | None = Field(
        default=None,
        ge=0,
        le=MAX_AUDIT_ID,
        description="keyset position: events after this id in the order asked (the `next` "
        "link sets it)",
    )
    limit: int = Field(default=100, ge=1, le=1000, description="page size (1-1000)")
    order: Literal["asc", "desc"] = Field(
        default="asc", description="asc: oldest first (the chain's order); desc: newest first"
    )


class AuditExportQuery(AuditFilters):
    format: Literal["ndjson", "csv"] = Field(
        default="ndjson", description="ndjson: one JSON object a line; csv: RFC 4180 with a header"
    )
    after_id: int | None = Field(
        default=None,
        ge=0,
        le=MAX_AUDIT_ID,
        description="only events with a higher id (resume an export that broke off)",
    )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str = Field(
        description="what it was done to: user:<name>, vehicle:<VIN>, command:<id>, audit"
    )
    vin: str | None = Field(description="the vehicle the event concerns, if any")
    details: dict[str, JsonValue]
    chain: str = Field(description="the hash chain the event is in (one per node)")
    seq: int = Field(description="its place in that chain: 1, 2, 3...")
    prev_hash: str = Field(description="hash of the chain's previous event (64 zeros: first)")
    hash: str = Field(description="sha256 of prev_hash and the event's canonical text")


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    limit: int
    next: str | None = Field(
        description="the next page (same filters, after_id set); null when this page is the "
        "last one now (with order=asc, poll it again later with after_id for newer events)"
    )
