"""Storage: the hub's database (SQLite embedded, Postgres in production) and Redis.

Other packages use only what is named here. What each module owns:

- `database`: `Database`, opened by `open_database`: the stores below over one engine.
- `engine`: the engine (SQLite/Postgres setup, the bridge crossing, `ping`).
- `commands`: `CommandStore`, the hub's `CommandJournal`, `CommandBacklog` and
  `DueWaiting`; its transactions are in `command_queries` (store, read, group
  commit), `command_changes` (status moves, and `end_commands`, the one
  transaction that ends commands in bulk), `cluster_queries` and `history`.
- `vehicles`: `VehicleStore`, the registry and the hub's `VehicleDirectory`
  (`vehicle_queries`, `history`).
- `accounts`: `AccountStore`, users and login sessions (`account_queries`).
- `audit`: `AuditStore`, the hub's `AuditLog` (`audit_chain` writes every row and
  `row_hash` is how each row's hash is made, which a reader of an export recomputes;
  `audit_queries` reads, `audit_verify`, `audit_retention`).
- `config`: `StorageConfig`. `migrations`: `migrate` and `check_schema`,
  synchronous (call them before `trio.run` or via `trio.to_thread`).
- `keyvalue`: `open_keyvalue`, the Redis nodes share (`KeyValue`);
  `redis_bus` + `bus_codec`: the event bus between nodes (`RedisBus`);
  `leases`: vehicle leases, node liveness, janitor locks (Redis);
  `command_streams`: the per-node command streams (Redis).
- `errors`: the exception tree (every exception storage raises):

```
StorageError
├── DatabaseUnavailable       also the hub's StorageUnavailable
├── ConflictError
│   ├── UserExistsError
│   ├── VehicleExistsError
│   └── LastAdminError
├── UnknownUserError
├── UnknownVehicleError
├── KeyValueError
│   └── RedisUnavailable
└── CodecError                also a ValueError
```

Besides: `ValueError` for an argument no store takes, `hub.ConfigError` for
a bad `StorageConfig`, `hub.StorageUnavailable` from the leases.
"""

from hub import StreamEntry
from storage.accounts import AccountStore
from storage.audit import AuditStore
from storage.audit_chain import row_hash, signing_key
from storage.audit_queries import AuditFilter
from storage.audit_retention import RetentionPolicy, RetentionSummary
from storage.audit_verify import BreakKind, ChainBreak, ChainReport
from storage.command_streams import CommandStreams
from storage.commands import CommandStore
from storage.config import StorageConfig
from storage.database import Database, open_database
from storage.engine import EngineStatistics
from storage.errors import (
    CodecError,
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
from storage.leases import RedisLeases
from storage.migrations import check_schema, migrate
from storage.records import (
    LoginSession,
    NewVehicle,
    RefreshOutcome,
    RefreshResult,
    User,
    UserUpdate,
    Vehicle,
)
from storage.redis_bus import RedisBus, RedisBusStatistics, open_redis_bus
from storage.urls import normalise_url
from storage.vehicles import VehicleStore

__all__ = [
    "AccountStore",
    "AuditFilter",
    "AuditStore",
    "BreakKind",
    "ChainBreak",
    "ChainReport",
    "CodecError",
    "CommandFilter",
    "CommandStore",
    "CommandStreams",
    "ConflictError",
    "Database",
    "DatabaseUnavailable",
    "EngineStatistics",
    "KeyValue",
    "KeyValueError",
    "LastAdminError",
    "LoginSession",
    "NewVehicle",
    "Page",
    "RedisBus",
    "RedisBusStatistics",
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
    "row_hash",
    "signing_key",
]
