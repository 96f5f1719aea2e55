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
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import ConfigError

ENV_PREFIX = "SOVD_HUB_"
C = TypeVar("C")


@dataclasses.dataclass(frozen=True, slots=True)
class HubConfig:
    """The vehicle side: gRPC gateway, actors, command deadlines, shutdown."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    heartbeat_interval_s: float = 10.0
    hello_timeout_s: float = 10.0
    mailbox_size: int = 64
    max_in_flight_per_vehicle: int = 4
    default_command_timeout_s: float = 30.0
    max_command_timeout_s: float = 600.0
    cancel_grace_s: float = 5.0
    shutdown_grace_s: float = 5.0
    max_event_bytes: int = 65536
    max_vehicle_messages_per_s: float = 200.0
    actor_max_restarts: int = 3
    actor_restart_window_s: float = 60.0
    max_command_ttl_s: float = 7 * 24 * 3600.0
    expiry_sweep_s: float = 1.0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None

    def __post_init__(self) -> None:
        check_port("grpc_port", self.grpc_port)
        for name in (
            "heartbeat_interval_s",
            "hello_timeout_s",
            "default_command_timeout_s",
            "max_command_timeout_s",
            "cancel_grace_s",
            "shutdown_grace_s",
        ):
            check_positive(name, getattr(self, name))
        for name in (
            "mailbox_size",
            "max_in_flight_per_vehicle",
            "max_event_bytes",
            "max_vehicle_messages_per_s",
        ):
            check_positive(name, getattr(self, name))
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
