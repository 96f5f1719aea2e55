"""Storage: the hub's database (SQLite embedded, Postgres in production).

Other packages use only what is named here. `Database` implements the hub's
`VehicleDirectory` and `CommandJournal` ports; `migrate` and `check_schema`
are synchronous (call them before `trio.run` or via `trio.to_thread`).
`open_keyvalue` opens the Redis that nodes share (`KeyValue`), when one is configured.
"""

from storage.accounts import LastAdminError
from storage.database import Database, open_database
from storage.errors import (
    ConflictError,
    DatabaseUnavailable,
    StorageError,
    UnknownUserError,
    UnknownVehicleError,
    UserExistsError,
    VehicleExistsError,
)
from storage.history import CommandFilter, Page, VehicleChanges, VehicleFilter, VehicleOverview
from storage.keyvalue import KeyValue, KeyValueError, RedisUnavailable, open_keyvalue
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
from storage.urls import normalise_url

__all__ = [
    "AuditEvent",
    "CommandFilter",
    "CommandRow",
    "ConflictError",
    "Database",
    "DatabaseUnavailable",
    "KeyValue",
    "KeyValueError",
    "LastAdminError",
    "LoginSession",
    "NewVehicle",
    "Page",
    "RedisUnavailable",
    "RefreshOutcome",
    "RefreshResult",
    "StorageError",
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
    "check_schema",
    "migrate",
    "normalise_url",
    "open_database",
    "open_keyvalue",
]
