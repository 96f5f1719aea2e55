"""`sovd-hub demo`: a hub on SQLite in a data directory with users and a simulated fleet.

Everything it creates lives in the data directory (default `.sovd-hub/`), so
running it again reuses the database, the JWT secret, the demo password and
the vehicle tokens. They are secrets or personal data (password hashes,
sessions, the audit trail), so every file the demo creates is its owner's
only (0600, a directory 0700: the process runs with umask 077), and files
an older run left are made so. The simulated fleet runs as its own process, as a real
fleet would, speaking gRPC to the hub.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import trio

from api import WeakPassword, check_new_password
from hub import ConfigError
from sovd_hub.node import open_node
from sovd_hub.options import add_node_options, node_configs
from sovd_hub.runtime import configure_logging, run
from storage import Database, StorageConfig, UserExistsError, migrate, open_database

DEMO_USERS = (("admin", "admin"), ("engineer", "engineer"))
_MODELS = (("Volkswagen", "ID.4", 2023), ("BMW", "i4", 2024), ("Volvo", "EX30", 2025))


def add_demo_parser(commands: Any) -> None:
    """Register `demo` on the CLI's subcommands."""
    demo = commands.add_parser("demo", help="run a demo hub with a simulated fleet")
    demo.add_argument("--vehicles", type=int, default=10, help="simulated vehicles (default 10)")
    demo.add_argument("--data-dir", type=Path, default=Path(".sovd-hub"), help="default .sovd-hub")
    demo.add_argument("--event-latency-ms", type=int, default=20, help="vehicle answer latency")
    demo.add_argument("--log-level", default="WARNING", help="WARNING (default), INFO, DEBUG")
    add_node_options(demo)
    demo.set_defaults(handler=run_demo)


def demo_vin(number: int) -> str:
    """The VIN of simulated vehicle `number` (valid: 17 characters, no I, O or Q)."""
    return f"1SVDHB{number:011d}"


def run_demo(args: argparse.Namespace) -> int:
    """The `demo` command."""
    if not 1 <= args.vehicles <= 10_000:
        raise ConfigError(f"--vehicles must be between 1 and 10000, got {args.vehicles}")
    data_dir: Path = args.data_dir
    os.umask(0o077)  # the database, its -wal/-shm files, the secrets: the owner's only
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    _make_private(data_dir)
    if args.database_url is None and "SOVD_HUB_DATABASE_URL" not in os.environ:
        args.database_url = f"sqlite:///{(data_dir / 'hub.db').resolve()}"
    secret = os.environ.get("SOVD_HUB_JWT_SECRET") or _persistent_secret(data_dir / "jwt-secret")
    hub_config, api_config, storage = node_configs(args, jwt_secret=secret)
    configure_logging(args.log_level.upper())
    migrate(storage.database_url)
    password = os.environ.get("SOVD_HUB_DEMO_PASSWORD") or _persistent_secret(
        data_dir / "demo-password", nbytes=9
    )
    for username, _ in DEMO_USERS:
        try:
            check_new_password(password, username, "SOVD_HUB_DEMO_PASSWORD")
        except WeakPassword as exc:
            raise ConfigError(f"{exc} ({exc.rule})") from None

    async def demo(stop: trio.Event) -> None:
        fleet_file = await _prepare(storage, password, args.vehicles, data_dir)
        async with (
            open_node(hub_config, api_config, storage) as (addresses, _),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_run_fleet, fleet_file, addresses.grpc_port, args.event_latency_ms)
            _print_banner(
                addresses.http_url,
                hub_config.grpc_host,
                addresses.grpc_port,
                args.vehicles,
                password,
            )
            await stop.wait()
            nursery.cancel_scope.cancel()

    run(demo)
    return 0


def _make_private(data_dir: Path) -> None:
    """Files an earlier demo left in `data_dir` (perhaps 0644): the owner's only."""
    for name in ("hub.db", "hub.db-wal", "hub.db-shm", "hub.db-journal", "fleet.json"):
        path = data_dir / name
        if path.exists():
            path.chmod(0o600)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, created (or truncated) 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def _persistent_secret(path: Path, nbytes: int = 48) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    _write_private(path, value + "\n")
    return value


async def _prepare(storage: StorageConfig, password: str, vehicles: int, data_dir: Path) -> Path:
    """Demo users (password reset to `password`) and vehicles; returns the fleet file."""
    fleet_file = data_dir / "fleet.json"
    known: dict[str, str] = {}
    if fleet_file.exists():
        known = {v["vin"]: v["token"] for v in json.loads(fleet_file.read_text())["vehicles"]}
    async with open_database(storage.database_url) as db:
        for username, role in DEMO_USERS:
            try:
                await db.accounts.add_user(username, password, role)
            except UserExistsError:
                await db.accounts.set_password(username, password)
        fleet = [
            {"vin": vin, "token": await _vehicle_token(db, vin, n, known)}
            for n, vin in ((n, demo_vin(n)) for n in range(1, vehicles + 1))
        ]
    _write_private(fleet_file, json.dumps({"vehicles": fleet}, indent=1))
    return fleet_file


async def _vehicle_token(db: Database, vin: str, number: int, known: dict[str, str]) -> str:
    if vin in known and await db.vehicles.get_vehicle(vin) is not None:
        return known[vin]
    if await db.vehicles.get_vehicle(vin) is not None:
        return await db.vehicles.rotate_vehicle_token(vin)
    make, model, year = _MODELS[number % len(_MODELS)]
    _, token = await db.vehicles.add_vehicle(
        vin, make=make, model=model, year=year, metadata={"simulated": True}
    )
    return token


async def _run_fleet(fleet_file: Path, grpc_port: int, latency_ms: int) -> None:
    # The same command line as `bench.stack`'s fleets: the simulator's CLI is the contract
    # (the composition root runs bench as a process, never imports it).
    command = [
        sys.executable,
        "-m",
        "bench.simulator",
        "--hub",
        f"127.0.0.1:{grpc_port}",
        "--fleet-file",
        str(fleet_file),
        "--event-latency-ms",
        str(latency_ms),
    ]
    await trio.run_process(command, check=False)


def _print_banner(
    http_url: str, grpc_host: str, grpc_port: int, vehicles: int, password: str
) -> None:
    base = http_url.rstrip("/")
    login = f'{{"username": "engineer", "password": "{password}"}}'
    submit = f'{{"vin": "{demo_vin(1)}", "command": "ReadDTC", "params": {{"ecuAddress": "0x10"}}}}'
    json_header = "-H 'Content-Type: application/json'"
    print(
        f"""
sovd-hub demo is running (Ctrl-C to stop)
  console     {base}/           log in as engineer (or admin) with the password below
  REST API    {base}/api/v1     OpenAPI: {base}/openapi.json  Swagger UI: {base}/docs
  WebSocket   {base.replace("http", "ws", 1)}/api/v1/ws
  gRPC        {grpc_host}:{grpc_port}   {vehicles} simulated vehicles, e.g. {demo_vin(1)}
  users       admin, engineer   password: {password}

Try it:
  TOKEN=$(curl -s {base}/api/v1/auth/login {json_header} -d '{login}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s {base}/api/v1/commands -H "Authorization: Bearer $TOKEN" {json_header} \\
    -d '{submit}'
""",
        flush=True,
    )
