"""Settings of storage: the database, Redis, and audit/command retention, for one hub node.

Loaded like every subsystem's settings (`hub.load_config`: keyword >
environment `SOVD_HUB_<FIELD>` > TOML file > default).
"""

from __future__ import annotations

import dataclasses

from hub import ConfigError, check_positive
from storage.urls import mask_url

__all__ = ["MIN_SIGNING_KEY_BYTES", "StorageConfig"]

#: A retention signing key shorter than this is refused (as short HS256 keys are).
MIN_SIGNING_KEY_BYTES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where commands, events, users and the audit trail are kept."""

    database_url: str = "sqlite:///sovd-hub.db"
    database_pool_size: int = 10
    bcrypt_rounds: int = 12
    redis_url: str | None = None  # None: no Redis, this node keeps its rate limits in memory
    redis_key_prefix: str = "sovd-hub:"
    redis_pool_size: int = 16
    redis_timeout_s: float = 1.0
    #: With Redis: bus messages waiting to be sent to the other nodes; beyond, they are dropped.
    bus_outgoing_messages: int = 10_000
    #: Postgres: give up a connection attempt after this long (a partitioned network never
    #: answers); the first failure starts the hub's outage handling.
    database_connect_timeout_s: float = 5.0
    #: Postgres: give up one statement after this long. Keep it well under
    #: 3 x heartbeat_interval_s: an actor waits for its commit before reading more.
    database_command_timeout_s: float = 10.0
    #: Audit rows older than this many days are removed by retention (0: kept forever).
    audit_retention_days: int = 0
    #: Finished commands (and their events) older than this many days are removed (0: kept).
    command_retention_days: int = 0
    #: How often the retention task runs (when either window is set).
    retention_sweep_s: float = 3600.0
    #: Secret the retention summaries are signed with (HMAC); empty: derived from jwt_secret.
    audit_signing_key: str = ""

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ConfigError("database_url (SOVD_HUB_DATABASE_URL) must not be empty")
        _check_redis(self)
        _check_retention(self)
        check_positive("database_pool_size", self.database_pool_size)
        check_positive("database_connect_timeout_s", self.database_connect_timeout_s)
        check_positive("database_command_timeout_s", self.database_command_timeout_s)
        if not 4 <= self.bcrypt_rounds <= 31:
            raise ConfigError(f"bcrypt_rounds must be between 4 and 31, got {self.bcrypt_rounds}")


def _check_retention(config: StorageConfig) -> None:
    for key in ("audit_retention_days", "command_retention_days"):
        days = getattr(config, key)
        if not 0 <= days <= 36500:
            raise ConfigError(
                f"{key} (SOVD_HUB_{key.upper()}) must be a number of days, 0 (keep forever) "
                f"to 36500, got {days}"
            )
    check_positive("retention_sweep_s", config.retention_sweep_s)
    key_bytes = len(config.audit_signing_key.encode())
    if 0 < key_bytes < MIN_SIGNING_KEY_BYTES:
        raise ConfigError(
            f"audit_signing_key (SOVD_HUB_AUDIT_SIGNING_KEY) must be at least "
            f"{MIN_SIGNING_KEY_BYTES} bytes of random data, or empty to derive it from "
            f"jwt_secret; got {key_bytes} bytes"
        )


def _check_redis(config: StorageConfig) -> None:
    if config.redis_url is not None and not config.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(
            "redis_url (SOVD_HUB_REDIS_URL) must look like redis://host:6379/0, "
            "rediss://host:6379/0 or unix:///path/to/redis.sock (leave it unset for no Redis), "
            f"got {mask_url(config.redis_url)!r}"
        )
    prefix = config.redis_key_prefix
    if not 1 <= len(prefix) <= 64 or not prefix.isprintable() or " " in prefix:
        raise ConfigError(
            "redis_key_prefix (SOVD_HUB_REDIS_KEY_PREFIX) must be 1-64 printable characters "
            f"without spaces, such as 'sovd-hub:', got {prefix!r}"
        )
    check_positive("redis_pool_size", config.redis_pool_size)
    check_positive("redis_timeout_s", config.redis_timeout_s)
    check_positive("bus_outgoing_messages", config.bus_outgoing_messages)
