"""The operator WebSocket: authenticate, subscribe to commands, get stored then live events.

Protocol (JSON text frames):
  client: {"type": "auth", "token": "<access token>"}   first, within ws_auth_timeout_s
  hub:    {"type": "authenticated", "username", "role"}  or close code 4401
  client: {"type": "subscribe", "topic": "command:<id>", "from_seq": 0}
  hub:    {"type": "subscribed", "topic", "from_seq"}
          {"type": "event", "topic", "seq", "kind", "status", "body", "final"} ...
          {"type": "status", "topic", "status", "error", "at"}   when the command has ended
  client: {"type": "subscribe", "topic": "vehicle:<vin>"}  or  "fleet" (every vehicle)
  hub:    {"type": "subscribed", "topic"}, then for vehicle:<vin> its state now, then each change:
          {"type": "vehicle", "topic", "vin", "status", "reason", "detail", "at"}
  client: {"type": "unsubscribe", "topic"}  ·  {"type": "ping"} -> {"type": "pong"}
  hub:    {"type": "error", "code", "message", "topic"?}  for a bad message; the socket stays open

A subscription reads the journal only after it has joined the bus, and the
actors record before they publish, so stored and live events meet without a
gap; duplicates are dropped by `seq`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import orjson
import trio
from quart import Blueprint, websocket

from api.access import can_read_command
from api.auth import InvalidToken, Principal
from api.state import AppState, state
from hub import (
    FLEET_TOPIC,
    JSON,
    BusMessage,
    CommandEventRecord,
    CommandStatus,
    StatusChange,
    VehicleStatus,
    command_topic,
)

ws = Blueprint("ws", __name__)

Message: TypeAlias = dict[str, JSON]
#: Close code for a socket that did not authenticate (4000-4999 are the application's).
CLOSE_UNAUTHENTICATED = 4401


class ClientError(Exception):
    """A client message we cannot act on; answered with an error frame."""

    def __init__(self, code: str, message: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.frame: Message = {"type": "error", "code": code, "message": message}
        if topic is not None:
            self.frame["topic"] = topic


@ws.websocket("/api/v1/ws")
async def operator_socket() -> None:
    """Serve one operator's WebSocket until it closes."""
    s = state()
    principal = await _authenticate(s)
    if principal is None:
        return
    send, receive = trio.open_memory_channel[Message](s.config.ws_buffer_messages)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_frames, receive)
        session = _Session(s, principal, send, nursery)
        await send.send(
            {"type": "authenticated", "username": principal.username, "role": principal.role}
        )
        while True:
            raw = await websocket.receive()
            try:
                reply = session.handle(_parse(raw))
            except ClientError as exc:
                reply = exc.frame
            if reply is not None:
                await send.send(reply)


async def _authenticate(s: AppState) -> Principal | None:
    raw: str | bytes | None = None
    with trio.move_on_after(s.config.ws_auth_timeout_s):
        raw = await websocket.receive()
    if raw is None:
        reason = f"no auth message within {s.config.ws_auth_timeout_s:g} s"
    else:
        try:
            message = _parse(raw)
            token = message.get("token")
            if message.get("type") != "auth" or not isinstance(token, str):
                raise InvalidToken('the first message must be {"type": "auth", "token": "..."}')
            return s.tokens.verify(token)
        except (ClientError, InvalidToken) as exc:
            reason = str(exc)
    await websocket.close(CLOSE_UNAUTHENTICATED, reason[:120])
    return None


async def _write_frames(frames: trio.MemoryReceiveChannel[Message]) -> None:
    async for frame in frames:
        await websocket.send(orjson.dumps(frame).decode())


def _parse(raw: str | bytes) -> Message:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ClientError("malformed_message", "messages must be JSON objects") from None
    if not isinstance(message, dict):
        raise ClientError("malformed_message", "messages must be JSON objects")
    return message


