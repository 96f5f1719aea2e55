"""Configuration: one frozen dataclass per subsystem, validated on construction.

Values come from, in order of precedence: keyword overrides (the CLI), the
environment (`SOVD_HUB_<FIELD>`, e.g. `SOVD_HUB_GRPC_PORT`), a TOML file
(one table per subsystem: `[hub]`, `[api]`, `[storage]`), then the defaults.
`load_config` does this for any of the subsystem dataclasses. A list setting
(`tuple[str, ...]`, e.g. `cors_allow_origins`) is a TOML list, or one
comma-separated string in the environment or on the command line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import ConfigError

ENV_PREFIX = "SOVD_HUB_"
#: The longest `journal_max_wait_ms` allowed: it adds up to that much to each 202.
MAX_JOURNAL_WAIT_MS = 100.0
C = TypeVar("C")
#: HTTP/2's bounds of a flow-control window (RFC 9113 6.9.2; grpclib refuses less than 65535).
MIN_FLOW_WINDOW_BYTES = 2**16 - 1
MAX_FLOW_WINDOW_BYTES = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class HubConfig:
    """The vehicle side: gRPC gateway, actors, command deadlines, shutdown."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    heartbeat_interval_s: float = 10.0
    hello_timeout_s: float = 10.0
    #: A TCP connection whose HTTP/2 preface and first Hello are not admitted within this is
    #: closed by the hub (idle or dribbling connections hold a file each). At least
    #: hello_timeout_s, so a late Hello on an open stream still hears DEADLINE_EXCEEDED.
    handshake_timeout_s: float = 15.0
    #: Open gateway connections at most (0: the soft open-file limit minus grpc_reserved_files);
    #: past it a new connection is closed at once.
    grpc_max_connections: int = 0
    #: Open gateway connections per source address at most (0: no cap); NAT'd fleets share one.
    grpc_max_connections_per_address: int = 1000
    #: Open files kept free, when grpc_max_connections is derived, for the API's connections,
    #: the database and Redis pools, logs and certificates.
    grpc_reserved_files: int = 256
    #: Out of files (EMFILE/ENFILE) or memory on accept: the gateway stops accepting this long.
    grpc_accept_pause_s: float = 0.1
    #: Refused connections, handshake timeouts and accept pauses are logged at most once per
    #: interval each (with the count since the previous line).
    grpc_log_interval_s: float = 10.0
    mailbox_size: int = 64
    #: Commands run here lately kept in memory with their events, so a WebSocket subscribe
    #: replays them without a database read (`hub.recent`; 0: always read).
    recent_commands: int = 10_000
    #: Admission control (`hub.load`): commands this node's actors hold unfinished, in all
    #: and per submitter; a new one beyond is refused, 503 with Retry-After (0: no bound).
    max_open_commands: int = 2_000
    max_open_commands_per_user: int = 500
    max_in_flight_per_vehicle: int = 4
    default_command_timeout_s: float = 30.0
    max_command_timeout_s: float = 600.0
    cancel_grace_s: float = 5.0
    shutdown_grace_s: float = 5.0
    max_event_bytes: int = 65536
    #: The largest first message (`Hello`) the gateway reads; larger is refused on its declared
    #: length, before the hub buffers it.
    max_hello_bytes: int = 4096
    #: HTTP/2 flow-control window of each vehicle connection and of its stream: what a peer may
    #: push before the hub reads it (65535, HTTP/2's default, up to 2**31 - 1).
    grpc_flow_window_bytes: int = 65535
    #: Concurrent streams one vehicle connection may open (a vehicle needs one).
    grpc_max_streams_per_connection: int = 2
    #: The largest decoded request header list (metadata) a vehicle connection may send.
    grpc_max_header_list_bytes: int = 8192
    #: Refused vehicle connections are audited as one row per source address, claimed vehicle
    #: and window of this length, with their count.
    refusal_audit_window_s: float = 60.0
    max_vehicle_messages_per_s: float = 200.0
    actor_max_restarts: int = 3
    actor_restart_window_s: float = 60.0
    max_command_ttl_s: float = 7 * 24 * 3600.0
    expiry_sweep_s: float = 1.0
    #: Group commit: records (commands + events + status changes) per transaction at most;
    #: 1 commits each record call alone (per-request commits).
    journal_max_batch_records: int = 1000
    #: Group commit: how long a batch may wait, after its first record, for more (0: no wait).
    #: 2 ms: at 40-100 commands/s about 10 % less CPU per command for a few ms more latency
    #: (`python -m bench commands`, README "Settings").
    journal_max_wait_ms: float = 2.0
    #: Database outage: records of running commands (events + status changes) held in memory
    #: until the database answers again; past this, newer ones are dropped, counted and their
    #: commands marked.
    journal_buffer_records: int = 100_000
    #: The longest one journal transaction may take before it counts as an outage (a backstop
    #: for the database's own timeouts; keep it above database_command_timeout_s).
    journal_commit_timeout_s: float = 30.0
    #: During an outage the journal retries after 0.1 s, doubling up to this.
    journal_retry_max_s: float = 5.0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    #: This node's name: the commands it holds, and its audit chain, are stamped with it.
    #: Keep it across restarts (crash recovery interrupts only this node's commands) and
    #: unique among the nodes sharing a database. Default: the host name.
    node_id: str = dataclasses.field(default_factory=socket.gethostname)
    #: Scale-out (with redis_url): how long a vehicle's lease and a node's liveness key live
    #: in Redis without a refresh; a node that stops refreshing loses its vehicles after this.
    lease_ttl_s: float = 15.0
    #: Scale-out: how often a node refreshes its liveness key and all its leases (one batch).
    lease_refresh_s: float = 5.0
    #: Scale-out: how long after its liveness key expired a node counts as dead, and the
    #: others interrupt its running commands and re-route its undelivered ones.
    node_dead_after_s: float = 5.0
    #: Scale-out: how often each node looks for dead nodes to clean up after.
    janitor_interval_s: float = 5.0

    def __post_init__(self) -> None:
        check_node_id(self.node_id)
        for name in ("lease_ttl_s", "lease_refresh_s", "janitor_interval_s"):
            check_positive(name, getattr(self, name))
        if not math.isfinite(self.node_dead_after_s) or self.node_dead_after_s < 0:
            raise ConfigError(
                f"node_dead_after_s must be a finite number of seconds >= 0, "
                f"got {self.node_dead_after_s}"
            )
        if self.lease_refresh_s * 2 > self.lease_ttl_s:
            raise ConfigError(
                f"lease_refresh_s ({self.lease_refresh_s:g}) must be at most half of lease_ttl_s "
                f"({self.lease_ttl_s:g}), so one late refresh does not lose every lease; "
                "lower SOVD_HUB_LEASE_REFRESH_S or raise SOVD_HUB_LEASE_TTL_S"
            )
        check_port("grpc_port", self.grpc_port)
        for name in (
            "heartbeat_interval_s",
            "hello_timeout_s",
            "handshake_timeout_s",
            "grpc_accept_pause_s",
            "grpc_log_interval_s",
            "default_command_timeout_s",
            "max_command_timeout_s",
            "cancel_grace_s",
            "shutdown_grace_s",
            "journal_buffer_records",
            "journal_commit_timeout_s",
            "journal_retry_max_s",
            "refusal_audit_window_s",
        ):
            check_positive(name, getattr(self, name))
        for name in (
            "mailbox_size",
            "max_in_flight_per_vehicle",
            "max_event_bytes",
            "max_hello_bytes",
            "grpc_max_streams_per_connection",
            "grpc_max_header_list_bytes",
            "max_vehicle_messages_per_s",
            "journal_max_batch_records",
        ):
            check_positive(name, getattr(self, name))
        for name in ("recent_commands", "max_open_commands", "max_open_commands_per_user"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"{name} must be a number of commands >= 0 (0: no bound, or none kept), "
                    f"got {getattr(self, name)}; set SOVD_HUB_{name.upper()}"
                )
        for name in ("grpc_max_connections", "grpc_max_connections_per_address"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"{name} must be a number of connections >= 0 (0: no fixed cap), "
                    f"got {getattr(self, name)}; set SOVD_HUB_{name.upper()}"
                )
        if self.grpc_reserved_files < 0:
            raise ConfigError(
                f"grpc_reserved_files must be a number of open files >= 0, "
                f"got {self.grpc_reserved_files}; set SOVD_HUB_GRPC_RESERVED_FILES"
            )
        if self.handshake_timeout_s < self.hello_timeout_s:
            raise ConfigError(
                f"handshake_timeout_s ({self.handshake_timeout_s:g}) must be at least "
                f"hello_timeout_s ({self.hello_timeout_s:g}), so a vehicle slow to send Hello "
                "is told why; raise SOVD_HUB_HANDSHAKE_TIMEOUT_S or lower SOVD_HUB_HELLO_TIMEOUT_S"
            )
        if not MIN_FLOW_WINDOW_BYTES <= self.grpc_flow_window_bytes <= MAX_FLOW_WINDOW_BYTES:
            raise ConfigError(
                f"grpc_flow_window_bytes must be {MIN_FLOW_WINDOW_BYTES}-{MAX_FLOW_WINDOW_BYTES} "
                f"(HTTP/2's limits), got {self.grpc_flow_window_bytes}; set "
                "SOVD_HUB_GRPC_FLOW_WINDOW_BYTES"
            )
        if not 0 <= self.journal_max_wait_ms <= MAX_JOURNAL_WAIT_MS:
            raise ConfigError(
                f"journal_max_wait_ms must be 0-{MAX_JOURNAL_WAIT_MS:g} ms (every command may wait "
                f"that long before its commit), got {self.journal_max_wait_ms}"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ConfigError(
                "tls_client_ca_file (mutual TLS) needs TLS: set tls_cert_file and tls_key_file"
            )
        if self.default_command_timeout_s > self.max_command_timeout_s:
            raise ConfigError(
                f"default_command_timeout_s ({self.default_command_timeout_s}) must not exceed "
                f"max_command_timeout_s ({self.max_command_timeout_s})"
            )


#: The longest `node_id` (it is stored in a 64-character column).
MAX_NODE_ID_LENGTH = 64


def check_node_id(value: str) -> None:
    """Raise ConfigError unless `value` is a usable `node_id` (1-64 printable characters)."""
    if (
        not value
        or len(value) > MAX_NODE_ID_LENGTH
        or not value.isprintable()
        or value.strip() != value
    ):
        raise ConfigError(
            f"node_id must be 1-{MAX_NODE_ID_LENGTH} printable characters without leading or "
            f"trailing spaces (set SOVD_HUB_NODE_ID), got {value!r}"
        )


def check_port(name: str, value: int) -> None:
    """Raise ConfigError naming `name` unless `value` is a TCP port (0 = any free port)."""
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be a TCP port 0-65535 (0 = any free port), got {value}")


def check_positive(name: str, value: float) -> None:
    """Raise ConfigError naming `name` unless `value` is a finite number above 0."""
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number greater than 0, got {value}")


def parse_bind(name: str, value: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 as `[::1]:8080`); raises ConfigError naming `name`."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"{name} must look like HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    check_port(name, int(port))
    return host.strip("[]"), int(port)


def read_config_file(path: Path) -> dict[str, Mapping[str, object]]:
    """Read a TOML config file; raises ConfigError saying what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path}: [{section}] must be a table")
    return data


def load_config(
    cls: type[C],
    *,
    file_values: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> C:
    """Build `cls` from overrides > environment > file values > defaults.

    Unknown keys in the file and values of the wrong type raise `ConfigError`
    naming the key and where it came from.
    """
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in (file_values or {}).items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r} in config file; known: {sorted(fields)}")
        values[key] = _coerce(key, hints[key], raw, "config file")
    for key in fields:
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            values[key] = _coerce(key, hints[key], environ[env_key], f"environment {env_key}")
    for key, raw in overrides.items():
        if key not in fields:
            raise ConfigError(
                f"unknown setting {key!r} for {cls.__name__}; known: {sorted(fields)}"
            )
        if raw is not None:
            values[key] = _coerce(key, hints[key], raw, "command line")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc


def _coerce(key: str, hint: object, raw: object, origin: str) -> object:
    target = _base_type(hint)
    if raw is None and _is_optional(hint):
        return None
    if typing.get_origin(target) is tuple:
        return _coerce_strings(key, raw, origin)
    try:
        if target is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if target is int and not isinstance(raw, bool):
            return int(str(raw).strip())
        if target is float and not isinstance(raw, bool):
            return float(str(raw).strip())
        if target is str:
            if not isinstance(raw, str):
                raise ValueError(raw)
            return raw
    except ValueError:
        pass
    else:
        if target not in (bool, int, float, str):
            return raw
    name = getattr(target, "__name__", str(target))
    raise ConfigError(f"{key} (from {origin}) must be {name}, got {raw!r}")


def _coerce_strings(key: str, raw: object, origin: str) -> tuple[str, ...]:
    """A tuple of strings: a TOML list, or a comma-separated string (environment, CLI)."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise ConfigError(
        f"{key} (from {origin}) must be a list of strings (or one comma-separated string), "
        f"got {raw!r}"
    )


def _base_type(hint: object) -> object:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _is_optional(hint: object) -> bool:
    return type(None) in typing.get_args(hint)
