"""The cheapest hub that does the same vehicle-link work: pure asyncio, grpclib, nothing else.

    python -m bench.baseline_hub --port P

It serves `VehicleLink.Connect`: requires a bearer token, reads `Hello`,
answers `Welcome`, then answers every vehicle `Heartbeat` with a `Heartbeat`
(as the real hub does), in the handler itself: no trio, no actor, no
database, no HTTP. `bench.scenarios.baseline` measures the real hub's cost
per message against it. Prints `ready <port>` once it listens; SIGTERM or
SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from collections.abc import Sequence

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from proto import HubMessage, VehicleLinkBase, VehicleMessage, Welcome

HEARTBEAT_INTERVAL_MS = 3_600_000  # told to the vehicles; this hub never times a link out


class BaselineGateway(VehicleLinkBase):
    """`VehicleLink.Connect`, answered inline in the handler."""

    async def Connect(  # noqa: N802 (the gRPC name)
        self, stream: Stream[VehicleMessage, HubMessage]
    ) -> None:
        """Admit any vehicle with a token; echo its heartbeats until it ends the stream."""
        value = stream.metadata.get("authorization") if stream.metadata else None
        if not isinstance(value, str) or not value.lower().startswith("bearer "):
            raise GRPCError(Status.UNAUTHENTICATED, "missing vehicle token")
        first = await stream.recv_message()
        if first is None or first.WhichOneof("kind") != "hello":
            raise GRPCError(Status.INVALID_ARGUMENT, "the first message must be Hello")
        welcome = Welcome(session_id=uuid.uuid4().hex, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS)
        await stream.send_message(HubMessage(welcome=welcome))
        async for message in stream:
            if message.WhichOneof("kind") == "heartbeat":
                await stream.send_message(HubMessage(heartbeat=message.heartbeat))


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = Server([BaselineGateway()])
    await server.start(host, port)
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_hub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
