"""Database fixtures for every test package.

- `database_url`: a migrated, empty database, once per backend
  (ids `sqlite` and `postgres`).
- `aio_loop`: the asyncio loop hosting trio (every trio test runs hosted by
  `hub.run_with_asyncio`, as the hub does); a test asks for it to say that it
  uses the asyncio libraries.
- `database`: an open `storage.Database` on `database_url`.

Postgres comes from `SOVD_HUB_TEST_POSTGRES_URL` (default
`postgresql://postgres@127.0.0.1:5432/postgres`): one throwaway database,
`sovd_test_<hex>`, is created and migrated per session, emptied before each
test and dropped at the end. When the server does not answer, Postgres tests
are skipped, or fail when `CI=true`.

- `redis_url`, `redis_key_prefix`, `keyvalue`: the test Redis
  (`SOVD_HUB_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/0`), a key
  prefix of the test's own (its keys are deleted afterwards), and an open
  `storage.KeyValue` on both. Skipped, or failed when `CI=true`, like Postgres.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from hub import run_with_asyncio
from storage import Database, KeyValue, migrate, open_database, open_keyvalue
from tests.support.databases import (
    CONNECT_TIMEOUT_S,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
    truncate_all,
    with_database_name,
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every trio test hosted by an asyncio loop, as `sovd_hub.runtime` runs the hub."""
    for item in items:
        if item.get_closest_marker("trio") is not None:
            item.add_marker(pytest.mark.trio(run=run_with_asyncio), append=False)


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A migrated Postgres database of this session's own, dropped at the end."""
    server_url = postgres_server_url()
    name = f"sovd_test_{uuid.uuid4().hex}"
    create_postgres_database(server_url, name)
    try:
        url = with_database_name(server_url, name)
        migrate(url)
        yield url
    finally:
        drop_postgres_database(server_url, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "hub.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "hub.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database_url")
    asyncio.run(truncate_all(url))
    return url


@pytest.fixture
async def aio_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop hosting this test's trio run."""
    return asyncio.get_running_loop()


@pytest.fixture
async def database(
    aio_loop: asyncio.AbstractEventLoop, database_url: str
) -> AsyncIterator[Database]:
    """An open `Database` on a migrated, empty database."""
    async with open_database(database_url, bcrypt_rounds=4) as db:
        yield db


REDIS_URL_ENV = "SOVD_HUB_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, checked once: skip its tests (fail them when CI=true) if it is down."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        message = (
            f"Redis at {url} did not answer ({exc!r}): start it "
            f"(redis-server --port 6379 ...) or set {REDIS_URL_ENV}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"sovd-test-{uuid.uuid4().hex[:16]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=CONNECT_TIMEOUT_S)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def keyvalue(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> AsyncIterator[KeyValue]:
    """An open `KeyValue` on the test Redis, with this test's key prefix."""
    async with open_keyvalue(redis_url, key_prefix=redis_key_prefix) as kv:
        yield kv
