"""REST routes: login, the vehicle list, command submission and its results, health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from quart import Blueprint, Response, jsonify
from quart_schema import validate_request, validate_response

from api.access import can_read_command, current_principal, requires
from api.auth import Principal, Role
from api.errors import ApiError
from api.schemas import (
    CommandOut,
    EventList,
    EventOut,
    LoginRequest,
    SubmitCommand,
    TokenResponse,
)
from api.state import state
from hub import (
    JSON,
    CatalogError,
    Command,
    CommandStatus,
    JournalWriteFailed,
    MailboxFull,
    SovdRequest,
    StatusChange,
    VehicleNotConnected,
    build_request,
)
from storage import CommandRow, DatabaseUnavailable

api = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)


@api.post("/auth/login")
@validate_request(LoginRequest)
@validate_response(TokenResponse)
async def login(data: LoginRequest) -> TokenResponse:
    """Exchange a username and password for a short-lived access token."""
    s = state()
    user = await s.db.authenticate_user(data.username, data.password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "invalid username or password")
    token = s.tokens.issue(Principal(user.username, Role(user.role)))
    return TokenResponse(access_token=token, expires_in=s.tokens.ttl_s)


@api.post("/commands")
@requires(Role.ENGINEER)
@validate_request(SubmitCommand)
async def submit_command(data: SubmitCommand) -> tuple[Response, int, dict[str, str]]:
    """Validate a catalog command, record it, and hand it to the vehicle's actor.

    202 means the command and its audit event are committed. 409 when the
    vehicle is not connected (unless `ttl_s` lets the command wait for it),
    503 (with Retry-After) when its mailbox is full.
    """
    s = state()
    sovd = _catalog_request(data)
    timeout_s = _limited("timeout_s", data.timeout_s, s.hub_config.max_command_timeout_s)
    ttl_s = _limited("ttl_s", data.ttl_s, s.hub_config.max_command_ttl_s)
    if s.hub.connection(data.vin) is None:  # connected implies registered: no query needed
        if await s.db.get_vehicle(data.vin) is None:
            raise ApiError(404, "unknown_vehicle", f"no vehicle with VIN {data.vin} is registered")
        if ttl_s is None:
            raise ApiError(
                409,
                "vehicle_offline",
                f"vehicle {data.vin} is not connected; send ttl_s to let the command wait for it",
            )
    now = datetime.now(UTC)
    command = Command(
        id=uuid.uuid4(),
        vin=data.vin,
        name=data.command,
        params=dict(data.params),
        sovd=sovd,
        timeout_s=timeout_s or s.hub_config.default_command_timeout_s,
        submitted_by=current_principal().username,
        submitted_at=now,
        expires_at=now + timedelta(seconds=ttl_s) if ttl_s else None,
    )
    try:
        await s.hub.submit(command)
    except JournalWriteFailed as exc:
        raise ApiError(
            503, "storage_unavailable", f"the command could not be recorded: {exc.__cause__}"
        ) from None
    except (VehicleNotConnected, MailboxFull) as exc:
        if isinstance(exc, MailboxFull):
            raise ApiError(
                503, "vehicle_busy", str(exc), headers={"Retry-After": str(exc.retry_after_s)}
            ) from None
        raise ApiError(409, "vehicle_offline", str(exc)) from None
    body = _command_out(_row_of(command)).model_dump(mode="json")
    return jsonify(body), 202, {"Location": f"/api/v1/commands/{command.id}"}


def _catalog_request(data: SubmitCommand) -> SovdRequest:
    try:
        return build_request(data.command, data.params)
    except CatalogError as exc:
        detail: dict[str, JSON] = {"field": exc.field, "rule": exc.rule, "message": exc.message}
        raise ApiError(422, "invalid_command", exc.message, details=[detail]) from None


def _limited(field: str, requested: float | None, limit: float) -> float | None:
    if requested is not None and requested > limit:
        message = f"{field} must be at most {limit:g}, got {requested:g}"
        detail: dict[str, JSON] = {"field": field, "rule": "maximum", "message": message}
        raise ApiError(422, "validation_failed", message, details=[detail])
    return requested


@api.get("/commands/<uuid:command_id>")
@requires(Role.VIEWER)
@validate_response(CommandOut)
async def get_command(command_id: uuid.UUID) -> CommandOut:
    """A command's status, timings and error."""
    return _command_out(await _readable_command(command_id))


