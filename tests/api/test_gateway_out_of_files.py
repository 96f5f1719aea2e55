"""The gateway out of open files (EMFILE): accepting pauses, is logged once per interval, resumes.

A `sovd-hub serve` process runs with its open-file limit lowered to
`FILE_LIMIT`, soft and hard (so the hub cannot raise it), and with
`grpc_max_connections` above that limit, so that the cap does not hide
EMFILE. More raw TCP connections than the limit allows are opened to the gRPC
port and held; the hub must then neither spin nor flood its log, and once they
close a vehicle must connect and run a command end to end through REST.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from bench.simulator import Behaviour, LinkLost, LinkRefused, SimulatedVehicle, VehicleSpec
from bench.stack import BENCH_PASSWORD, BENCH_USER, free_port, provision, stop_process, wait_http
from hub import run_asyncio

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the hub's CPU time from /proc"
)

#: The hub's open-file limit: its own files (about 20) and ~140 gateway connections.
FILE_LIMIT = 160
#: Hostile connections: well past what the limit leaves for connections.
HOSTILE = FILE_LIMIT + 60
LOG_INTERVAL_S = 1.0
#: How long the hub is held out of files while its CPU time and log are watched.
WINDOW_S = 3.0
#: CPU seconds the hub may use over WINDOW_S: a few accept() attempts a second cost
#: milliseconds; asyncio's own accept loop spun a whole core here.
MAX_CPU_S = 0.6
#: Lines that report a failed accept(): ours, and asyncio's (the accept loop before).
ACCEPT_FAILURES = ("gateway.accept_paused", "socket.accept() out of system resource")
SETTINGS = {
    "SOVD_HUB_GRPC_MAX_CONNECTIONS": str(10 * FILE_LIMIT),
    "SOVD_HUB_GRPC_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "SOVD_HUB_GRPC_LOG_INTERVAL_S": str(LOG_INTERVAL_S),
    "SOVD_HUB_GRPC_ACCEPT_PAUSE_S": "0.1",
    # Longer than the window: the connections the hub did accept hold their files meanwhile.
    "SOVD_HUB_HANDSHAKE_TIMEOUT_S": "8",
    "SOVD_HUB_HELLO_TIMEOUT_S": "8",
}
#: Lowers the limit, then becomes the hub (same pid). Not `preexec_fn`: it runs between fork
#: and exec of this threaded test process, where a lock held by another thread deadlocks it.
LAUNCHER = (
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FILE_LIMIT}, {FILE_LIMIT})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'sovd_hub', *sys.argv[1:]])"
)


class HubOutput:
    """Every line the hub process writes (JSON log lines), as it writes them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = trio.Event()

    async def read(self, process: trio.Process) -> None:
        assert process.stdout is not None
        buffer = b""
        async for chunk in process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.lines += [line.decode(errors="replace") for line in lines]
            self.changed.set()
            self.changed = trio.Event()

    def accept_failures(self) -> list[str]:
        return [line for line in self.lines if any(s in line for s in ACCEPT_FAILURES)]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run_vehicle(vehicle: SimulatedVehicle) -> None:
    # The hub stopping at the end ends it; a vehicle that never connected fails its wait.
    with contextlib.suppress(LinkLost, LinkRefused):
        await run_asyncio(vehicle.run)


async def _connect(nursery: trio.Nursery, spec: VehicleSpec, port: int) -> SimulatedVehicle:
    vehicle = SimulatedVehicle(spec, "127.0.0.1", port, Behaviour())
    nursery.start_soon(_run_vehicle, vehicle)
    with trio.fail_after(10):
        await run_asyncio(vehicle.connected.wait)
    return vehicle


async def _command_succeeds(http: httpx.AsyncClient, headers: dict[str, str], vin: str) -> None:
    body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
    submitted = await http.post("/api/v1/commands", json=body, headers=headers)
    assert submitted.status_code == 202, submitted.text
    with trio.fail_after(10):
        while True:  # polling over HTTP: nothing else to wait on in this process
            command = await http.get(f"/api/v1/commands/{submitted.json()['id']}", headers=headers)
            if command.json()["status"] not in ("pending", "dispatched", "running"):
                break
            await trio.sleep(0.05)
    assert command.json()["status"] == "succeeded", command.text


async def _open_hostile(port: int) -> list[trio.SocketStream]:
    # The kernel completes each connection (the backlog is 4096) whether the hub accepts or not.
    return [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(HOSTILE)]


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database: the backend does not matter here."""
    shutil.copyfile(sqlite_template, tmp_path / "hub.db")
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.mark.slow
async def test_out_of_files_the_hub_pauses_accepting_quietly_and_resumes(
    database_url: str, aio_loop: object
) -> None:
    first, second = await provision(database_url, 2)
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-c", LAUNCHER, "serve", "--database-url", database_url,
        "--http-bind", f"127.0.0.1:{http_port}", "--grpc-bind", f"127.0.0.1:{grpc_port}",
        "--log-level", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, **SETTINGS, "SOVD_HUB_JWT_SECRET": secrets.token_urlsafe(48)}
    output = HubOutput()
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            functools.partial(
                trio.run_process, command, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, check=False,
            )
        )  # fmt: skip
        nursery.start_soon(output.read, process)
        http_url = f"http://127.0.0.1:{http_port}"
        await wait_http(http_url, process)
        async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
            login = await http.post(
                "/api/v1/auth/login", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            admitted = await _connect(nursery, first, grpc_port)

            hostile = await _open_hostile(grpc_port)
            with trio.fail_after(10):
                while not output.accept_failures():
                    await output.changed.wait()
            started, cpu_before = trio.current_time(), _cpu_s(process.pid)
            await trio.sleep(WINDOW_S)
            cpu = _cpu_s(process.pid) - cpu_before
            held_s = trio.current_time() - started
            failures = output.accept_failures()
            assert process.poll() is None, output.lines[-20:]

            for stream in hostile:
                await stream.aclose()
            # Accepting resumes by itself: a new vehicle connects, both run a command.
            await _connect(nursery, second, grpc_port)
            await _command_succeeds(http, headers, second.vin)
            await _command_succeeds(http, headers, first.vin)
            assert admitted.sessions == 1  # its link lasted through it all
            statistics = (await http.get("/health/live")).json()
        await stop_process(process, grace_s=10)
        nursery.cancel_scope.cancel()

    # The first failure is logged at once, then one line per interval: not one per attempt.
    assert 2 <= len(failures) <= held_s / LOG_INTERVAL_S + 2, failures[:5]
    paused = [json.loads(line) for line in failures]
    assert all(line["event"] == "gateway.accept_paused" for line in paused), failures[:5]
    assert paused[0]["error"] == "EMFILE" and paused[0]["count"] == 1, paused[0]
    # Each line counts the attempts since the one before: one per 0.1 s pause, so at most 11.
    assert all(1 <= line["count"] <= 11 for line in paused), paused
    assert sum(line["count"] for line in paused) >= 2 * len(paused), paused
    assert statistics["gateway_accept_pauses"] >= sum(line["count"] for line in paused)
    assert cpu <= MAX_CPU_S, f"the hub used {cpu:.2f} s of CPU in {held_s:.1f} s out of files"
