"""The kill test: nothing a hub answered `202` for is lost when the hub is SIGKILLed.

A `sovd-hub serve` process on a fresh Postgres database serves a simulated
fleet (a `bench.simulator` process) while operators submit a few hundred
commands at once. Mid-stream the hub is killed with SIGKILL, then started
again on the same database with the same `node_id`. Afterwards every command
that got a `202` exists with its "command.submitted" audit event, none is
left non-final (running ones were interrupted by the restart, waiting ones
were delivered or expired), every final status has its audit event, and
`sovd-hub audit verify` accepts the audit chain. Submissions that failed with
a connection error may or may not have been stored: nobody was told `202`.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx
import pytest
import trio

from bench.stack import (
    BENCH_PASSWORD,
    BENCH_USER,
    HubProcess,
    free_port,
    open_fleet,
    provision,
    wait_connected,
    wait_http,
)
from hub import run_asyncio
from sovd_hub import RESTART_REASON
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
    with_database_name,
)

CONNECTED = 12  # vehicles in the simulated fleet
OFFLINE = 3  # registered vehicles that never connect: their commands wait, then expire
COMMANDS = 300
SUBMITTERS = 24  # concurrent HTTP clients
KILL_AFTER = 120  # 202s received before the SIGKILL
OFFLINE_TTL_S = 8  # long enough to outlive the restart, short enough for the test
NODE_ID = "kill-test-node"
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "expired", "interrupted")
# What the operator side sees when the hub dies under it.
CONNECTION_ERRORS = (httpx.TransportError,)


@pytest.fixture
def kill_database_url() -> Iterator[str]:
    """A fresh, empty (unmigrated) Postgres database of this test's own, dropped afterwards."""
    server_url = postgres_server_url()
    name = f"sovd_kill_{uuid.uuid4().hex[:12]}"
    create_postgres_database(server_url, name)
    try:
        yield with_database_name(server_url, name)
    finally:
        drop_postgres_database(server_url, name)


def _hub_env(settings: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **settings}


