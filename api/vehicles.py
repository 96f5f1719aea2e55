"""Fleet routes: the vehicle registry, connection status, and vehicle credentials (admin)."""

from __future__ import annotations

from grpclib.const import Status
from quart import Blueprint
from quart_schema import validate_request, validate_response

from api.access import current_principal, requires
from api.auth import Role
from api.errors import ApiError
from api.schemas import (
    ConnectionOut,
    NewVehicleIn,
    VehicleCreated,
    VehicleList,
    VehicleOut,
    VehicleToken,
)
from api.state import state
from storage import NewVehicle, UnknownVehicleError, Vehicle, VehicleExistsError

vehicles = Blueprint("vehicles", __name__, url_prefix="/api/v1/vehicles")


@vehicles.get("")
@requires(Role.VIEWER)
@validate_response(VehicleList)
async def list_vehicles() -> VehicleList:
    """Every registered vehicle with its live connection status on this node."""
    fleet = await state().db.list_vehicles()
    return VehicleList(items=[_vehicle_out(v) for v in fleet], total=len(fleet))


@vehicles.post("")
@requires(Role.ADMIN)
@validate_request(NewVehicleIn)
@validate_response(VehicleCreated, 201)
async def register_vehicle(data: NewVehicleIn) -> tuple[VehicleCreated, int]:
    """Register a vehicle; its token is in the answer, once (only its hash is stored)."""
    new = NewVehicle(data.vin, data.make, data.model, data.year, dict(data.metadata))
    try:
        [(vehicle, token)] = await state().db.add_vehicles([new], by=current_principal().username)
    except VehicleExistsError:
        raise ApiError(409, "vehicle_exists", f"vehicle {data.vin} is already registered") from None
    return VehicleCreated(**_vehicle_out(vehicle).model_dump(), token=token), 201


@vehicles.get("/<vin>")
@requires(Role.VIEWER)
@validate_response(VehicleOut)
async def get_vehicle(vin: str) -> VehicleOut:
    """One vehicle with its live connection status on this node."""
    return _vehicle_out(await _registered(vin))


@vehicles.post("/<vin>/token")
@requires(Role.ADMIN)
@validate_response(VehicleToken)
async def rotate_token(vin: str) -> VehicleToken:
    """A new token for the vehicle, shown once; the old one stops working at once.

    A live link made with the old token is ended with `UNAUTHENTICATED`.
    """
    s = state()
    try:
        token = await s.db.rotate_vehicle_token(vin, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    s.hub.revoke(
        vin, Status.UNAUTHENTICATED, "the vehicle's token was rotated; reconnect with the new one"
    )
    return VehicleToken(vin=vin, token=token)


@vehicles.post("/<vin>/disable")
@requires(Role.ADMIN)
@validate_response(VehicleOut)
async def disable_vehicle(vin: str) -> VehicleOut:
    """Refuse the vehicle from now on (`PERMISSION_DENIED`), ending its live link."""
    s = state()
    try:
        await s.db.set_vehicle_enabled(vin, False, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    s.hub.revoke(vin, Status.PERMISSION_DENIED, f"vehicle {vin} was disabled by an admin")
    return _vehicle_out(await _registered(vin))


@vehicles.post("/<vin>/enable")
@requires(Role.ADMIN)
@validate_response(VehicleOut)
async def enable_vehicle(vin: str) -> VehicleOut:
    """Admit the vehicle again."""
    try:
        await state().db.set_vehicle_enabled(vin, True, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    return _vehicle_out(await _registered(vin))


async def _registered(vin: str) -> Vehicle:
    vehicle = await state().db.get_vehicle(vin)
    if vehicle is None:
        raise _unknown(vin)
    return vehicle


def _unknown(vin: str) -> ApiError:
    return ApiError(404, "unknown_vehicle", f"no vehicle with VIN {vin} is registered")


def _vehicle_out(vehicle: Vehicle) -> VehicleOut:
    hub = state().hub
    connection = hub.connection(vehicle.vin)
    if connection is not None:
        status = ConnectionOut(
            status="connected", since=connection.since, last_seen_at=vehicle.last_seen_at
        )
    else:
        ended = hub.last_disconnect(vehicle.vin)
        status = ConnectionOut(
            status="disconnected",
            since=ended.at if ended else vehicle.last_seen_at,
            last_seen_at=vehicle.last_seen_at,
            reason=ended.reason.value if ended else None,
            detail=ended.detail if ended else None,
        )
    return VehicleOut(
        vin=vehicle.vin,
        make=vehicle.make,
        model=vehicle.model,
        year=vehicle.year,
        connection=status,
    )
