"""Database URLs: which ones we accept, their async driver, and how to show them."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.errors import StorageError

__all__ = ["mask_url", "normalise_url"]

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
