"""The cheapest hub that does the same vehicle-link work: pure asyncio, grpclib, nothing else.

    python -m bench.baseline_hub --port P [--http-port Q] [--heartbeat-interval-ms MS]

It serves `VehicleLink.Connect`: requires a bearer token, reads `Hello`,
answers `Welcome` (telling the vehicle the heartbeat interval), then answers
every vehicle `Heartbeat` with a `Heartbeat` (as the real hub does), in the
handler itself: no trio, no actor, no database. `bench.scenarios.baseline`
measures the real hub's cost per message against it; `hold` and `reconnect`
measure it holding the same fleet as their floor.

It is a floor, so it leaves out what the hub must also do: it admits any
token without looking it up, times no silent link out, writes no journal.
Whatever it leaves out makes it cheaper, so a target this server misses the
hub cannot meet on this stack.

With `--http-port` it also answers `GET /health/live` with
`{"status": "ok", "connected_vehicles": N}`, as the hub's liveness check
does, so `bench.stack.connected_vehicles` reads it unchanged: N counts each
VIN once, from its Welcome until its stream ends, as the hub's registry
does. That responder is a few lines of HTTP/1.1 on `asyncio.start_server`,
bounded in request size, open connections and idle time.

Prints `ready <port>` once it listens; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import uuid
from collections.abc import Sequence

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from proto import HubMessage, VehicleLinkBase, VehicleMessage, Welcome

#: Told to the vehicles by default: this hub never times a link out.
HEARTBEAT_INTERVAL_MS = 3_600_000
#: Connections queued for accept, as the hub's (`hub.gateway.LISTEN_BACKLOG`); grpclib's
#: default of 100 drops the SYNs of a fleet connecting at once, and each dropped one costs
#: its vehicle a 1 s retransmission: the floor would measure TCP's backoff, not its own work.
LISTEN_BACKLOG = 4096
#: The longest HTTP request head answered; a longer one ends its connection.
MAX_REQUEST_HEAD_BYTES = 8192
#: HTTP connections served at once; more are closed unanswered.
MAX_HTTP_CONNECTIONS = 16
#: An HTTP connection that sends no request for this long is closed.
HTTP_IDLE_S = 60.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class Registry:
    """Each connected VIN's session, as the hub's registry keeps them.

    A VIN counts once; the end of a link that a newer one of the same VIN
    replaced leaves the newer one's entry alone.
    """

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[str, str] = {}

    def register(self, vin: str, session_id: str) -> None:
        """`session_id` is now `vin`'s link."""
        self._sessions[vin] = session_id

    def unregister(self, vin: str, session_id: str) -> None:
        """`session_id` ended: `vin` is no longer connected, unless a newer session holds it."""
        if self._sessions.get(vin) == session_id:
            del self._sessions[vin]

    @property
    def connected(self) -> int:
        """How many vehicles are connected."""
        return len(self._sessions)


class BaselineGateway(VehicleLinkBase):
    """`VehicleLink.Connect`, answered inline in the handler."""

    def __init__(self, registry: Registry, heartbeat_interval_ms: int) -> None:
        self._registry = registry
        self._heartbeat_interval_ms = heartbeat_interval_ms

    async def Connect(  # noqa: N802 (the gRPC name)
        self, stream: Stream[VehicleMessage, HubMessage]
    ) -> None:
        """Admit any vehicle with a token; echo its heartbeats until it ends the stream.

        A lost connection cancels the handler (grpclib); the vehicle is then unregistered.
        """
        value = stream.metadata.get("authorization") if stream.metadata else None
        if not isinstance(value, str) or not value.lower().startswith("bearer "):
            raise GRPCError(Status.UNAUTHENTICATED, "missing vehicle token")
        first = await stream.recv_message()
        if first is None or first.WhichOneof("kind") != "hello":
            raise GRPCError(Status.INVALID_ARGUMENT, "the first message must be Hello")
        vin, session_id = first.hello.vin, uuid.uuid4().hex
        welcome = Welcome(session_id=session_id, heartbeat_interval_ms=self._heartbeat_interval_ms)
        await stream.send_message(HubMessage(welcome=welcome))
        self._registry.register(vin, session_id)
        try:
            async for message in stream:
                if message.WhichOneof("kind") == "heartbeat":
                    await stream.send_message(HubMessage(heartbeat=message.heartbeat))
        finally:
            self._registry.unregister(vin, session_id)


def health_response(head: bytes, connected: int) -> tuple[bytes, bool]:
    """The answer to one HTTP/1.x request head, and whether its connection may stay open.

    `GET /health/live` is answered with the count; another path is a 404,
    another method a 405, a head that is not HTTP/1.x a 400. A connection
    stays open only for HTTP/1.1 without `connection: close` and without a
    body (this responder reads none, so it could not find the next request).
    """
    request_line, _, header_block = head.partition(b"\r\n")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _response(400, {"error": "expected an HTTP/1.x request line"}, close=True), False
    method, target, version = parts
    headers = header_block.lower()
    keep_open = version == b"HTTP/1.1" and not any(
        word in headers for word in (b"connection: close", b"content-length", b"transfer-encoding")
    )
    body: dict[str, object]
    if method != b"GET":
        status, body = 405, {"error": "only GET is answered"}
    elif target.partition(b"?")[0] != b"/health/live":
        status, body = 404, {"error": "only /health/live is answered"}
    else:
        status, body = 200, {"status": "ok", "connected_vehicles": connected}
    return _response(status, body, close=not keep_open), keep_open


def _response(status: int, body: dict[str, object], *, close: bool) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "content-type: application/json",
        f"content-length: {len(payload)}",
    ]
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class HealthResponder:
    """`GET /health/live` over HTTP/1.1, one `asyncio.start_server` callback per connection."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._open = 0

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer the connection's requests until it closes, errs or idles `HTTP_IDLE_S`."""
        if self._open >= MAX_HTTP_CONNECTIONS:
            writer.close()
            return
        self._open += 1
        try:
            keep_open = True
            while keep_open:
                async with asyncio.timeout(HTTP_IDLE_S):
                    head = await reader.readuntil(b"\r\n\r\n")
                response, keep_open = health_response(head, self._registry.connected)
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass  # the client left, sent too long a head, or nothing for a while: close
        finally:
            self._open -= 1
            writer.close()


async def serve(host: str, port: int, http_port: int | None, heartbeat_interval_ms: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    registry = Registry()
    server = Server([BaselineGateway(registry, heartbeat_interval_ms)])
    await server.start(host, port, backlog=LISTEN_BACKLOG)
    health = None
    if http_port is not None:
        responder = HealthResponder(registry)
        health = await asyncio.start_server(
            responder.serve_connection, host, http_port, limit=MAX_REQUEST_HEAD_BYTES
        )
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    if health is not None:
        health.close()
    server.close()
    await server.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_hub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the gRPC port")
    parser.add_argument(
        "--http-port", type=int, default=None, help="also answer GET /health/live on this port"
    )
    parser.add_argument(
        "--heartbeat-interval-ms",
        type=int,
        default=HEARTBEAT_INTERVAL_MS,
        help="the heartbeat interval told to the vehicles in Welcome",
    )
    args = parser.parse_args(argv)
    if args.heartbeat_interval_ms < 0:
        parser.error(f"--heartbeat-interval-ms must be >= 0, got {args.heartbeat_interval_ms}")
    asyncio.run(serve(args.host, args.port, args.http_port, args.heartbeat_interval_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
