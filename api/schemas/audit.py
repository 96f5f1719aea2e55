"""REST bodies of the audit trail: its filters, pages and export (`api.audit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from api.schemas.common import NO_CONTROL_CHARACTERS

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
