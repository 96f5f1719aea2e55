"""`sovd-hub`: the process entry point; wires storage, hub and API together.

sovd-hub serve     run a hub node (configured by flags, environment, TOML file)
sovd-hub migrate   bring the database schema to the latest revision
sovd-hub user add  create an operator account
sovd-hub vehicle add  register a vehicle and print its token (once)
sovd-hub audit verify  check the audit trail's hash chains (exit 1: broken)
sovd-hub demo      a self-contained demo: SQLite, users, a simulated fleet
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import trio

from api.config import ApiConfig
from api.passwords import WeakPassword, check_new_password
from api.server import open_node
from hub import ConfigError, HubConfig, HubError, load_config, parse_bind, read_config_file
from hub.runtime import configure_logging, run
from storage import StorageConfig, StorageError, check_schema, migrate, open_database

DEFAULT_HTTP_BIND = "127.0.0.1:8080"
DEFAULT_GRPC_BIND = "127.0.0.1:50051"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for bad input or configuration)."""
    args = _parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except (HubError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sovd-hub", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a hub node")
    _add_node_options(serve)
    serve.add_argument("--log-level", default="INFO", help="INFO (default), DEBUG, WARNING")
    serve.set_defaults(handler=_serve)

    migrate_cmd = commands.add_parser("migrate", help="upgrade the database schema")
    _add_storage_options(migrate_cmd)
    migrate_cmd.set_defaults(handler=_migrate)

    user = commands.add_parser("user", help="operator accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    user_add = user.add_parser("add", help="create an operator account")
    user_add.add_argument("username")
    user_add.add_argument("--role", required=True, choices=["viewer", "engineer", "admin"])
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _add_storage_options(user_add)
    user_add.set_defaults(handler=_user_add)

    vehicle = commands.add_parser("vehicle", help="the vehicle registry").add_subparsers(
        required=True, metavar="ACTION"
    )
    vehicle_add = vehicle.add_parser("add", help="register a vehicle and print its token once")
    vehicle_add.add_argument("vin")
    vehicle_add.add_argument("--make", required=True)
    vehicle_add.add_argument("--model", required=True)
    vehicle_add.add_argument("--year", required=True, type=int)
    _add_storage_options(vehicle_add)
    vehicle_add.set_defaults(handler=_vehicle_add)

    from api.audit_cli import add_audit_parser  # `audit verify`
    from api.demo import add_demo_parser  # the demo's own options live with it

    add_audit_parser(commands)
    add_demo_parser(commands)
    return parser


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file ([hub], [api], [storage] tables)")
    parser.add_argument(
        "--database-url", help="default sqlite:///sovd-hub.db (SOVD_HUB_DATABASE_URL)"
    )


def _add_node_options(parser: argparse.ArgumentParser) -> None:
    _add_storage_options(parser)
    parser.add_argument(
        "--http-bind", help=f"HOST:PORT for REST/WebSocket, default {DEFAULT_HTTP_BIND}"
    )
    parser.add_argument("--grpc-bind", help=f"HOST:PORT for vehicles, default {DEFAULT_GRPC_BIND}")
    parser.add_argument(
        "--redis-url", help="redis://host:6379/0 shared by nodes; default none (SOVD_HUB_REDIS_URL)"
    )


def config_file(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The TOML file named by `--config` or `SOVD_HUB_CONFIG`, as tables."""
    path = args.config or (
        Path(os.environ["SOVD_HUB_CONFIG"]) if "SOVD_HUB_CONFIG" in os.environ else None
    )
    if path is None:
        return {}
    data = read_config_file(path)
    unknown = set(data) - {"hub", "api", "storage"}
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown table(s) {sorted(unknown)}; use [hub], [api], [storage]"
        )
    return {k: dict(v) for k, v in data.items()}


def storage_config(args: argparse.Namespace) -> StorageConfig:
    """Storage settings from `--database-url` > environment > file > default."""
    return load_config(
        StorageConfig,
        file_values=config_file(args).get("storage"),
        database_url=args.database_url,
        redis_url=getattr(args, "redis_url", None),  # only `serve` and `demo` take --redis-url
    )


def node_configs(
    args: argparse.Namespace, *, jwt_secret: str | None = None
) -> tuple[HubConfig, ApiConfig, StorageConfig]:
    """All three settings of a node from its command-line arguments and the environment."""
    file = config_file(args)
    grpc = parse_bind("--grpc-bind", args.grpc_bind) if args.grpc_bind else (None, None)
    http = parse_bind("--http-bind", args.http_bind) if args.http_bind else (None, None)
    hub_config = load_config(
        HubConfig, file_values=file.get("hub"), grpc_host=grpc[0], grpc_port=grpc[1]
    )
    api_config = load_config(
        ApiConfig,
        file_values=file.get("api"),
        http_host=http[0],
        http_port=http[1],
        jwt_secret=jwt_secret,
    )
    return hub_config, api_config, storage_config(args)


def audit_chain(args: argparse.Namespace) -> str:
    """The audit chain a command's audit events extend: this host's node's (`node_id`)."""
    return load_config(HubConfig, file_values=config_file(args).get("hub")).node_id


def run_async(fn: Callable[[], Awaitable[None]]) -> None:
    """Run `fn` in the hub's runtime (trio + asyncio bridge); it ignores stop signals."""

    async def main(_stop: trio.Event) -> None:
        await fn()

    run(main)


def _serve(args: argparse.Namespace) -> int:
    hub_config, api_config, storage = node_configs(args)
    configure_logging(args.log_level.upper())
    check_schema(storage.database_url)

    async def serve(stop: trio.Event) -> None:
        async with open_node(hub_config, api_config, storage):
            await stop.wait()

    run(serve)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    url = storage_config(args).database_url
    migrate(url)
    print(f"database schema is up to date ({url.split('@')[-1]})")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    url = storage_config(args).database_url
    password = _read_password(args.password_stdin, args.username)
    check_schema(url)

    async def add() -> None:
        async with open_database(url, audit_chain=audit_chain(args)) as db:
            await db.accounts.add_user(args.username, password, args.role)

    run_async(add)
    print(f"user {args.username} added with role {args.role}")
    return 0


def _read_password(from_stdin: bool, username: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif "SOVD_HUB_PASSWORD" in os.environ:
        password = os.environ["SOVD_HUB_PASSWORD"]
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    try:
        check_new_password(password, username)
    except WeakPassword as exc:
        raise ConfigError(f"{exc} ({exc.rule})") from None
    return password


def _vehicle_add(args: argparse.Namespace) -> int:
    url = storage_config(args).database_url
    check_schema(url)
    tokens: list[str] = []

    async def add() -> None:
        async with open_database(url, audit_chain=audit_chain(args)) as db:
            _, token = await db.vehicles.add_vehicle(
                args.vin, make=args.make, model=args.model, year=args.year
            )
            tokens.append(token)

    run_async(add)
    print(f"vehicle {args.vin} registered; its token (shown only now):")
    print(tokens[0])
    return 0
