"""The fleet registry and the command history: listing, searching, and editing a vehicle.

Like `storage.command_queries`, each function here is one whole transaction on the
asyncio side of the bridge, called by `storage.commands.CommandStore` and
`storage.vehicles.VehicleStore` with a
single crossing. Listings are pages of a stable order with the size of the
whole filtered set (`Page.total`), counted in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    all_,
    any_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON, Command, CommandStatus
from storage.audit_chain import append_audit_row
from storage.command_queries import COMMAND_COLUMNS, stored_command
from storage.errors import UnknownVehicleError
from storage.models import CommandModel, VehicleModel
from storage.records import Vehicle

__all__ = [
    "CommandFilter",
    "Page",
    "VehicleChanges",
    "VehicleFilter",
    "VehicleOverview",
]

T = TypeVar("T")

_ACTIVE = [s.value for s in CommandStatus if not s.is_final]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing and how many items the whole filtered listing holds."""

    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class VehicleFilter:
    """Which vehicles to list (every condition given must hold).

    `vins` / `not_vins` carry the live status, which only the hub knows: the
    VINs connected now, as one bound array (Postgres) or JSON text (SQLite),
    so a fleet of any size is one parameter, not one per VIN.
    """

    #: Case-insensitive substring of the VIN, make or model.
    search: str | None = None
    #: Only these VINs (None: no such condition).
    vins: frozenset[str] | None = None
    #: None of these VINs (None: no such condition).
    not_vins: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class CommandFilter:
    """Which commands to list (every condition given must hold)."""

    vin: str | None = None
    #: Any of these statuses (empty: any status).
    statuses: frozenset[CommandStatus] = frozenset()
    submitted_by: str | None = None
    #: The catalog command's name, e.g. "ReadDTC".
    name: str | None = None
    #: Submitted at or after this instant.
    since: datetime | None = None
    #: Submitted strictly before this instant.
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class VehicleChanges:
    """New values for a vehicle's registry fields; None leaves a field as it is.

    `metadata` replaces the whole object (it is not merged).
    """

    make: str | None = None
    model: str | None = None
    year: int | None = None
    metadata: dict[str, JSON] | None = None


@dataclass(frozen=True, slots=True)
class VehicleOverview:
    """A vehicle, how many of its commands are active by status, and its latest commands."""

    vehicle: Vehicle
    #: "pending", "dispatched", "running" -> how many of its commands are in that state.
    active_commands: dict[str, int]
    #: Newest first.
    recent_commands: list[Command]


_VEHICLE_COLUMNS = (
    VehicleModel.vin,
    VehicleModel.make,
    VehicleModel.model,
    VehicleModel.year,
    VehicleModel.metadata_,
    VehicleModel.enabled,
    VehicleModel.created_at,
    VehicleModel.last_seen_at,
)

# Newest first; the id breaks ties so that pages never overlap or skip.
_NEWEST_FIRST = (CommandModel.submitted_at.desc(), CommandModel.id.desc())


# -- vehicles ----------------------------------------------------------------


async def list_vehicles(reader: AsyncEngine, vin: str | None) -> list[Vehicle]:
    """Every vehicle ordered by VIN, or only the one with `vin`."""
    query = select(*_VEHICLE_COLUMNS).order_by(VehicleModel.vin)
    if vin is not None:
        query = query.where(VehicleModel.vin == vin)
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [Vehicle(*row) for row in rows]


async def search_vehicles(
    reader: AsyncEngine, wanted: VehicleFilter, limit: int, offset: int
) -> Page[Vehicle]:
    """A page of the vehicles `wanted` selects, ordered by VIN, and how many it selects."""
    async with reader.connect() as conn:
        conditions = _vehicle_conditions(conn, wanted)
        count = select(func.count()).select_from(VehicleModel).where(*conditions)
        total = (await conn.execute(count)).scalar_one()
        page = (
            select(*_VEHICLE_COLUMNS)
            .where(*conditions)
            .order_by(VehicleModel.vin)
            .limit(limit)
            .offset(offset)
        )
        rows = (await conn.execute(page)).all() if offset < total else []
    return Page([Vehicle(*row) for row in rows], total)


def _vehicle_conditions(conn: AsyncConnection, wanted: VehicleFilter) -> list[ColumnElement[bool]]:
    vin = VehicleModel.vin
    conditions: list[ColumnElement[bool]] = []
    if wanted.search:
        term = wanted.search
        conditions.append(
            or_(
                vin.icontains(term, autoescape=True),
                VehicleModel.make.icontains(term, autoescape=True),
                VehicleModel.model.icontains(term, autoescape=True),
            )
        )
    postgres = conn.dialect.name == "postgresql"
    if wanted.vins is not None:
        values = sorted(wanted.vins)
        if postgres:
            conditions.append(vin == any_(_vin_array("only_vins", values)))
        else:
            conditions.append(vin.in_(_json_values("only_vins", values)))
    if wanted.not_vins is not None:
        values = sorted(wanted.not_vins)
        if postgres:
            conditions.append(vin != all_(_vin_array("not_vins", values)))
        else:
            conditions.append(vin.not_in(_json_values("not_vins", values)))
    return conditions


