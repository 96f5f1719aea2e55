"""The vehicle registry's transactions, as asyncio coroutines: registering, changing and
finding vehicles by VIN or token hash, and when their links were last up.

Each function is one whole transaction on the asyncio side of the bridge;
`storage.vehicles.VehicleStore` calls it with one crossing. `reader` is the
engine for read-only work, `writer` the same pool with the write option
(on SQLite it begins with `BEGIN IMMEDIATE`). Searches and overviews of the
fleet are in `storage.history`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import JSON, AuditNote, CommandStatus, VehicleCredentials
from storage import postgres_direct
from storage.audit_chain import append_audit_row, append_audit_rows
from storage.errors import UnknownVehicleError, VehicleExistsError
from storage.models import CommandModel, VehicleModel
from storage.records import Vehicle

__all__ = [
    "add_vehicles",
    "find_vehicle",
    "find_vehicles",
    "find_vehicles_by_token",
    "record_seen",
    "update_vehicle",
]


async def add_vehicles(
    writer: AsyncEngine, vehicles: Sequence[tuple[Vehicle, str]], actor: str
) -> None:
    """Insert vehicles (each with its token hash) and their audit events in one transaction."""
    rows = [
        {
            "vin": v.vin,
            "make": v.make,
            "model": v.model,
            "year": v.year,
            "metadata": v.metadata,
            "token_hash": token_hash,
            "enabled": v.enabled,
            "created_at": v.created_at,
        }
        for v, token_hash in vehicles
    ]
    audits: list[AuditNote] = []
    for v, _ in vehicles:
        target = f"vehicle:{v.vin}"
        details: dict[str, JSON] = {"make": v.make, "model": v.model, "year": v.year}
        audits.append(AuditNote(v.created_at, actor, "vehicle.added", target, details))
        # Its first credential: rotations are "vehicle.token_rotated".
        audits.append(AuditNote(v.created_at, actor, "vehicle.token_issued", target, {}))
    try:
        async with writer.begin() as conn:
            await conn.execute(insert(VehicleModel), rows)
            await append_audit_rows(conn, audits)
    except IntegrityError as exc:
        if len(vehicles) == 1:
            raise VehicleExistsError(f"vehicle {vehicles[0][0].vin} is already registered") from exc
        vins = ", ".join(v.vin for v, _ in vehicles[:3]) + (", ..." if len(vehicles) > 3 else "")
        raise VehicleExistsError(f"a vehicle among {vins} is already registered") from exc


async def update_vehicle(
    writer: AsyncEngine, vin: str, values: dict[str, object], action: str, actor: str
) -> None:
    """Change a vehicle's columns and audit `action` by `actor`, in one transaction."""
    now = datetime.now(UTC)
    async with writer.begin() as conn:
        result = await conn.execute(
            update(VehicleModel).where(VehicleModel.vin == vin).values(**values)
        )
        if result.rowcount != 1:
            raise UnknownVehicleError(f"vehicle {vin} is not registered")
        await append_audit_row(conn, now, actor, action, f"vehicle:{vin}", {})


async def find_vehicle(reader: AsyncEngine, vin: str) -> VehicleCredentials | None:
    query = select(VehicleModel.token_hash, VehicleModel.enabled).where(VehicleModel.vin == vin)
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else VehicleCredentials(vin, row.token_hash, row.enabled)


async def find_vehicles(
    reader: AsyncEngine, vins: Collection[str]
) -> dict[str, VehicleCredentials]:
    v = VehicleModel
    query = select(v.vin, v.token_hash, v.enabled).where(v.vin.in_(list(vins)))
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.vin: VehicleCredentials(row.vin, row.token_hash, row.enabled) for row in rows}


async def find_vehicles_by_token(
    reader: AsyncEngine, token_hashes: Collection[str]
) -> list[VehicleCredentials]:
    if reader.dialect.name == "postgresql":
        return await postgres_direct.find_vehicles_by_token(reader, token_hashes)
    v, c = VehicleModel, CommandModel
    waiting = exists().where(
        c.vin == v.vin, c.status == CommandStatus.PENDING.value, c.expires_at.is_not(None)
    )
    query = select(v.vin, v.token_hash, v.enabled, waiting.label("waiting")).where(
        v.token_hash.in_(list(token_hashes))
    )
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        VehicleCredentials(row.vin, row.token_hash, row.enabled, bool(row.waiting)) for row in rows
    ]


async def record_seen(writer: AsyncEngine, seen: Mapping[str, datetime]) -> None:
    if writer.dialect.name == "postgresql":
        return await postgres_direct.record_seen(writer, seen)
    table = cast(Table, VehicleModel.__table__)
    last_seen = table.c.last_seen_at
    statement = (
        update(table)
        .where(table.c.vin == bindparam("b_vin"))
        .where(last_seen.is_(None) | (last_seen < bindparam("b_at")))
        .values(last_seen_at=bindparam("b_at"))
    )
    async with writer.begin() as conn:
        await conn.execute(statement, [{"b_vin": vin, "b_at": at} for vin, at in seen.items()])
