"""The processes of a benchmark: a database, a hub, simulated fleets, each measured from outside.

The hub runs as `python -m sovd_hub serve` in its own process, the fleet as
`python -m bench.simulator` processes, both on ports chosen here. The bench
process itself provisions the database through `storage` (it needs
trio hosted on asyncio: run it under `bench.__main__`).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio
import trio
from sqlalchemy.engine import make_url

from bench.phases import phase
from bench.simulator import VehicleSpec
from hub import run_asyncio
from storage import NewVehicle, migrate, open_database

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password"
DEFAULT_POSTGRES = os.environ.get(
    "SOVD_HUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_REDIS = os.environ.get("SOVD_HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    """A TCP port that was free a moment ago (the hub binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_open_files(vehicles: int, spare: int = 300) -> None:
    """Fail early, saying why, when one process may not hold `vehicles` connections.

    Each connected vehicle is one open file in the hub (and in its simulator
    process); the hard limit (`ulimit -Hn`) cannot be raised without privileges.
    `spare` covers the hub's `grpc_reserved_files` (256) and the bench's own files.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    if vehicles + spare > hard:
        raise SystemExit(
            f"{vehicles} vehicles need about {vehicles + spare} open files in the hub process, "
            f"but this machine allows {hard} per process (ulimit -Hn); use --vehicles "
            f"{hard - spare} or fewer"
        )


def bench_vin(number: int) -> str:
    """VIN of benchmark vehicle `number` (valid VIN characters)."""
    return f"9BENCH{number:011d}"


@asynccontextmanager
async def open_bench_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh, migrated database (`postgres` or `sqlite`); dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'hub.db'}"
        await trio.to_thread.run_sync(migrate, url)
        yield url
        return
    if kind != "postgres":
        raise ValueError(f"database must be postgres or sqlite, got {kind!r}")
    name = f"sovd_bench_{uuid.uuid4().hex[:12]}"
    server = make_url(DEFAULT_POSTGRES)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    url = server.set(database=name).render_as_string(hide_password=False)
    await run_asyncio(_admin, admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        await trio.to_thread.run_sync(migrate, url)
        yield url
    finally:
        with trio.CancelScope(shield=True):
            await run_asyncio(
                _admin,
                admin_dsn,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                f'DROP DATABASE IF EXISTS "{name}"',
            )


@asynccontextmanager
async def open_bench_redis(enabled: bool) -> AsyncIterator[dict[str, str]]:
    """The hub settings of a scale-out node on Redis (a key prefix of this run's own, whose
    keys are deleted afterwards); no settings when not `enabled`."""
    if not enabled:
        yield {}
        return
    prefix = f"sovd-bench-{uuid.uuid4().hex[:12]}:"
    try:
        yield {"SOVD_HUB_REDIS_URL": DEFAULT_REDIS, "SOVD_HUB_REDIS_KEY_PREFIX": prefix}
    finally:
        with trio.CancelScope(shield=True):
            await run_asyncio(_delete_keys, prefix)


async def _delete_keys(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(DEFAULT_REDIS)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def provision(url: str, vehicles: int) -> list[VehicleSpec]:
    """The bench operator (engineer) and `vehicles` registered vehicles with their tokens."""
    specs: list[VehicleSpec] = []
    async with open_database(url, bcrypt_rounds=4) as db:
        await db.accounts.add_user(BENCH_USER, BENCH_PASSWORD, "engineer")
        for first in range(1, vehicles + 1, 5000):
            chunk = [
                NewVehicle(bench_vin(n), "Bench", "Sim", 2026)
                for n in range(first, min(first + 5000, vehicles + 1))
            ]
            added = await db.vehicles.add_vehicles(chunk)
            specs += [VehicleSpec(vehicle.vin, token) for vehicle, token in added]
    return specs


@dataclass
class HubProcess:
    """A running hub: `sovd-hub serve`, or the baseline hub (`open_baseline_hub_process`)."""

    process: trio.Process
    http_url: str
    grpc_port: int
    output: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    @property
    def pid(self) -> int:
        """The hub's process id."""
        return self.process.pid


@asynccontextmanager
async def open_hub_process(
    database_url: str, settings: dict[str, str] | None = None
) -> AsyncIterator[HubProcess]:
    """Run `sovd-hub serve` on free ports until the context exits (then SIGTERM)."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "SOVD_HUB_JWT_SECRET": secrets.token_urlsafe(48),
        "SOVD_HUB_BCRYPT_ROUNDS": "4",
        # The load generators are one user at hundreds of commands per second:
        # the per-user submission limit would measure itself, not the hub.
        "SOVD_HUB_SUBMIT_RATE_PER_S": "1000000",
        "SOVD_HUB_SUBMIT_BURST": "1000000",
        # Each of them follows all its commands on one WebSocket, so the per-socket
        # message rate and subscription cap (set for one person's share) are lifted too.
        "SOVD_HUB_WS_MESSAGES_PER_S": "1000000",
        "SOVD_HUB_WS_MESSAGE_BURST": "1000000",
        "SOVD_HUB_WS_MAX_SUBSCRIPTIONS": "1000000",
        # The whole simulated fleet connects from 127.0.0.1.
        "SOVD_HUB_GRPC_MAX_CONNECTIONS_PER_ADDRESS": "0",
        **(settings or {}),
    }
    command = [
        sys.executable, "-m", "sovd_hub", "serve", "--database-url", database_url,
        "--http-bind", f"127.0.0.1:{http_port}", "--grpc-bind", f"127.0.0.1:{grpc_port}",
        "--log-level", "WARNING",
    ]  # fmt: skip
    async with _open_server(command, env, http_port, grpc_port, grace_s=30) as hub:
        yield hub


@asynccontextmanager
async def open_baseline_hub_process(heartbeat_interval_s: float) -> AsyncIterator[HubProcess]:
    """Run `bench.baseline_hub` (pure asyncio + grpclib: the floor of `hold` and `reconnect`)
    on free ports until the context exits (then SIGTERM).

    It tells the vehicles `heartbeat_interval_s` in Welcome, as the hub does,
    and answers `/health/live` with its count of connected vehicles, so
    `connected_vehicles` and `wait_http` work on it as on the hub.
    """
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "bench.baseline_hub", "--port", str(grpc_port),
        "--http-port", str(http_port),
        "--heartbeat-interval-ms", str(int(heartbeat_interval_s * 1000)),
    ]  # fmt: skip
    async with _open_server(command, dict(os.environ), http_port, grpc_port, grace_s=10) as hub:
        yield hub


@asynccontextmanager
async def _open_server(
    command: list[str], env: dict[str, str], http_port: int, grpc_port: int, grace_s: float
) -> AsyncIterator[HubProcess]:
    """Run `command` until the context exits, once its `/health/live` answers on `http_port`."""
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(_run_process, command, env, subprocess.PIPE)
        hub = HubProcess(process, f"http://127.0.0.1:{http_port}", grpc_port)
        nursery.start_soon(_keep_tail, process, hub.output)
        try:
            await wait_http(hub.http_url, process)
            yield hub
        finally:
            await stop_process(process, grace_s)
            nursery.cancel_scope.cancel()


async def _run_process(
    command: list[str],
    env: dict[str, str],
    stdout: int | None,
    *,
    task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED,
) -> None:
    await trio.run_process(
        command, env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
        check=False, task_status=task_status,
    )  # fmt: skip


async def _keep_tail(process: trio.Process, tail: deque[str]) -> None:
    assert process.stdout is not None
    buffer = b""
    async for chunk in process.stdout:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        tail.extend(line.decode(errors="replace") for line in lines)


async def wait_http(base_url: str, process: trio.Process, timeout_s: float = 60) -> None:
    """Return once `GET /health/live` answers; fail if the process exits first."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        with trio.fail_after(timeout_s):
            while process.poll() is None:
                try:
                    if (await http.get("/health/live")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)
    raise RuntimeError(f"the process exited with {process.returncode} before serving HTTP")


@dataclass
class NoopProcess:
    """A running `bench.noop_server`."""

    process: trio.Process
    http_url: str

    @property
    def pid(self) -> int:
        """The no-op server's process id."""
        return self.process.pid


@asynccontextmanager
async def open_noop_process(options: Sequence[str] = ()) -> AsyncIterator[NoopProcess]:
    """Run `bench.noop_server *options` on a free port until the context exits (then SIGTERM)."""
    port = free_port()
    command = [
        sys.executable, "-m", "bench.noop_server", "--http-bind", f"127.0.0.1:{port}", *options
    ]  # fmt: skip
    run = partial(
        trio.run_process, command,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(run)
        try:
            noop = NoopProcess(process, f"http://127.0.0.1:{port}")
            await wait_http(noop.http_url, process)
            yield noop
        finally:
            await stop_process(process, grace_s=5)


async def stop_process(process: trio.Process, grace_s: float = 30) -> None:
    """SIGTERM, then SIGKILL after `grace_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with trio.CancelScope(shield=True):
        with trio.move_on_after(grace_s):
            await process.wait()
        if process.poll() is None:
            process.kill()
            await process.wait()


async def connected_vehicles(http: httpx.AsyncClient) -> int:
    """How many vehicles the hub has registered (from `/health/live`: no database query).

    Asked again, once, on a connection that broke: a keep-alive connection left
    idle past the hub's keep-alive timeout (hypercorn: 5 s) may be closed just
    as the request goes out, and the GET changes nothing.
    """
    try:
        response = await http.get("/health/live")
    except httpx.TransportError:
        response = await http.get("/health/live")
    answer = response.json()
    count: int = answer.get("connected_vehicles", 0)
    return count


async def wait_connected(hub: HubProcess, count: int, timeout_s: float) -> float:
    """Seconds until the hub has `count` vehicles registered (polling every 50 ms)."""
    started = trio.current_time()
    progress = {"vehicles_wanted": count, "vehicles_connected": 0}
    async with httpx.AsyncClient(base_url=hub.http_url, timeout=30) as http:
        with phase("connect", timeout_s, progress):
            while True:  # polling: the hub has no push for this
                progress["vehicles_connected"] = await connected_vehicles(http)
                if progress["vehicles_connected"] >= count:
                    break
                await trio.sleep(0.05)
    return trio.current_time() - started


@dataclass
class Fleet:
    """Simulator processes, each running part of the fleet."""

    processes: list[trio.Process]

    @property
    def pids(self) -> list[int]:
        """Their process ids."""
        return [p.pid for p in self.processes]

    def signal_all(self, signum: int) -> None:
        """Send `signum` to every simulator process."""
        for process in self.processes:
            process.send_signal(signum)


@asynccontextmanager
async def open_fleet(
    specs: Sequence[VehicleSpec],
    grpc_port: int,
    workdir: Path,
    *,
    processes: int = 2,
    event_latency_ms: float = 0.0,
    extra: Sequence[str] = (),
) -> AsyncIterator[Fleet]:
    """Run the vehicles of `specs` spread over `processes` simulator processes."""
    commands = []
    for index in range(processes):
        part = specs[index::processes]
        if not part:
            continue
        fleet_file = workdir / f"fleet-{index}.json"
        fleet_file.write_text(
            json.dumps({"vehicles": [{"vin": s.vin, "token": s.token} for s in part]})
        )
        commands.append(
            [
                sys.executable,
                "-m",
                "bench.simulator",
                "--hub",
                f"127.0.0.1:{grpc_port}",
                "--fleet-file",
                str(fleet_file),
                "--event-latency-ms",
                str(event_latency_ms),
                *extra,
            ]
        )
    async with trio.open_nursery() as nursery:
        started = [
            await nursery.start(_run_process, command, dict(os.environ), None)
            for command in commands
        ]
        try:
            yield Fleet(started)
        finally:
            for process in started:
                await stop_process(process, grace_s=10)
