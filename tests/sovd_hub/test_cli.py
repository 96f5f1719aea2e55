"""The `sovd-hub` command line, run as a real process against a real database."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import trio
from grpclib.const import Status

from bench.simulator import Behaviour, LinkLost, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import run_asyncio
from storage import NewVehicle, open_database

VIN = "WVWZZZ1JZXW000007"
SECRET = "cli-test-secret-" + "z" * 40


async def sovd_hub(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run `sovd-hub ARGS` to completion."""
    return await trio.run_process(
        [sys.executable, "-m", "sovd_hub", *args],
        stdin=stdin,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


async def test_migrate_user_and_vehicle_add(database_url: str, aio_loop: object) -> None:
    # database_url is already migrated: migrate again is a no-op that says so.
    migrated = await sovd_hub("migrate", "--database-url", database_url)
    assert migrated.returncode == 0 and b"up to date" in migrated.stdout

    user = await sovd_hub(
        "user", "add", "alice", "--role", "engineer", "--password-stdin",
        "--database-url", database_url, stdin=b"long enough password\n",
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    again = await sovd_hub(
        "user", "add", "alice", "--role", "engineer", "--password-stdin",
        "--database-url", database_url, stdin=b"long enough password\n",
    )  # fmt: skip
    assert again.returncode == 2 and b"alice" in again.stderr and b"exists" in again.stderr
    short = await sovd_hub(
        "user", "add", "bob", "--role", "viewer", "--password-stdin",
        "--database-url", database_url, stdin=b"short\n",
    )  # fmt: skip
    assert short.returncode == 2
    assert short.stderr.startswith(b"error: password has 5 characters; at least 12 are required")
    assert short.stderr.endswith(b"(password_too_short)\n")
    common = await sovd_hub(
        "user", "add", "bob", "--role", "viewer", "--password-stdin",
        "--database-url", database_url, stdin=b"Password1234!\n",
    )  # fmt: skip
    assert common.returncode == 2
    assert common.stderr.startswith(b"error: password is one of the most common passwords")
    assert common.stderr.endswith(b"(password_common)\n")

    vehicle = await sovd_hub(
        "vehicle", "add", VIN, "--make", "VW", "--model", "ID.3", "--year", "2022",
        "--database-url", database_url,
    )  # fmt: skip
    assert vehicle.returncode == 0, vehicle.stderr
    token = vehicle.stdout.decode().splitlines()[-1]
    async with open_database(database_url) as db:
        assert await db.accounts.authenticate_user("alice", "long enough password") is not None
        credentials = await db.vehicles.find_vehicle(VIN)
    assert credentials is not None
    from hub import verify_vehicle_token

    assert verify_vehicle_token(token, credentials.token_hash)


async def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = await sovd_hub("serve", "--database-url", url, env={"SOVD_HUB_JWT_SECRET": SECRET})
    assert result.returncode == 2
    assert b"run `sovd-hub migrate`" in result.stderr


def _file_modes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in directory.iterdir() if p.is_file()}


async def test_migrate_and_serve_create_a_sqlite_database_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    """It holds password hashes, sessions and the audit trail; SQLite's -wal/-shm files
    take its mode. A file that exists keeps the mode its operator gave it."""
    migrated = tmp_path / "migrated.db"
    result = await sovd_hub("migrate", "--database-url", f"sqlite:///{migrated}")
    assert result.returncode == 0, result.stderr
    served = tmp_path / "served.db"  # refused (not migrated), but SQLite made the file
    env = {"SOVD_HUB_JWT_SECRET": SECRET}
    result = await sovd_hub("serve", "--database-url", f"sqlite:///{served}", env=env)
    assert result.returncode == 2
    assert _file_modes(tmp_path) == {
        "migrated.db": 0o600,
        "served.db": 0o600,
    }
    migrated.chmod(0o640)
    assert (await sovd_hub("migrate", "--database-url", f"sqlite:///{migrated}")).returncode == 0
    assert migrated.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"SOVD_HUB_JWT_SECRET": ""}, b"jwt_secret must be at least 32 bytes"),
        (["--http-bind", "localhost"], {}, b"--http-bind must look like HOST:PORT"),
        ([], {"SOVD_HUB_GRPC_PORT": "http"}, b"grpc_port (from environment SOVD_HUB_GRPC_PORT)"),
        (
            [],
            {"SOVD_HUB_MAX_IN_FLIGHT_PER_VEHICLE": "0"},
            b"max_in_flight_per_vehicle must be a finite number greater",
        ),
    ],
)
async def test_bad_configuration_is_refused_with_the_setting_named(
    tmp_path: Path, args: list[str], env: dict[str, str], message: bytes
) -> None:
    result = await sovd_hub(
        "serve", "--database-url", f"sqlite:///{tmp_path}/x.db", *args,
        env={"SOVD_HUB_JWT_SECRET": SECRET, **env},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr


async def test_bad_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("[hub]\nheartbeat_interval = 5\n")
    result = await sovd_hub("serve", "--config", str(config), env={"SOVD_HUB_JWT_SECRET": SECRET})
    assert result.returncode == 2
    assert b"unknown setting 'heartbeat_interval' in config file" in result.stderr


async def _start_serve(nursery: trio.Nursery, database_url: str) -> tuple[trio.Process, str, int]:
    command = [
        sys.executable, "-m", "sovd_hub", "serve", "--database-url", database_url,
        "--http-bind", "127.0.0.1:0", "--grpc-bind", "127.0.0.1:0",
    ]  # fmt: skip
    env = {**os.environ, "SOVD_HUB_JWT_SECRET": SECRET, "SOVD_HUB_SHUTDOWN_GRACE_S": "3"}
    process: trio.Process = await nursery.start(
        functools.partial(trio.run_process, command, stdout=subprocess.PIPE, env=env, check=False)
    )
    assert process.stdout is not None
    output = b""
    with trio.fail_after(30):
        while (
            found := re.search(rb'"http": "(http://[^"]+)", "grpc_port": (\d+)', output)
        ) is None:
            chunk = await process.stdout.receive_some()
            assert chunk, output
            output += chunk
    nursery.start_soon(_drain, process)
    return process, found.group(1).decode(), int(found.group(2))


async def _drain(process: trio.Process) -> None:
    assert process.stdout is not None
    async for _ in process.stdout:
        pass


async def _run_vehicle(vehicle: SimulatedVehicle, endings: dict[str, Exception]) -> None:
    """Run `vehicle`; how its session ended (LinkRefused / LinkLost) goes into `endings`."""
    try:
        await run_asyncio(vehicle.run)
    except (LinkRefused, LinkLost) as exc:
        endings[vehicle.spec.vin] = exc


async def _connect_silent_fleet(
    database_url: str,
    grpc_port: int,
    nursery: trio.Nursery,
    count: int,
    endings: dict[str, Exception],
) -> list[SimulatedVehicle]:
    """`count` registered vehicles that take commands and never answer, all connected."""
    async with open_database(database_url, bcrypt_rounds=4) as db:
        await db.accounts.add_user("eve", "long enough password", "engineer")
        added = await db.vehicles.add_vehicles(
            [NewVehicle(f"WVWZZZ1JZXW{n:06d}", "VW", "ID.3", 2022) for n in range(count)]
        )
    vehicles = [
        SimulatedVehicle(VehicleSpec(v.vin, token), "127.0.0.1", grpc_port, Behaviour(silent=True))
        for v, token in added
    ]
    for vehicle in vehicles:
        nursery.start_soon(_run_vehicle, vehicle, endings)
    with trio.fail_after(30):
        for vehicle in vehicles:
            await run_asyncio(vehicle.connected.wait)
    return vehicles


async def _submit_and_wait_dispatched(http_url: str, vins: list[str]) -> list[uuid.UUID]:
    async with httpx.AsyncClient(base_url=http_url) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"username": "eve", "password": "long enough password"}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        ids = []
        for vin in vins:
            body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
            submitted = await http.post("/api/v1/commands", json=body, headers=headers)
            assert submitted.status_code == 202, submitted.text
            ids.append(uuid.UUID(submitted.json()["id"]))
        for command_id in ids:
            for _ in range(100):  # until the hub has sent it to the vehicle
                answer = await http.get(f"/api/v1/commands/{command_id}", headers=headers)
                if answer.json()["status"] == "dispatched":
                    break
                await trio.sleep(0.05)
    return ids


