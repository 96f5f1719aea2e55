"""REST bodies of commands and their events: submit, read, list, idempotency (`api.routes`)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from api.schemas.common import NO_CONTROL_CHARACTERS, VIN_PATTERN, PageQuery, Strict
from hub import Command, CommandStatus


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
