"""Storage: the hub's database (SQLite embedded, Postgres in production).

Other packages use only what is named here. `Database` implements the hub's
`VehicleDirectory` and `CommandJournal` ports; `migrate` and `check_schema`
are synchronous (call them before `trio.run` or via `trio.to_thread`).
`open_keyvalue` opens the Redis that nodes share (`KeyValue`), when one is configured;
`open_redis_bus` runs the event bus between nodes on it (`RedisBus`).
"""

from storage.accounts import AccountStore
from storage.audit import AuditStore
from storage.audit_chain import signing_key
from storage.audit_queries import AuditEntry, AuditFilter
from storage.audit_retention import RetentionPolicy, RetentionSummary
from storage.audit_verify import BreakKind, ChainBreak, ChainReport
from storage.cluster_redis import CommandStreams, RedisLeases, StreamEntry
from storage.commands import CommandStore
from storage.config import StorageConfig
from storage.database import Database, open_database
from storage.errors import (
    ConflictError,
    DatabaseUnavailable,
    KeyValueError,
    LastAdminError,
    RedisUnavailable,
    StorageError,
    UnknownUserError,
    UnknownVehicleError,
    UserExistsError,
    VehicleExistsError,
)
from storage.history import CommandFilter, Page, VehicleChanges, VehicleFilter, VehicleOverview
from storage.keyvalue import KeyValue, open_keyvalue
from storage.migrations import check_schema, migrate
from storage.records import (
    AuditEvent,
    CommandRow,
    LoginSession,
    NewVehicle,
    RefreshOutcome,
    RefreshResult,
    User,
    UserUpdate,
    Vehicle,
)
from storage.redis_bus import RedisBus, open_redis_bus
from storage.urls import normalise_url
from storage.vehicles import VehicleStore

__all__ = [
    "AccountStore",
    "AuditEntry",
    "AuditEvent",
    "AuditFilter",
    "AuditStore",
    "BreakKind",
    "ChainBreak",
    "ChainReport",
    "CommandFilter",
    "CommandRow",
    "CommandStore",
    "CommandStreams",
    "ConflictError",
    "Database",
    "DatabaseUnavailable",
    "KeyValue",
    "KeyValueError",
    "LastAdminError",
    "LoginSession",
    "NewVehicle",
    "Page",
    "RedisBus",
    "RedisLeases",
    "RedisUnavailable",
    "RefreshOutcome",
    "RefreshResult",
    "RetentionPolicy",
    "RetentionSummary",
    "StorageConfig",
    "StorageError",
    "StreamEntry",
    "UnknownUserError",
    "UnknownVehicleError",
    "User",
    "UserExistsError",
    "UserUpdate",
    "Vehicle",
    "VehicleChanges",
    "VehicleExistsError",
    "VehicleFilter",
    "VehicleOverview",
    "VehicleStore",
    "check_schema",
    "migrate",
    "normalise_url",
    "open_database",
    "open_keyvalue",
    "open_redis_bus",
    "signing_key",
]
