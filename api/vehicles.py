"""Fleet routes: the vehicle registry, connection status, and vehicle credentials (admin)."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from api.access import current_principal, requires
from api.auth import Role
from api.errors import ApiError
from api.live_status import Holders, all_holders, holders_of
from api.openapi import errors
from api.schemas import (
    CommandOut,
    ConnectionDetail,
    ConnectionOut,
    NewVehicleIn,
    VehicleCreated,
    VehicleDetail,
    VehicleList,
    VehicleOut,
    VehiclePatch,
    VehicleQuery,
    VehicleToken,
)
from api.state import state
from hub import LinkVerdict
from storage import (
    NewVehicle,
    UnknownVehicleError,
    Vehicle,
    VehicleChanges,
    VehicleExistsError,
    VehicleFilter,
)

vehicles = Blueprint("vehicles", __name__, url_prefix="/api/v1/vehicles")

#: How many of a vehicle's newest commands `GET /api/v1/vehicles/<vin>` shows.
RECENT = 10


@vehicles.get("")
@requires(Role.VIEWER)
@validate_querystring(VehicleQuery)
@validate_response(VehicleList)
async def list_vehicles(query_args: VehicleQuery) -> VehicleList:
    """A page of the registered vehicles, ordered by VIN, with their live connection status.

    `status` filters on the links at the time of the request: to any live node
    (the leases in Redis; a SCAN of them) or, without Redis, to this node;
    `total` counts every vehicle that matches, not just this page.
    """
    s = state()
    connected = None
    if query_args.status is not None:
        everywhere = await all_holders()
        connected = frozenset(s.hub.connected_vins()) | _remote(everywhere).keys()
    wanted = VehicleFilter(
        search=query_args.search,
        vins=connected if query_args.status == "connected" else None,
        not_vins=connected if query_args.status == "disconnected" else None,
    )
    page = await s.db.vehicles.search_vehicles(
        wanted, limit=query_args.limit, offset=query_args.offset
    )
    holders = await holders_of([v.vin for v in page.items])
    return VehicleList(
        items=[_vehicle_out(v, holders) for v in page.items],
        total=page.total,
        limit=query_args.limit,
        offset=query_args.offset,
    )


@vehicles.post("")
@errors(409)
@requires(Role.ADMIN)
@validate_request(NewVehicleIn)
@validate_response(VehicleCreated, 201)
async def register_vehicle(data: NewVehicleIn) -> tuple[VehicleCreated, int]:
    """Register a vehicle; its token is in the answer, once (only its hash is stored)."""
    new = NewVehicle(data.vin, data.make, data.model, data.year, dict(data.metadata))
    try:
        [(vehicle, token)] = await state().db.vehicles.add_vehicles(
            [new], by=current_principal().username
        )
    except VehicleExistsError:
        raise ApiError(409, "vehicle_exists", f"vehicle {data.vin} is already registered") from None
    out = _vehicle_out(vehicle, await holders_of([vehicle.vin]))
    return VehicleCreated(**out.model_dump(), token=token), 201


@vehicles.get("/<vin>")
@requires(Role.VIEWER)
@validate_response(VehicleDetail)
async def get_vehicle(vin: str) -> VehicleDetail:
    """One vehicle: its live link to this node, active command counts, and latest commands.

    `recent_commands` are its 10 newest: anyone's for admins, only the
    caller's own for engineers and viewers (as in `GET /api/v1/commands`).
    """
    _check_shape(vin)
    principal = current_principal()
    commands_of = None if principal.role is Role.ADMIN else principal.username
    overview = await state().db.vehicles.vehicle_overview(
        vin, commands_of=commands_of, recent=RECENT
    )
    if overview is None:
        raise _unknown(vin)
    out = _vehicle_out(overview.vehicle, await holders_of([vin]))
    connection = state().hub.connection(vin)
    return VehicleDetail(
        **out.model_dump(exclude={"connection"}),
        connection=ConnectionDetail(
            **out.connection.model_dump(),
            session_id=connection.session_id if connection is not None else None,
        ),
        active_commands=overview.active_commands,
        recent_commands=[CommandOut.of(row) for row in overview.recent_commands],
    )


@vehicles.patch("/<vin>")
@requires(Role.ADMIN)
@validate_request(VehiclePatch)
@validate_response(VehicleOut)
async def update_vehicle(vin: str, data: VehiclePatch) -> VehicleOut:
    """Change a vehicle's make, model, year or metadata (audited `vehicle.updated`).

    Only the fields in the body change; `metadata` replaces the whole object.
    """
    _check_shape(vin)
    changes = VehicleChanges(
        make=data.make,
        model=data.model,
        year=data.year,
        metadata=dict(data.metadata) if data.metadata is not None else None,
    )
    try:
        vehicle = await state().db.vehicles.update_vehicle(
            vin, changes, by=current_principal().username
        )
    except UnknownVehicleError:
        raise _unknown(vin) from None
    return _vehicle_out(vehicle, await holders_of([vin]))


@vehicles.post("/<vin>/token")
@requires(Role.ADMIN)
@validate_response(VehicleToken)
async def rotate_token(vin: str) -> VehicleToken:
    """A new token for the vehicle, shown once; the old one stops working at once.

    A live link made with the old token is ended with `UNAUTHENTICATED`.
    """
    _check_shape(vin)
    s = state()
    try:
        token = await s.db.vehicles.rotate_vehicle_token(vin, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    s.hub.revoke(
        vin,
        LinkVerdict.UNAUTHENTICATED,
        "the vehicle's token was rotated; reconnect with the new one",
    )
    return VehicleToken(vin=vin, token=token)


@vehicles.post("/<vin>/disable")
@requires(Role.ADMIN)
@validate_response(VehicleOut)
async def disable_vehicle(vin: str) -> VehicleOut:
    """Refuse the vehicle from now on (`PERMISSION_DENIED`), ending its live link."""
    _check_shape(vin)
    s = state()
    try:
        await s.db.vehicles.set_vehicle_enabled(vin, False, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    s.hub.revoke(vin, LinkVerdict.PERMISSION_DENIED, f"vehicle {vin} was disabled by an admin")
    return _vehicle_out(await _registered(vin), await holders_of([vin]))


@vehicles.post("/<vin>/enable")
@requires(Role.ADMIN)
@validate_response(VehicleOut)
async def enable_vehicle(vin: str) -> VehicleOut:
    """Admit the vehicle again."""
    _check_shape(vin)
    try:
        await state().db.vehicles.set_vehicle_enabled(vin, True, by=current_principal().username)
    except UnknownVehicleError:
        raise _unknown(vin) from None
    return _vehicle_out(await _registered(vin), await holders_of([vin]))


async def _registered(vin: str) -> Vehicle:
    vehicle = await state().db.vehicles.get_vehicle(vin)
    if vehicle is None:
        raise _unknown(vin)
    return vehicle


def _check_shape(vin: str) -> None:
    """404 at once for what cannot be a VIN (and Postgres would refuse, e.g. a NUL)."""
    if len(vin) != 17 or not vin.isprintable():
        raise _unknown(vin)


def _unknown(vin: str) -> ApiError:
    return ApiError(404, "unknown_vehicle", f"no vehicle with VIN {vin} is registered")


def _remote(holders: Holders) -> dict[str, str]:
    """VIN -> other node, of those in `holders` held by another node."""
    here = state().hub_config.node_id
    return {vin: node for vin, node in holders.nodes.items() if node != here}


def _vehicle_out(vehicle: Vehicle, holders: Holders) -> VehicleOut:
    hub = state().hub
    connection = hub.connection(vehicle.vin)
    elsewhere = _remote(holders).get(vehicle.vin)
    if connection is not None:
        status = ConnectionOut(
            status="connected",
            since=connection.since,
            last_seen_at=vehicle.last_seen_at,
            node_id=state().hub_config.node_id,
            source=holders.source,
        )
    elif elsewhere is not None:  # scale-out: its link is to another live node
        status = ConnectionOut(
            status="connected",
            since=None,
            last_seen_at=vehicle.last_seen_at,
            node_id=elsewhere,
            source=holders.source,
        )
    else:
        ended = hub.last_disconnect(vehicle.vin)
        status = ConnectionOut(
            status="disconnected",
            since=ended.at if ended else vehicle.last_seen_at,
            last_seen_at=vehicle.last_seen_at,
            reason=ended.reason.value if ended else None,
            detail=ended.detail if ended else None,
            source=holders.source,
        )
    return VehicleOut(
        vin=vehicle.vin,
        make=vehicle.make,
        model=vehicle.model,
        year=vehicle.year,
        metadata=vehicle.metadata,
        enabled=vehicle.enabled,
        created_at=vehicle.created_at,
        connection=status,
    )
