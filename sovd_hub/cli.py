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
from collections.abc import Sequence

import trio

from api import WeakPassword, check_new_password
from hub import ConfigError, HubError
from sovd_hub.audit_cli import add_audit_parser
from sovd_hub.demo import add_demo_parser
from sovd_hub.diagnosis import diagnosis_tasks
from sovd_hub.node import open_node
from sovd_hub.options import (
    add_node_options,
    add_storage_options,
    audit_chain,
    node_configs,
    run_async,
    storage_config,
)
from sovd_hub.runtime import configure_logging, run
from storage import StorageError, check_schema, migrate, open_database

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for bad input or configuration)."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except (HubError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


def build_parser() -> argparse.ArgumentParser:
    """The `sovd-hub` parser; each command's `handler` runs it and returns the exit code."""
    parser = argparse.ArgumentParser(prog="sovd-hub", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a hub node")
    add_node_options(serve)
    serve.add_argument("--log-level", default="INFO", help="INFO (default), DEBUG, WARNING")
    serve.set_defaults(handler=_serve)

    migrate_cmd = commands.add_parser("migrate", help="upgrade the database schema")
    add_storage_options(migrate_cmd)
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
    add_storage_options(user_add)
    user_add.set_defaults(handler=_user_add)

    vehicle = commands.add_parser("vehicle", help="the vehicle registry").add_subparsers(
        required=True, metavar="ACTION"
    )
    vehicle_add = vehicle.add_parser("add", help="register a vehicle and print its token once")
    vehicle_add.add_argument("vin")
    vehicle_add.add_argument("--make", required=True)
    vehicle_add.add_argument("--model", required=True)
    vehicle_add.add_argument("--year", required=True, type=int)
    add_storage_options(vehicle_add)
    vehicle_add.set_defaults(handler=_vehicle_add)

    add_audit_parser(commands)  # `audit verify`
    add_demo_parser(commands)  # the demo's own options live with it
    return parser


def _serve(args: argparse.Namespace) -> int:
    hub_config, api_config, storage = node_configs(args)
    configure_logging(args.log_level.upper())
    check_schema(storage.database_url)

    # Diagnosis modes of the bench (off unless their setting is in the environment).
    diagnostics = diagnosis_tasks()

    async def serve(stop: trio.Event) -> None:
        async with trio.open_nursery() as nursery:
            for task in diagnostics:
                nursery.start_soon(task)
            async with open_node(hub_config, api_config, storage):
                await stop.wait()
            nursery.cancel_scope.cancel()

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
