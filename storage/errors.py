"""Storage errors, and the one place where driver errors become ours.

```
StorageError                  anything storage refuses or cannot do
├── DatabaseUnavailable       the database did not answer (down, refused, pool exhausted);
│                             also the hub's `StorageUnavailable`
├── ConflictError             the write collides with a row that already exists
│   ├── UserExistsError       `add_user` with a username that is taken
│   ├── VehicleExistsError    `add_vehicle` with a VIN that is registered
│   └── LastAdminError        the change would leave no enabled admin
├── UnknownUserError          no user has this username
├── UnknownVehicleError       no vehicle has this VIN (e.g. a command for it)
├── KeyValueError             Redis answered but refused the operation
│   └── RedisUnavailable      Redis did not answer (down, timed out, login refused)
└── CodecError                a bus message from another node cannot be read (not JSON,
                              another envelope version, an unknown message); also a
                              ValueError. `RedisBus` logs and skips it (`bus_codec`)
```

`DatabaseUnavailable` and `RedisUnavailable` are "the peer broke it": retry
later, answer 503. Everything else is about the request itself. Storage
also raises `ValueError` for an argument no store could take (a VIN that is
not 17 characters, an unknown role, a password over bcrypt's 72 bytes), and
`ConfigError` (from `hub`) for a bad `StorageConfig`. The scale-out leases
raise the hub's `StorageUnavailable` when Redis cannot tell who holds a
lease (`hub.ports.VehicleLeases`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import exc as sa_exc

from hub import StorageFailed, StorageUnavailable

__all__ = [
    "CodecError",
    "ConflictError",
    "DatabaseUnavailable",
    "KeyValueError",
    "LastAdminError",
    "RedisUnavailable",
    "StorageError",
    "UnknownUserError",
    "UnknownVehicleError",
    "UserExistsError",
    "VehicleExistsError",
    "is_connection_failure",
    "translate_errors",
]


class StorageError(StorageFailed):
    """Base class of every error raised by `storage` (the hub's `StorageFailed`)."""


class DatabaseUnavailable(StorageError, StorageUnavailable):
    """The database could not be reached or refused the connection; try again later.

    Also the hub's `StorageUnavailable`: its journal buffers actors' records through it.
    """


class ConflictError(StorageError):
    """The row to insert already exists."""


class UserExistsError(ConflictError):
    """A user with this username already exists."""


class VehicleExistsError(ConflictError):
    """A vehicle with this VIN is already registered."""


class LastAdminError(ConflictError):
    """The change would leave the hub without an enabled admin."""


class KeyValueError(StorageError):
    """Redis answered but refused the operation; the message says what it said."""


class RedisUnavailable(KeyValueError):
    """Redis could not be reached, did not answer in time, or refused the login."""


class UnknownUserError(StorageError):
    """No user has this username."""


class UnknownVehicleError(StorageError):
    """The VIN is not in the vehicle registry."""


class CodecError(StorageError, ValueError):
    """A bus message that is not valid JSON, of another version, or not a known message."""


# SQLSTATE classes and codes that mean "the server is not there for us" rather
# than "this statement is wrong": connection exceptions (08), shutdown/startup
# (57P0x), too many connections (53300), unknown database (3D000), bad login (28).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P", "53300", "3D000", "28")


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) means the database is not there for us."""
    if isinstance(exc, sa_exc.OperationalError) and "no such" in str(exc.orig):
        return False  # SQLite's "no such table": an unmigrated database, not an outage
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            OSError
            | TimeoutError
            | sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.TimeoutError,
        ):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        # asyncpg's errors carry `sqlstate`; its own client-side connection
        # errors are `asyncpg.InterfaceError`, and `InternalClientError` when a
        # statement meets a connection the server has just closed (its protocol
        # is still reading the server's last message).
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        if isinstance(current, asyncpg.InterfaceError | asyncpg.InternalClientError):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Turn driver and SQLAlchemy errors raised in the block into `StorageError`s.

    `where` names the database (password masked) for the message. Errors that
    are already ours, and programming errors that are not about the database,
    pass through unchanged.
    """
    try:
        yield
    except StorageError:
        raise
    except (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        OSError,
        TimeoutError,
        asyncpg.PostgresError,  # from `storage.postgres_direct`, which runs on asyncpg
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    ) as exc:
        if is_connection_failure(exc):
            raise _unavailable(where, exc) from exc
        hint = " (run `sovd-hub migrate`)" if _looks_unmigrated(exc) else ""
        raise StorageError(
            f"database at {where} refused the operation: {_first_line(exc)}{hint}"
        ) from exc
    except Exception as exc:
        # A driver error SQLAlchemy did not wrap: taking a connection straight from the
        # pool (`storage.postgres_direct`) raises the DBAPI adapter's own when it cannot
        # connect. Anything else is not about the database: it passes unchanged.
        if not is_connection_failure(exc):
            raise
        raise _unavailable(where, exc) from exc


def _unavailable(where: str, exc: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"database at {where} is unavailable: {_first_line(exc)}; "
        "check that it is running and that SOVD_HUB_DATABASE_URL points at it"
    )


def _looks_unmigrated(exc: BaseException) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
