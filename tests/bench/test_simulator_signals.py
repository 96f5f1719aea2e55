"""The simulator CLI's SIGUSR1: every link broken at once, every vehicle back after its backoff.

A minimal grpclib hub (Hello -> Welcome, no heartbeats) counts sessions per
VIN; `python -m bench.simulator` runs as a real process, as the `reconnect`
scenario runs it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from grpclib.server import Server, Stream

from proto import VehicleLinkBase
from proto import vehicle_link_pb2 as pb

VINS = ("SIGTEST0000000001", "SIGTEST0000000002", "SIGTEST0000000003")


class _CountingHub(VehicleLinkBase):
    def __init__(self) -> None:
        self.sessions: Counter[str] = Counter()
        self.changed = asyncio.Event()

    async def Connect(self, stream: Stream[pb.VehicleMessage, pb.HubMessage]) -> None:  # noqa: N802 (the gRPC name)
        hello = await stream.recv_message()
        assert hello is not None and hello.WhichOneof("kind") == "hello"
        welcome = pb.Welcome(session_id=f"s{sum(self.sessions.values())}", heartbeat_interval_ms=0)
        await stream.send_message(pb.HubMessage(welcome=welcome))
        self.sessions[hello.hello.vin] += 1
        self.changed.set()
        while await stream.recv_message() is not None:
            pass

    async def wait_sessions(self, per_vin: int, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not all(self.sessions[vin] >= per_vin for vin in VINS):
                self.changed.clear()
                await self.changed.wait()


async def _outage(tmp_path: Path) -> tuple[Counter[str], int | None]:
    hub = _CountingHub()
    server = Server([hub])
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps({"vehicles": [{"vin": v, "token": "t"} for v in VINS]}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.simulator", "--hub", f"127.0.0.1:{port}",
        "--fleet-file", str(fleet),
    )  # fmt: skip
    try:
        await hub.wait_sessions(1, timeout_s=20)
        process.send_signal(signal.SIGUSR1)
        await hub.wait_sessions(2, timeout_s=20)  # backoff 0.25-0.5 s, then back
        still_running = process.returncode
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await process.wait()
        return hub.sessions, still_running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        server.close()
        await server.wait_closed()


@pytest.mark.slow
def test_sigusr1_breaks_every_link_and_the_fleet_reconnects(tmp_path: Path) -> None:
    sessions, returncode_after_outage = asyncio.run(_outage(tmp_path))

    assert returncode_after_outage is None  # the signal did not end the process
    assert sessions == Counter({vin: 2 for vin in VINS})
