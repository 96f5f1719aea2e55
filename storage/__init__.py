"""Storage: the hub's database (SQLite embedded, Postgres in production).

Other packages use only what is named here. `Database` implements the hub's
`VehicleDirectory` and `CommandJournal` ports; `migrate` and `check_schema`
are synchronous (call them before `trio.run` or via `trio.to_thread`).
"""

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
from storage.migrations import check_schema, migrate
from storage.records import AuditEvent, CommandRow, NewVehicle, User, Vehicle
from storage.urls import normalise_url

__all__ = [
    "AuditEvent",
    "CommandRow",
    "ConflictError",
    "Database",
    "DatabaseUnavailable",
    "NewVehicle",
    "StorageError",
    "UnknownUserError",
    "UnknownVehicleError",
    "User",
    "UserExistsError",
    "Vehicle",
    "VehicleExistsError",
    "check_schema",
    "migrate",
    "normalise_url",
    "open_database",
]
