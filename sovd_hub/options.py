"""What every `sovd-hub` command shares: its storage and node options, the settings built from them.

Settings come from the command line > environment (`SOVD_HUB_...`) > the
TOML file (`--config` or `SOVD_HUB_CONFIG`) > default. `run_async` runs a
one-shot command (`user add`, `audit verify`...) in the hub's runtime.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from api import ApiConfig
from hub import ConfigError, HubConfig, load_config, parse_bind, read_config_file
from sovd_hub.runtime import run
from storage import StorageConfig

__all__ = [
    "DEFAULT_GRPC_BIND",
    "DEFAULT_HTTP_BIND",
    "add_node_options",
    "add_storage_options",
    "audit_chain",
    "config_file",
    "node_configs",
    "run_async",
    "storage_config",
]

DEFAULT_HTTP_BIND = "127.0.0.1:8080"
DEFAULT_GRPC_BIND = "127.0.0.1:50051"


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """`--config` and `--database-url`: what every command touching the database takes."""
    parser.add_argument("--config", type=Path, help="TOML file ([hub], [api], [storage] tables)")
    parser.add_argument(
        "--database-url", help="default sqlite:///sovd-hub.db (SOVD_HUB_DATABASE_URL)"
    )


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """The storage options plus the binds and `--redis-url`: what a running node takes."""
    add_storage_options(parser)
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