class _Session:
    """One authenticated socket: its subscriptions, each a task in the socket's nursery."""

    def __init__(
        self,
        s: AppState,
        principal: Principal,
        send: trio.MemorySendChannel[Message],
        nursery: trio.Nursery,
    ) -> None:
        self.s = s
        self.principal = principal
        self.send = send
        self.nursery = nursery
        self.subscriptions: dict[str, trio.CancelScope] = {}

    def handle(self, message: Message) -> Message | None:
        """Act on one client message; returns the immediate reply, if any."""
        match message.get("type"):
            case "subscribe":
                topic = message.get("topic")
                if isinstance(topic, str) and (
                    topic == FLEET_TOPIC or topic.startswith("vehicle:")
                ):
                    scope = self._new_subscription(topic)
                    self.nursery.start_soon(self._stream_vehicles, topic, scope)
                    return None
                topic, command_id, from_seq = _subscription_request(message)
                scope = self._new_subscription(topic)
                self.nursery.start_soon(self._stream_command, topic, command_id, from_seq, scope)
                return None
            case "unsubscribe":
                topic = str(message.get("topic"))
                if topic not in self.subscriptions:
                    raise ClientError("not_subscribed", f"not subscribed to {topic}", topic)
                self.subscriptions.pop(topic).cancel()
                return {"type": "unsubscribed", "topic": topic}
            case "ping":
                return {"type": "pong"}
            case other:
                raise ClientError(
                    "unknown_type",
                    f"unknown message type {other!r}; expected subscribe, unsubscribe or ping",
                )

    def _new_subscription(self, topic: str) -> trio.CancelScope:
        if topic in self.subscriptions:
            raise ClientError("already_subscribed", f"already subscribed to {topic}", topic)
        scope = self.subscriptions[topic] = trio.CancelScope()
        return scope

    async def _stream_vehicles(self, topic: str, scope: trio.CancelScope) -> None:
        """Connection changes of one vehicle (`vehicle:<vin>`, its state first) or all (`fleet`)."""
        with scope:
            try:
                async with self.s.hub.bus.subscribe(topic) as live:
                    await self._send_vehicle_snapshot(topic)
                    async for message in live:
                        if isinstance(message, VehicleStatus):
                            await self.send.send(_vehicle_frame(topic, message))
                    raise ClientError("overflow", "you fell behind; subscribe again", topic)
            except ClientError as exc:
                await self.send.send(exc.frame)
            finally:
                if self.subscriptions.get(topic) is scope:
                    del self.subscriptions[topic]

    async def _send_vehicle_snapshot(self, topic: str) -> None:
        await self.send.send({"type": "subscribed", "topic": topic})
        if topic == FLEET_TOPIC:
            return
        vin = topic.removeprefix("vehicle:")
        vehicle = await self.s.db.get_vehicle(vin)
        if vehicle is None:
            raise ClientError("unknown_vehicle", f"no vehicle with VIN {vin} is registered", topic)
        hub = self.s.hub
        connection = hub.connection(vin)
        if connection is not None:
            status = VehicleStatus(vin, True, connection.since)
        else:
            ended = hub.last_disconnect(vin)
            at = ended.at if ended else vehicle.last_seen_at or vehicle.created_at
            status = VehicleStatus(
                vin, False, at, ended.reason if ended else None, ended.detail if ended else None
            )
        await self.send.send(_vehicle_frame(topic, status))

    async def _stream_command(
        self, topic: str, command_id: uuid.UUID, from_seq: int, scope: trio.CancelScope
    ) -> None:
        """Send a command's stored events from `from_seq`, then its live ones, then its end."""
        with scope:
            try:
                async with self.s.hub.bus.subscribe(topic) as live:
                    await self._replay_then_follow(topic, command_id, from_seq, live)
            except ClientError as exc:
                await self.send.send(exc.frame)
            finally:
                if self.subscriptions.get(topic) is scope:
                    del self.subscriptions[topic]

    async def _replay_then_follow(
        self,
        topic: str,
        command_id: uuid.UUID,
        from_seq: int,
        live: trio.MemoryReceiveChannel[BusMessage],
    ) -> None:
        row, stored = await self.s.db.command_with_events(command_id, from_seq)
        if row is None or not can_read_command(self.principal, row):
            raise ClientError("unknown_command", f"no command {command_id} visible to you", topic)
        await self.send.send({"type": "subscribed", "topic": topic, "from_seq": from_seq})
        last = from_seq - 1
        for event in stored:
            await self.send.send(_event_frame(topic, event))
            last = event.seq
        if row.status.is_final:
            await self.send.send(_status_frame(topic, row.status, row.error, row.finished_at))
            return
        async for message in live:
            if isinstance(message, CommandEventRecord):
                if message.seq > last:
                    await self.send.send(_event_frame(topic, message))
                    last = message.seq
            elif isinstance(message, StatusChange) and message.status.is_final:
                await self.send.send(
                    _status_frame(topic, message.status, message.error, message.at)
                )
                return
        raise ClientError(
            "overflow", f"you fell behind; subscribe again with from_seq {last + 1}", topic
        )


def _subscription_request(message: Message) -> tuple[str, uuid.UUID, int]:
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic.startswith("command:"):
        raise ClientError(
            "bad_topic", f"topic must be 'command:<id>', 'vehicle:<vin>' or 'fleet', got {topic!r}"
        )
    try:
        command_id = uuid.UUID(topic.removeprefix("command:"))
    except ValueError:
        raise ClientError("bad_topic", f"{topic!r}: the command id is not a UUID", topic) from None
    from_seq = message.get("from_seq", 0)
    if not isinstance(from_seq, int) or isinstance(from_seq, bool) or from_seq < 0:
        raise ClientError(
            "bad_from_seq", f"from_seq must be an integer >= 0, got {from_seq!r}", topic
        )
    return command_topic(command_id), command_id, from_seq


def _vehicle_frame(topic: str, status: VehicleStatus) -> Message:
    return {
        "type": "vehicle",
        "topic": topic,
        "vin": status.vin,
        "status": "connected" if status.connected else "disconnected",
        "reason": status.reason.value if status.reason else None,
        "detail": status.detail,
        "at": status.at.isoformat(),
    }


def _event_frame(topic: str, event: CommandEventRecord) -> Message:
    return {
        "type": "event",
        "topic": topic,
        "seq": event.seq,
        "kind": event.kind.value,
        "status": event.status,
        "body": event.body,
        "final": event.final,
    }


def _status_frame(
    topic: str, status: CommandStatus, error: str | None, at: datetime | None
) -> Message:
    return {
        "type": "status",
        "topic": topic,
        "status": status.value,
        "error": error,
        "at": at.isoformat() if at else None,
    }
