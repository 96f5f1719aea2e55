"""Database URLs: which ones we accept, their async driver, and how to show them."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.errors import StorageError

__all__ = ["create_private_sqlite", "mask_url", "normalise_url"]

# scheme as written by the operator -> scheme of the async driver we use
_ASYNC_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

_EXPECTED = (
    "expected sqlite:///path/to/hub.db or postgresql://user:password@host:5432/dbname "
    "in SOVD_HUB_DATABASE_URL"
)


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver for `url`.

    `sqlite:///x.db` becomes `sqlite+aiosqlite:///x.db`; `postgresql://...` and
    `postgres://...` become `postgresql+asyncpg://...`; URLs that already name
    one of those drivers are returned unchanged. Anything else raises
    `StorageError`.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or (not rest and not scheme.startswith("sqlite")):
        raise StorageError(f"database URL {mask_url(url)!r} is not a URL: {_EXPECTED}")
    target = _ASYNC_SCHEMES.get(scheme.lower())
    if target is None:
        raise StorageError(
            f"database URL {mask_url(url)!r} uses {scheme!r}, which sovd-hub does not "
            f"support: {_EXPECTED}"
        )
    normalised = f"{target}://{rest}"
    try:
        make_url(normalised)
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"database URL {mask_url(url)!r} is malformed: {_EXPECTED}") from exc
    return normalised


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not parseable: keep the scheme, hide everything that could hold a secret.
        scheme, sep, rest = url.partition("://")
        if sep and "@" in rest:
            return f"{scheme}://***@{rest.rpartition('@')[2]}"
        return url if "@" not in url else "***"


def create_private_sqlite(url: str) -> Path | None:
    """Create the SQLite file of `url` readable by its owner only (0600), if it is missing.

    It holds password hashes, sessions and the audit trail; SQLite gives its
    `-wal` and `-shm` side files the database file's mode. An existing file
    is left as it is (its mode is the operator's choice). Returns the file's
    path, or None for a non-SQLite or in-memory URL.
    """
    parsed = make_url(normalise_url(url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create the SQLite database {path}: {exc.strerror}") from exc
    return path
