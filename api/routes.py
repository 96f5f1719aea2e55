"""REST routes: command submission and its results (login: api/accounts.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from quart import Blueprint, Response, jsonify
from quart_schema import (
    validate_headers,
    validate_querystring,
    validate_request,
    validate_response,
)
from werkzeug.datastructures import Headers

from api.access import can_read_command, current_principal, requires
from api.auth import Role
from api.errors import ApiError, envelope
from api.idempotency import IdempotencyClaim, key_locks, request_hash, resume_lost
from api.openapi import errors
from api.ratelimit import limit_submissions
from api.schemas import (
    CommandList,
    CommandOut,
    CommandQuery,
    EventList,
    EventOut,
    IdempotencyHeaders,
    SubmitCommand,
)
from api.state import state
from hub import (
    JSON,
    CatalogError,
    Command,
    IdempotencyKeyTaken,
    JournalWriteFailed,
    MailboxFull,
    Overloaded,
    RoutingFailed,
    SovdRequest,
    VehicleNotConnected,
    build_request,
)
from storage import CommandFilter, DatabaseUnavailable, StorageError

api = Blueprint("api", __name__, url_prefix="/api/v1")
log = structlog.get_logger("api.commands")

#: Retry-After of a 503 for a query that found the database down (outside a known outage).
STORAGE_RETRY_AFTER_S = 5


@api.post("/commands")
@errors(404, 409, 429, 503)
@requires(Role.ENGINEER)
@limit_submissions
@validate_headers(IdempotencyHeaders)
@validate_request(SubmitCommand)
@validate_response(CommandOut, 202)
@validate_response(CommandOut, 200)
async def submit_command(
    data: SubmitCommand, headers: IdempotencyHeaders
) -> tuple[CommandOut, int, Headers]:
    """Validate a catalog command, record it, and hand it to the vehicle's actor.

    202 means the command and its audit event are committed. 409 when the
    vehicle is not connected (unless `ttl_s` lets the command wait for it),
    503 (with Retry-After) when its mailbox is full. With an `Idempotency-Key`,
    a retry with the same key and body answers 200 with the first command (sent
    to the vehicle once); the same key with another body is 409.
    """
    try:  # during a database outage: refuse at once, before any query could hang
        state().hub.journal.check_available()
    except JournalWriteFailed as exc:
        raise _not_recorded(exc) from None
    key = headers.idempotency_key
    if key is None:
        return await _submit(data, None)
    username = current_principal().username
    claim = IdempotencyClaim(key, request_hash(data))
    async with key_locks().hold(username, key):
        earlier = await state().db.commands.find_idempotent(username, key)
        if earlier is None:
            try:
                return await _submit(data, claim)
            except IdempotencyKeyTaken:  # another node stored it between lookup and commit
                earlier = await state().db.commands.find_idempotent(username, key)
                if earlier is None:
                    raise
        row = earlier
        if row.request_hash != claim.request_hash:
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was already used for command {row.id} with a "
                "different body; send that body again to get the command back, or use a new key",
            )
        row = await resume_lost(row)
    headers_out = _located(row.id)
    headers_out["Idempotent-Replayed"] = "true"
    return CommandOut.of(row), 200, headers_out


async def _submit(
    data: SubmitCommand, claim: IdempotencyClaim | None
) -> tuple[CommandOut, int, Headers]:
    s = state()
    sovd = _catalog_request(data)
    timeout_s = _limited("timeout_s", data.timeout_s, s.hub_config.max_command_timeout_s)
    ttl_s = _limited("ttl_s", data.ttl_s, s.hub_config.max_command_ttl_s)
    # Connected implies registered: no query needed.
    if s.hub.connection(data.vin) is None and await s.db.vehicles.get_vehicle(data.vin) is None:
        raise ApiError(404, "unknown_vehicle", f"no vehicle with VIN {data.vin} is registered")
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
        idempotency_key=claim.key if claim is not None else None,
        request_hash=claim.request_hash if claim is not None else None,
    )
    structlog.contextvars.bind_contextvars(vin=command.vin, command_id=str(command.id))
    try:
        await s.hub.submit(command)
    except JournalWriteFailed as exc:
        raise _not_recorded(exc) from None
    except RoutingFailed as exc:
        raise _routing_failed(exc) from None
    except MailboxFull as exc:
        raise ApiError(
            503, "vehicle_busy", str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    except Overloaded as exc:
        raise ApiError(
            503, "overloaded", str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    except VehicleNotConnected as exc:
        raise ApiError(409, "vehicle_offline", str(exc)) from None
    log.debug("command.submitted", command=command.name, waits=command.expires_at is not None)
    return CommandOut.of(command), 202, _located(command.id)


def _located(command_id: uuid.UUID) -> Headers:
    """The `Location` of a command. Headers, not a dict: quart-schema would build a pydantic
    TypeAdapter for a dict on every response (about 40 us)."""
    return Headers({"Location": f"/api/v1/commands/{command_id}"})


def _routing_failed(exc: RoutingFailed) -> ApiError:
    """503 `redis_unavailable`: the node holding the vehicle cannot be found or reached."""
    cause = exc.__cause__ or exc
    if exc.recorded:  # stored, then Redis failed: recorded as failed
        message = (
            f"Redis does not answer: the command was recorded as failed, since it could not be "
            f"passed to hub node {exc.node}, which holds vehicle {exc.vin} ({cause}); send it "
            f"again in {STORAGE_RETRY_AFTER_S} s"
        )
    else:
        message = (
            f"Redis does not answer: cannot reach the node holding vehicle {exc.vin} ({cause}); "
            f"nothing was changed: try again in {STORAGE_RETRY_AFTER_S} s, or send it to the "
            "node the vehicle is connected to"
        )
    headers = {"Retry-After": str(STORAGE_RETRY_AFTER_S)}
    return ApiError(503, "redis_unavailable", message, headers=headers)


def _not_recorded(exc: JournalWriteFailed) -> ApiError:
    """503 `storage_unavailable`: nothing was recorded, so the command will not run."""
    return ApiError(
        503,
        "storage_unavailable",
        f"the command was not recorded and will not run: {exc.__cause__ or exc}; "
        f"send it again in {exc.retry_after_s} s (with the same Idempotency-Key, if any)",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


@api.app_errorhandler(DatabaseUnavailable)
async def database_unavailable(exc: DatabaseUnavailable) -> Response:
    """Any route whose query found the database unreachable: 503, retry later."""
    outage = state().hub.journal.outage
    retry_after_s = outage.retry_after_s if outage is not None else STORAGE_RETRY_AFTER_S
    message = f"{exc}; nothing was changed: try again in {retry_after_s} s"
    response = jsonify(envelope("storage_unavailable", message))
    response.status_code = 503
    response.headers["Retry-After"] = str(retry_after_s)
    return response


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


@api.get("/commands")
@requires(Role.VIEWER)
@validate_querystring(CommandQuery)
@validate_response(CommandList)
async def list_commands(query_args: CommandQuery) -> CommandList:
    """Command history, newest first: admins see everyone's, others only their own.

    `total` counts every command that matches, not just this page. Naming
    someone else in `submitted_by` is 403 unless you are an admin.
    """
    principal = current_principal()
    submitted_by = query_args.submitted_by
    if principal.role is not Role.ADMIN:
        if submitted_by not in (None, principal.username):
            raise ApiError(
                403,
                "forbidden",
                f"only admins may list other users' commands (you are {principal.role.value}); "
                f"leave out submitted_by or set it to {principal.username}",
            )
        submitted_by = principal.username
    wanted = CommandFilter(
        vin=query_args.vin,
        statuses=query_args.statuses(),
        submitted_by=submitted_by,
        name=query_args.command,
        since=query_args.since,
        until=query_args.until,
    )
    page = await state().db.commands.list_commands(
        wanted, limit=query_args.limit, offset=query_args.offset
    )
    return CommandList(
        items=[CommandOut.of(row) for row in page.items],
        total=page.total,
        limit=query_args.limit,
        offset=query_args.offset,
    )


@api.get("/commands/<uuid:command_id>")
@requires(Role.VIEWER)
@validate_response(CommandOut)
async def get_command(command_id: uuid.UUID) -> CommandOut:
    """A command's status, timings and error."""
    return CommandOut.of(await _readable_command(command_id))


