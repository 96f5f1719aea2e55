"""Request and response bodies of the REST API (pydantic; they also make the OpenAPI spec)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"


class Strict(BaseModel):
    """Bodies we accept: unknown properties are an error, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


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


class VehicleOut(BaseModel):
    vin: str
    make: str
    model: str
    year: int
    connection: ConnectionOut


class VehicleList(BaseModel):
    items: list[VehicleOut]
    total: int


class NewVehicleIn(Strict):
    vin: str = Field(pattern=VIN_PATTERN, description="17-character VIN (no I, O or Q)")
    make: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    year: int = Field(ge=1980, le=2100)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class VehicleCreated(VehicleOut):
    token: str = Field(description="the vehicle's secret token: shown once, only its hash is kept")


class VehicleToken(BaseModel):
    vin: str
    token: str = Field(description="the new token: shown once; the old one no longer works")


class SubmitCommand(Strict):
    vin: str = Field(pattern=VIN_PATTERN, description="17-character VIN (no I, O or Q)")
    command: str = Field(description="a catalog command: ReadDTC, ClearDTC, ReadDataByID")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, description="deadline for the vehicle")
    ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="how long the command may wait for an offline vehicle (else offline is 409)",
    )


class CommandOut(BaseModel):
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


class EventOut(BaseModel):
    seq: int
    kind: str
    status: int
    body: JsonValue
    final: bool
    received_at: datetime


class EventList(BaseModel):
    items: list[EventOut]
    total: int
