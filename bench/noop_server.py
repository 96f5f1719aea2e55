"""A no-op server of the hub's operator API: the bare edge the `commands` scenario compares against.

    python -m bench.noop_server --http-bind 127.0.0.1:8081

Quart-Trio on Hypercorn, as the hub serves it, with the same routes and
shapes and nothing behind them: no database, no gRPC, no vehicles. Login
always succeeds; a submitted command is answered 202 at once; subscribing to
it over the WebSocket immediately yields the three events a simulated vehicle
answers ReadDTC with (two `progress`, one final `result`, the simulator's own
bodies) and the `succeeded` status frame. The same load generator measures
it in the same invocation, so the hub's figures can be given as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Response, request, websocket
from quart_trio import QuartTrio

from bench.vehicle_model import VehicleModel


@dataclass(frozen=True)
class _Request:
    method: str
    path: str


#: (kind, status, body, final) of each event a simulated vehicle sends for ReadDTC 0x10.
READ_DTC_EVENTS = [
    (e.kind.value, e.status, e.body, e.final)
    for e in VehicleModel("NOOP").handle(_Request("GET", "/components/engine/faults"))
]


def create_app() -> QuartTrio:
    """The no-op application."""
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
        command_id = uuid.uuid4()
        base = f"/api/v1/commands/{command_id}"
        body = {
            "id": str(command_id),
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
        while True:
            message = orjson.loads(await websocket.receive())
            if message.get("type") == "subscribe":
                await _answer_subscription(str(message.get("topic")), message.get("from_seq", 0))
            elif message.get("type") == "ping":
                await _send({"type": "pong"})
            else:
                await _send({"type": "error", "code": "unknown_type", "message": "unsupported"})

    return app


async def _answer_subscription(topic: str, from_seq: int) -> None:
    await _send({"type": "subscribed", "topic": topic, "from_seq": from_seq})
    for seq, (kind, status, body, final) in enumerate(READ_DTC_EVENTS):
        if seq >= from_seq:
            await _send(
                {
                    "type": "event",
                    "topic": topic,
                    "seq": seq,
                    "kind": kind,
                    "status": status,
                    "body": body,
                    "final": final,
                }
            )
    at = datetime.now(UTC).isoformat()
    await _send({"type": "status", "topic": topic, "status": "succeeded", "error": None, "at": at})


async def _send(frame: dict[str, Any]) -> None:
    await websocket.send(orjson.dumps(frame).decode())


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


async def _serve(bind: str) -> None:
    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None
    await serve(create_app(), config)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m bench.noop_server", description=__doc__)
    parser.add_argument("--http-bind", default="127.0.0.1:8081", help="HOST:PORT")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_serve, args.http_bind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
