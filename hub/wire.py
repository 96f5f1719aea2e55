"""Translation between the protobuf messages of the vehicle link and the hub's model."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from hub.errors import WireError
from hub.model import JSON, Command, CommandEventRecord, EventKind
from hub.untrusted import shorten
from proto import CancelCommand, CommandEvent, CommandRequest, HubMessage, SovdRequest

_KINDS = {
    CommandEvent.ACCEPTED: EventKind.ACCEPTED,
    CommandEvent.PROGRESS: EventKind.PROGRESS,
    CommandEvent.RESULT: EventKind.RESULT,
    CommandEvent.ERROR: EventKind.ERROR,
}


def command_request(command: Command) -> HubMessage:
    """The `CommandRequest` that carries `command` to its vehicle."""
    sovd = command.sovd
    body = b"" if sovd.body is None else orjson.dumps(sovd.body)
    return HubMessage(
        command=CommandRequest(
            command_id=str(command.id),
            sovd=SovdRequest(method=sovd.method, path=sovd.path, query=dict(sovd.query), body=body),
            deadline_ms=int(command.timeout_s * 1000),
        )
    )


def cancel_command(command_id: uuid.UUID) -> HubMessage:
    """Ask the vehicle to stop working on `command_id`."""
    return HubMessage(cancel=CancelCommand(command_id=str(command_id)))


def event_record(
    event: CommandEvent, received_at: datetime, max_body_bytes: int
) -> CommandEventRecord:
    """Decode a vehicle's `CommandEvent`; raises `WireError` naming what is wrong."""
    if len(event.body) > max_body_bytes:
        raise WireError(
            f"event {event.seq} of command {event.command_id}: body is {len(event.body)} bytes, "
            f"more than max_event_bytes ({max_body_bytes})"
        )
    try:
        command_id = uuid.UUID(event.command_id)
    except ValueError:
        raise WireError(f"command_id {shorten(event.command_id)} is not a UUID") from None
    kind = _KINDS.get(event.kind)
    if kind is None:
        raise WireError(f"event {event.seq} of command {command_id} has no kind")
    body: JSON = None
    if event.body:
        try:
            body = orjson.loads(event.body)
        except orjson.JSONDecodeError:
            raise WireError(
                f"event {event.seq} of command {command_id}: body is not JSON"
            ) from None
    return CommandEventRecord(
        command_id=command_id,
        seq=event.seq,
        kind=kind,
        status=event.status,
        body=body,
        final=event.final,
        received_at=received_at,
    )