@asynccontextmanager
async def hub_process(
    url: str, http_port: int, grpc_port: int, env: dict[str, str], log: BinaryIO
) -> AsyncIterator[HubProcess]:
    """`sovd-hub serve` on these ports; SIGTERM (then SIGKILL) when the context exits."""
    command = [
        sys.executable, "-m", "sovd_hub", "serve", "--database-url", url,
        "--http-bind", f"127.0.0.1:{http_port}", "--grpc-bind", f"127.0.0.1:{grpc_port}",
        "--log-level", "WARNING",
    ]  # fmt: skip
    async with trio.open_nursery() as nursery:
        run = functools.partial(
            trio.run_process, command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
        process: trio.Process = await nursery.start(run)
        hub = HubProcess(process, f"http://127.0.0.1:{http_port}", grpc_port)
        try:
            await wait_http(hub.http_url, process, timeout_s=30)
            yield hub
        finally:
            with trio.CancelScope(shield=True):
                if process.poll() is None:
                    process.terminate()
                    with trio.move_on_after(15):
                        await process.wait()
                if process.poll() is None:
                    process.kill()
                    await process.wait()


@dataclass
class Outcomes:
    """What the operators were told."""

    accepted: set[str] = field(default_factory=set)  # ids answered 202
    accepted_after_restart: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # other status -> count
    unknown: int = 0  # connection errors: no answer, the command may or may not exist
    unexpected: list[str] = field(default_factory=list)  # answers that are bugs


async def submit_all(
    http: httpx.AsyncClient,
    token: str,
    bodies: list[dict[str, object]],
    outcomes: Outcomes,
    kill_at: tuple[int, trio.Event],
    killed: trio.Event,
    restarted: trio.Event,
) -> None:
    """Submit `bodies` from `SUBMITTERS` clients; after a connection error a client waits
    for the restart, so the commands left are submitted to the new process.

    `kill_at`: once that many 202s have come, its event is set (time to kill the hub)."""
    headers = {"Authorization": f"Bearer {token}"}
    queue = iter(bodies)

    async def submitter() -> None:
        for body in queue:
            try:
                response = await http.post("/api/v1/commands", json=body, headers=headers)
            except CONNECTION_ERRORS as exc:
                outcomes.unknown += 1
                if not killed.is_set():
                    outcomes.unexpected.append(f"connection error before the kill: {exc!r}")
                await restarted.wait()
                continue
            if response.status_code == 202:
                outcomes.accepted.add(response.json()["id"])
                outcomes.accepted_after_restart += restarted.is_set()
                if len(outcomes.accepted) >= kill_at[0]:
                    kill_at[1].set()
            elif response.status_code in (409, 503):  # vehicle offline, mailbox full
                outcomes.refused[response.status_code] = (
                    outcomes.refused.get(response.status_code, 0) + 1
                )
            else:
                outcomes.unexpected.append(f"{response.status_code} {response.text}")

    async with trio.open_nursery() as nursery:
        for _ in range(SUBMITTERS):
            nursery.start_soon(submitter)


def command_bodies(connected: list[str], offline: list[str]) -> list[dict[str, object]]:
    """A mix over the fleet: ReadDTC and ReadDataByID, one in three allowed to wait (`ttl_s`)."""
    bodies: list[dict[str, object]] = []
    vins = itertools.cycle(connected)
    for n in range(COMMANDS):
        body: dict[str, object] = (
            {"vin": next(vins), "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
            if n % 2
            else {
                "vin": next(vins),
                "command": "ReadDataByID",
                "params": {"ecuAddress": "0x10", "dataId": "0x010D"},
            }
        )
        if n % 3 == 0:
            body["ttl_s"] = 30
        bodies.append(body)
    return bodies


async def stored_state(url: str) -> tuple[dict[str, tuple[str, str | None]], dict[str, set[str]]]:
    """Every command's (status, error), and every command's audit actions, read with asyncpg."""

    async def read() -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            commands = await conn.fetch("SELECT id::text AS id, status, error FROM commands")
            audits = await conn.fetch(
                "SELECT target, action FROM audit_events WHERE target LIKE 'command:%'"
            )
            return commands, audits
        finally:
            await conn.close()

    commands, audits = await run_asyncio(read)
    actions: dict[str, set[str]] = {}
    for row in audits:
        actions.setdefault(row["target"].removeprefix("command:"), set()).add(row["action"])
    return {row["id"]: (row["status"], row["error"]) for row in commands}, actions


async def wait_all_final(url: str, timeout_s: float) -> dict[str, tuple[str, str | None]]:
    """Poll until no command is active (running ones end, waiting ones are delivered or
    expire); fail naming the ones still active after `timeout_s`."""
    commands: dict[str, tuple[str, str | None]] = {}
    with trio.move_on_after(timeout_s):
        while True:
            commands, _ = await stored_state(url)
            if all(status in FINAL for status, _ in commands.values()):
                return commands
            await trio.sleep(0.25)
    active = {k: v for k, v in commands.items() if v[0] not in FINAL}
    raise AssertionError(f"{len(active)} commands still active after {timeout_s} s: {active}")


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.slow
async def test_a_sigkilled_hub_loses_no_accepted_command(
    aio_loop: object, kill_database_url: str, tmp_path: Path
) -> None:
    url = kill_database_url
    migrated = await trio.run_process(
        [sys.executable, "-m", "sovd_hub", "migrate", "--database-url", url],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    specs = await provision(url, CONNECTED + OFFLINE)
    fleet, offline = specs[:CONNECTED], [s.vin for s in specs[CONNECTED:]]
    http_port, grpc_port = free_port(), free_port()
    env = _hub_env(
        {
            "SOVD_HUB_NODE_ID": NODE_ID,
            "SOVD_HUB_JWT_SECRET": secrets.token_urlsafe(48),  # the same for both runs
            "SOVD_HUB_BCRYPT_ROUNDS": "4",
            "SOVD_HUB_SUBMIT_RATE_PER_S": "1000000",  # one user at hundreds of commands/s
            "SOVD_HUB_SUBMIT_BURST": "1000000",
            "SOVD_HUB_EXPIRY_SWEEP_S": "0.2",
            "SOVD_HUB_DEFAULT_COMMAND_TIMEOUT_S": "10",
            "SOVD_HUB_SHUTDOWN_GRACE_S": "2",
        }
    )
    log_path = tmp_path / "hub.log"
    outcomes = Outcomes()
    killed, restarted = trio.Event(), trio.Event()
    with log_path.open("ab") as log:
        async with (
            hub_process(url, http_port, grpc_port, env, log) as first,
            httpx.AsyncClient(base_url=first.http_url, timeout=10) as http,
            open_fleet(fleet, grpc_port, tmp_path, processes=1, event_latency_ms=50),
        ):
            await wait_connected(first, CONNECTED, timeout_s=20)
            login = await http.post(
                "/api/v1/auth/login", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            waiting = []  # for vehicles that never connect: kept across the crash, then expired
            for vin in offline:
                body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
                response = await http.post(
                    "/api/v1/commands",
                    json={**body, "ttl_s": OFFLINE_TTL_S},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 202, response.text
                waiting.append(response.json()["id"])
            outcomes.accepted.update(waiting)

            load_done, enough = trio.Event(), trio.Event()

            async def kill_mid_stream() -> None:
                await enough.wait()
                first.process.kill()  # SIGKILL: no shutdown code runs
                killed.set()
                await first.process.wait()
                async with hub_process(url, http_port, grpc_port, env, log) as second:
                    restarted.set()
                    await load_done.wait()
                    await wait_connected(second, CONNECTED, timeout_s=20)
                    await wait_all_final(url, timeout_s=20)

            bodies = command_bodies([s.vin for s in fleet], offline)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_mid_stream)
                kill_at = (len(waiting) + KILL_AFTER, enough)
                await submit_all(http, token, bodies, outcomes, kill_at, killed, restarted)
                if not killed.is_set():
                    nursery.cancel_scope.cancel()
                load_done.set()
    assert killed.is_set(), f"the load ended before the kill: {outcomes}"
    assert not outcomes.unexpected, outcomes.unexpected[:5]

    commands, actions = await stored_state(url)
    lost = outcomes.accepted - commands.keys()
    assert not lost, f"{len(lost)} commands answered 202 are not stored: {sorted(lost)[:5]}"
    active = {k: v for k, v in commands.items() if v[0] not in FINAL}
    assert not active, f"{len(active)} commands left active: {active}"
    for command_id, (status, _) in commands.items():
        assert {"command.submitted", f"command.{status}"} <= actions.get(command_id, set()), (
            command_id,
            status,
            actions.get(command_id),
        )
    interrupted = [k for k, (s, e) in commands.items() if (s, e) == ("interrupted", RESTART_REASON)]
    assert interrupted, f"the kill found no command in flight: {outcomes}\n{tail(log_path)}"
    assert {commands[k][0] for k in waiting} == {"expired"}
    assert outcomes.accepted_after_restart, f"no command was accepted after the restart: {outcomes}"

    verified = await trio.run_process(
        [sys.executable, "-m", "sovd_hub", "audit", "verify", "--database-url", url],
        env=env,  # the hub's own settings (its keys), as an operator would run it
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    report = (verified.stdout + verified.stderr).decode()
    assert verified.returncode == 0, report
    assert f"chain {NODE_ID}: intact" in report, report
