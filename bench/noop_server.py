"""A no-op server of the hub's operator API: the bare edge `commands` and `fanout` compare against.

    python -m bench.noop_server --http-bind 127.0.0.1:8081 [--event-latency-ms 10]

Quart-Trio on Hypercorn, as the hub serves it, with the same routes and
shapes and nothing behind them: no database, no gRPC, no vehicles. Login
always succeeds and any token is accepted; a submitted command is answered
202 at once. Its events are the three a simulated vehicle answers ReadDTC
with (two `progress`, one final `result`, the simulator's own bodies),
followed by the `succeeded` status frame, in the frames the hub sends
(`api.ws_frames`: `command_id` and `received_at` included).

A command's schedule starts at its 202: the submit handler hands the
command to the player (an actor) just before answering, and the player
waits `--event-latency-ms` before each event, the first too, as
`bench.simulator --event-latency-ms` does, then publishes the status with
the final event. The hub cannot start earlier (its 202 comes after the
command is committed, and its vehicle starts waiting only once the command
has crossed gRPC), so this schedule is the floor of the hub's. With a
latency of 0 (the default, and the `commands` scenario's) the events and
the status are published before the 202 is sent, so a subscription finds
its command ended and is answered at once.

Each command is one `Broadcast`: every frame encoded once when it is
published and sent as the same text to every socket subscribed to
`command:<id>` (the hub's bus also publishes once, but each socket then
builds and encodes its own frames). A subscription gets `subscribed`, the
events already published from its `from_seq`, the live ones as they come,
then the status: the replay-then-follow of `api.ws_topics.stream_command`,
in a task of its own while the command runs. The newest `RETAINED_COMMANDS`
commands are kept, as many as the hub's `recent_commands`; subscribing to
any other gets `unknown_command`. The same load runs against it in the same
invocation, so the hub's figures can be given as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Response, request, websocket
from quart_trio import QuartTrio

from bench.vehicle_events import EventSpec
from bench.vehicle_model import VehicleModel

#: Commands kept for subscriptions, oldest forgotten first (the hub's `recent_commands`).
RETAINED_COMMANDS = 10_000
#: Commands handed to the player and not yet taken; beyond it a submission is a 503.
PLAYER_MAILBOX = 1024


@dataclass(frozen=True)
class _Request:
    method: str
    path: str


#: The events a simulated vehicle sends for ReadDTC 0x10.
READ_DTC_EVENTS: list[EventSpec] = VehicleModel("NOOP").handle(
    _Request("GET", "/components/engine/faults")
)


@dataclass
class Broadcast:
    """One command's frames, each encoded once, for every socket that follows it."""

    command_id: str
    events: list[str] = field(default_factory=list)
    status: str | None = None
    _changed: trio.Event = field(default_factory=trio.Event, init=False, repr=False)

    @property
    def topic(self) -> str:
        """The WebSocket topic of the command."""
        return f"command:{self.command_id}"

    def publish_next(self) -> None:
        """Publish the next of READ_DTC_EVENTS; after the final one, the `succeeded` status."""
        spec = READ_DTC_EVENTS[len(self.events)]
        at = datetime.now(UTC).isoformat()
        frame = {
            "type": "event", "topic": self.topic, "command_id": self.command_id,
            "seq": len(self.events), "kind": spec.kind.value, "status": spec.status,
            "body": spec.body, "final": spec.final, "received_at": at,
        }  # fmt: skip
        self.events.append(orjson.dumps(frame).decode())
        if spec.final:
            self.status = orjson.dumps(
                {"type": "status", "topic": self.topic, "command_id": self.command_id,
                 "status": "succeeded", "error": None, "at": at}
            ).decode()  # fmt: skip
        self._changed.set()
        self._changed = trio.Event()

    async def play(self, event_latency_s: float) -> None:
        """Publish every event, waiting the vehicle's latency before each."""
        while self.status is None:
            await trio.sleep(event_latency_s + READ_DTC_EVENTS[len(self.events)].delay_s)
            self.publish_next()

    async def follow(self, from_seq: int, send: Callable[[str], Awaitable[None]]) -> None:
        """Send the events from `from_seq` as they are published, then the status.

        Cancellation: stops between two frames; nothing to undo.
        """
        next_seq = from_seq
        while True:
            changed = self._changed  # taken before looking: a publish after it sets it
            if next_seq < len(self.events):
                await send(self.events[next_seq])
                next_seq += 1
            elif self.status is not None:
                await send(self.status)
                return
            else:
                await changed.wait()