def _vin_array(name: str, values: list[str]) -> ColumnElement[Sequence[str]]:
    """Postgres: the VINs bound as one text[] parameter."""
    return type_coerce(bindparam(name, value=values), ARRAY(String(17)))


def _json_values(name: str, values: list[str]) -> Select[tuple[str]]:
    """SQLite: the elements of a JSON array bound as one text parameter."""
    elements = func.json_each(bindparam(name, value=orjson.dumps(values).decode())).table_valued(
        "value"
    )
    return select(elements.c.value)


async def vehicle_overview(
    reader: AsyncEngine, vin: str, commands_of: str | None, recent: int
) -> VehicleOverview | None:
    """The vehicle, its active command counts and its `recent` newest commands.

    `commands_of` limits the recent commands to one submitter's (None: anyone's).
    """
    c = CommandModel
    async with reader.connect() as conn:
        query = select(*_VEHICLE_COLUMNS).where(VehicleModel.vin == vin)
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        counts = (
            await conn.execute(
                select(c.status, func.count())
                .where(c.vin == vin, c.status.in_(_ACTIVE))
                .group_by(c.status)
            )
        ).all()
        latest = select(*COMMAND_COLUMNS).where(c.vin == vin)
        if commands_of is not None:
            latest = latest.where(c.submitted_by == commands_of)
        rows = (await conn.execute(latest.order_by(*_NEWEST_FIRST).limit(recent))).all()
    active = dict.fromkeys(_ACTIVE, 0) | {status: n for status, n in counts}
    return VehicleOverview(Vehicle(*row), active, [stored_command(r) for r in rows])


async def update_vehicle(
    writer: AsyncEngine, vin: str, changes: VehicleChanges, actor: str
) -> Vehicle:
    """Apply `changes` and audit "vehicle.updated" with each changed field's old and new value.

    Fields whose new value equals the stored one are left out; when none
    changes, nothing is written. Raises `UnknownVehicleError`.
    """
    wanted: dict[str, JSON] = {
        name: value
        for name, value in (
            ("make", changes.make),
            ("model", changes.model),
            ("year", changes.year),
            ("metadata", changes.metadata),
        )
        if value is not None
    }
    async with writer.begin() as conn:
        query = select(*_VEHICLE_COLUMNS).where(VehicleModel.vin == vin).with_for_update()
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise UnknownVehicleError(f"vehicle {vin} is not registered")
        current = Vehicle(*row)
        stored: dict[str, JSON] = {
            "make": current.make,
            "model": current.model,
            "year": current.year,
            "metadata": current.metadata,
        }
        changed = {k: v for k, v in wanted.items() if stored[k] != v}
        if not changed:
            return current
        columns = {("metadata_" if k == "metadata" else k): v for k, v in changed.items()}
        await conn.execute(update(VehicleModel).where(VehicleModel.vin == vin).values(**columns))
        details: dict[str, JSON] = {
            "changed": {k: {"from": stored[k], "to": v} for k, v in changed.items()}
        }
        await append_audit_row(
            conn, datetime.now(UTC), actor, "vehicle.updated", f"vehicle:{vin}", details
        )
        after = (await conn.execute(select(*_VEHICLE_COLUMNS).where(VehicleModel.vin == vin))).one()
    return Vehicle(*after)


# -- commands ----------------------------------------------------------------


async def list_commands(
    reader: AsyncEngine, wanted: CommandFilter, limit: int, offset: int
) -> Page[Command]:
    """A page of the commands `wanted` selects, newest first, and how many it selects."""
    c = CommandModel
    conditions: list[ColumnElement[bool]] = []
    if wanted.vin is not None:
        conditions.append(c.vin == wanted.vin)
    if wanted.statuses:
        conditions.append(c.status.in_(sorted(s.value for s in wanted.statuses)))
    if wanted.submitted_by is not None:
        conditions.append(c.submitted_by == wanted.submitted_by)
    if wanted.name is not None:
        conditions.append(c.name == wanted.name)
    if wanted.since is not None:
        conditions.append(c.submitted_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(c.submitted_at < wanted.until)
    count = select(func.count()).select_from(c).where(*conditions)
    page = (
        select(*COMMAND_COLUMNS)
        .where(*conditions)
        .order_by(*_NEWEST_FIRST)
        .limit(limit)
        .offset(offset)
    )
    async with reader.connect() as conn:
        total = (await conn.execute(count)).scalar_one()
        rows = (await conn.execute(page)).all() if offset < total else []
    return Page([stored_command(row) for row in rows], total)


async def find_idempotent(reader: AsyncEngine, submitted_by: str, key: str) -> Command | None:
    """The command `submitted_by` sent with idempotency key `key`, with its request hash."""
    c = CommandModel
    query = select(*COMMAND_COLUMNS, c.request_hash).where(
        c.submitted_by == submitted_by, c.idempotency_key == key
    )
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    return replace(stored_command(row), idempotency_key=key, request_hash=row.request_hash)