@api.post("/commands/<uuid:command_id>/cancel")
@requires(Role.ENGINEER)
@validate_response(CommandOut, 202)
async def cancel_command(command_id: uuid.UUID) -> tuple[CommandOut, int]:
    """Cancel a command: a waiting one at once, a running one once the vehicle confirms.

    202 with the command as it is now; follow it to `cancelled` (or to its own
    end, if it finished first) on the WebSocket. 409 if it has already ended.
    """
    s = state()
    row = await _readable_command(command_id)
    if row.status.is_final:
        raise ApiError(
            409, "command_finished", f"command {command_id} has already ended: {row.status.value}"
        )
    by = current_principal().username
    try:
        handed = s.hub.cancel(command_id, row.vin, by)
    except MailboxFull as exc:
        headers = {"Retry-After": str(exc.retry_after_s)}
        raise ApiError(503, "vehicle_busy", str(exc), headers=headers) from None
    if not handed:  # no live actor holds it: nothing can still run it
        cancelled = StatusChange(
            command_id, CommandStatus.CANCELLED, datetime.now(UTC), f"cancelled by {by}"
        )
        await s.db.record((), [cancelled])
    return _command_out(await _readable_command(command_id)), 202


@api.get("/commands/<uuid:command_id>/events")
@requires(Role.VIEWER)
@validate_response(EventList)
async def get_events(command_id: uuid.UUID) -> EventList:
    """Every event the vehicle sent for a command, ordered by seq."""
    await _readable_command(command_id)
    events = await state().db.list_events(command_id)
    items = [
        EventOut(
            seq=e.seq,
            kind=e.kind.value,
            status=e.status,
            body=e.body,
            final=e.final,
            received_at=e.received_at,
        )
        for e in events
    ]
    return EventList(items=items, total=len(items))


async def _readable_command(command_id: uuid.UUID) -> CommandRow:
    row = await state().db.get_command(command_id)
    if row is None or not can_read_command(current_principal(), row):
        raise ApiError(404, "unknown_command", f"no command {command_id} visible to you")
    return row


def _row_of(command: Command) -> CommandRow:
    return CommandRow(
        id=command.id,
        vin=command.vin,
        submitted_by=command.submitted_by,
        name=command.name,
        params=command.params,
        sovd=command.sovd,
        status=CommandStatus.PENDING,
        error=None,
        timeout_s=command.timeout_s,
        submitted_at=command.submitted_at,
        started_at=None,
        finished_at=None,
        expires_at=command.expires_at,
    )


def _command_out(row: CommandRow) -> CommandOut:
    base = f"/api/v1/commands/{row.id}"
    return CommandOut(
        id=row.id,
        vin=row.vin,
        command=row.name,
        params=row.params,
        status=row.status.value,
        error=row.error,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
        timeout_s=row.timeout_s,
        links={"self": base, "events": f"{base}/events", "stream": "/api/v1/ws"},
    )


@health.get("/health/live")
async def live() -> dict[str, object]:
    """The process is up; with the hub's counters (no database query)."""
    return {"status": "ok", **state().hub.statistics()}


@health.get("/health/ready")
async def ready() -> tuple[dict[str, object], int]:
    """Ready to take commands: the database answers."""
    s = state()
    try:
        await s.db.ping()
    except DatabaseUnavailable as exc:
        return {"status": "unavailable", "database": str(exc)}, 503
    return {"status": "ok", "database": "ok", **s.hub.statistics()}, 200
