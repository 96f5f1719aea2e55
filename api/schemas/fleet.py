"""REST bodies of the vehicle registry and the fleet view (`api.vehicles`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from api.schemas.commands import CommandOut
from api.schemas.common import NO_CONTROL_CHARACTERS, VIN_PATTERN, PageQuery, Strict


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