@pytest.mark.slow
async def test_sigterm_ends_200_links_with_unavailable_and_interrupts_commands(
    database_url: str, aio_loop: object
) -> None:
    async with trio.open_nursery() as nursery:
        process, http_url, grpc_port = await _start_serve(nursery, database_url)
        endings: dict[str, Exception] = {}
        vehicles = await _connect_silent_fleet(database_url, grpc_port, nursery, 200, endings)
        busy = vehicles[::10]
        command_ids = await _submit_and_wait_dispatched(http_url, [v.spec.vin for v in busy])
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await process.wait() == 0
    kinds = {
        (type(r).__name__, getattr(r, "status", None), getattr(r, "message", None))
        for r in (endings.get(v.spec.vin) for v in vehicles)
    }
    assert kinds == {("LinkRefused", Status.UNAVAILABLE, "the hub is shutting down")}
    assert all(v.commands_received == 1 for v in busy)
    async with open_database(database_url) as db:
        rows = [await db.commands.get_command(command_id) for command_id in command_ids]
        audits = [
            await db.audit.list_audit(target=f"command:{command_id}") for command_id in command_ids
        ]
    assert {(r.status.value, r.error) for r in rows if r} == {
        ("interrupted", "link lost: the hub is shutting down")
    }
    assert all(
        [a.action for a in audit] == ["command.submitted", "command.interrupted"]
        for audit in audits
    )


@pytest.mark.slow
async def test_a_restart_marks_commands_a_crash_left_unfinished(
    database_url: str, aio_loop: object
) -> None:
    async with trio.open_nursery() as nursery:
        process, http_url, grpc_port = await _start_serve(nursery, database_url)
        [vehicle] = await _connect_silent_fleet(database_url, grpc_port, nursery, 1, {})
        [command_id] = await _submit_and_wait_dispatched(http_url, [vehicle.spec.vin])
        process.kill()  # no chance to record anything
        await process.wait()
        restarted, _, _ = await _start_serve(nursery, database_url)
        async with open_database(database_url) as db:
            row = await db.commands.get_command(command_id)
            audit = [a.action for a in await db.audit.list_audit(target=f"command:{command_id}")]
        restarted.send_signal(signal.SIGTERM)
        nursery.cancel_scope.cancel()
    assert row is not None and row.status.value == "interrupted"
    assert row.error == "the hub restarted while the command ran"
    assert audit == ["command.submitted", "command.interrupted"]