@api.post("/commands/<uuid:command_id>/cancel")
@errors(409, 503)
@requires(Role.ENGINEER)
@validate_response(CommandOut, 202)
async def cancel_command(command_id: uuid.UUID) -> tuple[CommandOut, int]:
    """Cancel a command: a waiting one at once, a running one once the vehicle confirms.

    202 with the command as it is now; follow it to `cancelled` (or to its own
    end, if it finished first) on the WebSocket. 409 if it has already ended.
    """
    row = await _readable_command(command_id)
    if row.status.is_final:
        raise ApiError(
            409, "command_finished", f"command {command_id} has already ended: {row.status.value}"
        )
    try:
        await state().hub.cancel(row, current_principal().username, row.status)
    except RoutingFailed as exc:
        raise _routing_failed(exc) from None
    except StorageError as exc:
        raise ApiError(
            503, "storage_unavailable", f"the cancel request could not be recorded: {exc}"
        ) from None
    except MailboxFull as exc:
        headers = {"Retry-After": str(exc.retry_after_s)}
        raise ApiError(503, "vehicle_busy", str(exc), headers=headers) from None
    return CommandOut.of(await _readable_command(command_id)), 202


@api.get("/commands/<uuid:command_id>/events")
@requires(Role.VIEWER)
@validate_response(EventList)
async def get_events(command_id: uuid.UUID) -> EventList:
    """Every event the vehicle sent for a command, ordered by seq."""
    await _readable_command(command_id)
    events = await state().db.commands.list_events(command_id)
    items = [EventOut.model_validate(e.to_json()) for e in events]
    return EventList(items=items, total=len(items))


async def _readable_command(command_id: uuid.UUID) -> Command:
    row = await state().db.commands.get_command(command_id)
    if row is None or not can_read_command(current_principal(), row):
        raise ApiError(404, "unknown_command", f"no command {command_id} visible to you")
    return row
