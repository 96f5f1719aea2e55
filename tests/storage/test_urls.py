"""Which database URLs the hub takes, and how they are shown."""

from __future__ import annotations

import pytest

from storage import StorageError, normalise_url
from storage.urls import mask_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///hub.db", "sqlite+aiosqlite:///hub.db"),
        ("sqlite:////var/lib/hub.db", "sqlite+aiosqlite:////var/lib/hub.db"),
        ("sqlite+aiosqlite:///hub.db", "sqlite+aiosqlite:///hub.db"),
        ("postgresql://u:p@db:5432/hub", "postgresql+asyncpg://u:p@db:5432/hub"),
        ("postgres://u@db/hub", "postgresql+asyncpg://u@db/hub"),
        ("postgresql+asyncpg://u@db/hub", "postgresql+asyncpg://u@db/hub"),
    ],
)
def test_normalise_url_picks_the_async_driver(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "mysql://u:secret@db/hub",
        "postgresql+psycopg2://u:secret@db/hub",
        "sqlite+pysqlite:///hub.db",
        "hub.db",
        "",
    ],
)
def test_normalise_url_refuses_other_urls_naming_the_setting(given: str) -> None:
    with pytest.raises(StorageError, match="SOVD_HUB_DATABASE_URL") as caught:
        normalise_url(given)
    assert "secret" not in str(caught.value)


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql://hub:s3cret@db:5432/hub") == "postgresql://hub:***@db:5432/hub"
    assert mask_url("sqlite:///hub.db") == "sqlite:///hub.db"