@dataclass
class _Commands:
    """The commands submitted so far (the newest RETAINED_COMMANDS) and their player."""

    event_latency_s: float
    player: trio.MemorySendChannel[Broadcast]
    by_topic: dict[str, Broadcast] = field(default_factory=dict)

    def submit_nowait(self) -> str:
        """A new command's id, its schedule started; `trio.WouldBlock` if the player is full."""
        broadcast = Broadcast(str(uuid.uuid4()))
        if self.event_latency_s > 0:
            self.player.send_nowait(broadcast)
        else:
            while broadcast.status is None:
                broadcast.publish_next()
        self.by_topic[broadcast.topic] = broadcast
        if len(self.by_topic) > RETAINED_COMMANDS:
            del self.by_topic[next(iter(self.by_topic))]
        return broadcast.command_id


async def run_player(
    event_latency_s: float,
    *,
    task_status: trio.TaskStatus[trio.MemorySendChannel[Broadcast]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The actor playing each command handed to it on the vehicle's schedule, until cancelled.

    Its handle is the send side of its mailbox (PLAYER_MAILBOX commands).
    """
    send, receive = trio.open_memory_channel[Broadcast](PLAYER_MAILBOX)
    async with trio.open_nursery() as nursery, receive:
        task_status.started(send)
        async for broadcast in receive:
            nursery.start_soon(broadcast.play, event_latency_s)


def create_app(commands: _Commands) -> QuartTrio:
    """The no-op application, serving `commands`."""
    app = QuartTrio("sovd-hub-noop")

    @app.post("/api/v1/auth/login")
    async def login() -> Response:
        await request.get_data()
        return _json({"access_token": "noop", "token_type": "bearer", "expires_in": 900}, 200)

    @app.post("/api/v1/commands")
    async def submit() -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _json({"error": {"code": "unauthenticated", "message": "no token"}}, 401)
        data = orjson.loads(await request.get_data())
        try:
            command_id = commands.submit_nowait()
        except trio.WouldBlock:
            return _json({"error": {"code": "overloaded", "message": "player full"}}, 503)
        base = f"/api/v1/commands/{command_id}"
        body = {
            "id": command_id,
            "vin": data["vin"],
            "command": data["command"],
            "params": data["params"],
            "status": "pending",
            "error": None,
            "submitted_by": "bench",
            "submitted_at": datetime.now(UTC).isoformat(),
            "started_at": None,
            "finished_at": None,
            "timeout_s": data.get("timeout_s", 30.0),
            "links": {"self": base, "events": f"{base}/events", "stream": "/api/v1/ws"},
        }
        response = _json(body, 202)
        response.headers["Location"] = base
        return response

    @app.get("/health/live")
    async def live() -> Response:
        return _json({"status": "ok"}, 200)

    @app.websocket("/api/v1/ws")
    async def operator_socket() -> None:
        first = orjson.loads(await websocket.receive())
        if first.get("type") != "auth":
            await websocket.close(4401, "the first message must be auth")
            return
        await _send({"type": "authenticated", "username": "bench", "role": "engineer"})
        await _serve_socket(commands)

    return app


async def _serve_socket(commands: _Commands) -> None:
    """Answer one authenticated socket's messages; each running command followed in a task."""
    async with trio.open_nursery() as following:
        while True:
            message = orjson.loads(await websocket.receive())
            kind = message.get("type")
            if kind == "ping":
                await _send({"type": "pong"})
                continue
            if kind != "subscribe":
                await _send({"type": "error", "code": "unknown_type", "message": "unsupported"})
                continue
            topic, from_seq = str(message.get("topic")), int(message.get("from_seq", 0))
            broadcast = commands.by_topic.get(topic)
            if broadcast is None:
                command_id = topic.removeprefix("command:")
                await _send({"type": "error", "code": "unknown_command",
                             "message": f"no command {command_id} visible to you",
                             "topic": topic})  # fmt: skip
                continue
            await _send({"type": "subscribed", "topic": topic, "from_seq": from_seq})
            if broadcast.status is None:
                following.start_soon(broadcast.follow, from_seq, websocket.send)
            else:  # every frame is there: no task needed
                await broadcast.follow(from_seq, websocket.send)


async def _send(frame: dict[str, Any]) -> None:
    await websocket.send(orjson.dumps(frame).decode())


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


async def _serve(bind: str, event_latency_s: float) -> None:
    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        player = await nursery.start(run_player, event_latency_s)
        await serve(create_app(_Commands(event_latency_s, player)), config)
        nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m bench.noop_server", description=__doc__)
    parser.add_argument("--http-bind", default="127.0.0.1:8081", help="HOST:PORT")
    parser.add_argument(
        "--event-latency-ms", type=float, default=0.0, help="the vehicle's delay before each event"
    )
    args = parser.parse_args(argv)
    if args.event_latency_ms < 0:
        parser.error(f"--event-latency-ms must be >= 0, got {args.event_latency_ms:g}")
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_serve, args.http_bind, args.event_latency_ms / 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
