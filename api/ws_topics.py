"""The streams behind the operator WebSocket's topics (see `api.websocket` for the protocol).

Each stream runs in its subscription's task. It calls `ready()` once it has
done its reads (through the node's shared `ws_reads` limiter) and queued its
`subscribed` frame or raised its error, so the socket's reader waits for
that, never for what follows: a command's replay is paced by the client's
reading, live frames never wait.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import trio

from api.access import can_read_command
from api.auth import Principal, Role
from api.live_status import holders_of
from api.state import AppState
from api.ws_frames import (
    ClientError,
    Message,
    event_frame,
    status_frame,
    update_frame,
    vehicle_frame,
)
from api.ws_outbox import Outbox, Subscription
from hub import (
    BusMessage,
    Command,
    CommandEventRecord,
    CommandUpdate,
    StatusChange,
    VehicleStatus,
)


class Viewer(Protocol):
    """The socket a stream serves: the node, who is watching, where frames go."""

    s: AppState
    principal: Principal
    outbox: Outbox


async def stream_vehicles(
    viewer: Viewer, sub: Subscription, ready: Callable[[], None], topic: str, vin: str | None
) -> None:
    """`fleet`, or `vehicle:<vin>`: its state now, its connection changes, its commands."""
    vehicle = None
    if vin is not None:
        async with viewer.s.ws_reads:
            vehicle = await viewer.s.db.vehicles.get_vehicle(vin)
        if vehicle is None:
            raise ClientError(
                "unknown_vehicle", f"no vehicle with VIN {vin!r} is registered", topic
            )
    admin, me = viewer.principal.role is Role.ADMIN, viewer.principal.username
    async with viewer.s.hub.bus.subscribe(topic) as live:
        viewer.outbox.put({"type": "subscribed", "topic": topic}, sub)
        if vin is not None and vehicle is not None:
            at = vehicle.last_seen_at or vehicle.created_at
            async with viewer.s.ws_reads:
                now = await _vehicle_now(viewer, topic, vin, at)
            viewer.outbox.put(now, sub)
        ready()
        async for message in live:
            frame: Message
            match message:
                case VehicleStatus():
                    frame = vehicle_frame(topic, message)
                case CommandUpdate(owner, update) if admin or owner == me:
                    frame = update_frame(topic, update)
                case _:
                    continue
            if not viewer.outbox.put(frame, sub):
                return
    raise ClientError("overflow", "you fell behind; subscribe again", topic)


async def _vehicle_now(viewer: Viewer, topic: str, vin: str, last_seen: datetime) -> Message:
    """The snapshot frame: its link to this node or (scale-out) to another live node."""
    holders = await holders_of([vin])
    here = viewer.s.hub_config.node_id
    elsewhere = holders.nodes.get(vin) if holders.nodes.get(vin) != here else None
    connection = viewer.s.hub.connection(vin)
    ended = viewer.s.hub.last_disconnect(vin)
    if connection is not None:
        status, node = VehicleStatus(vin, True, connection.since), here
    elif elsewhere is not None:
        status, node = VehicleStatus(vin, True, last_seen), elsewhere
    elif ended is None:
        status, node = VehicleStatus(vin, False, last_seen), None
    else:
        status, node = VehicleStatus(vin, False, ended.at, ended.reason, ended.detail), None
    return {**vehicle_frame(topic, status), "node_id": node, "source": holders.source}


async def stream_command(
    viewer: Viewer, sub: Subscription, ready: Callable[[], None], topic: str, command_id: uuid.UUID
) -> None:
    """A command's stored events from `from_seq`, then its live ones, then its end."""
    async with viewer.s.hub.bus.subscribe(topic) as live:
        await _replay_then_follow(viewer, sub, ready, topic, command_id, live)


async def _replay_then_follow(
    viewer: Viewer,
    sub: Subscription,
    ready: Callable[[], None],
    topic: str,
    command_id: uuid.UUID,
    live: trio.MemoryReceiveChannel[BusMessage],
) -> None:
    from_seq = next_seq = sub.next_seq or 0
    # Held here (run by this node lately): read with no checkpoint since subscribing.
    row: Command | None
    held = viewer.s.hub.recent.get(command_id, from_seq)
    if held is not None:
        row, stored = held
    else:
        async with viewer.s.ws_reads:
            row, stored = await viewer.s.db.commands.command_with_events(command_id, from_seq)
    if row is None or not can_read_command(viewer.principal, row):
        raise ClientError("unknown_command", f"no command {command_id} visible to you", topic)
    ready()  # the replay is paced by the client's reading: the socket reads on meanwhile
    if not await viewer.outbox.put_paced(
        {"type": "subscribed", "topic": topic, "from_seq": from_seq}, sub
    ):
        return
    for event in stored:
        if not await viewer.outbox.put_paced(event_frame(topic, event), sub):
            return
        sub.next_seq = next_seq = event.seq + 1
    if row.status.is_final:
        at = row.finished_at or row.submitted_at  # a final row has its finished_at
        viewer.outbox.put(
            status_frame(topic, StatusChange(command_id, row.status, at, row.error)), sub
        )
        return
    async for message in live:
        if isinstance(message, CommandEventRecord):
            if message.seq >= next_seq:
                if not viewer.outbox.put(event_frame(topic, message), sub):
                    return
                sub.next_seq = next_seq = message.seq + 1
        elif isinstance(message, StatusChange) and message.status.is_final:
            viewer.outbox.put(update_frame(topic, message), sub)
            return
    raise ClientError(
        "overflow", f"you fell behind; subscribe again with from_seq {next_seq}", topic
    )
