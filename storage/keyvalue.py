"""Redis, the key-value store hub nodes share (rate limits now; routing and fan-out later).

redis.asyncio is an asyncio library and the hub is trio (DESIGN.md,
"Concurrency"): the client, its `BlockingConnectionPool` and every connection
are created on the asyncio loop hosting trio (`hub.run_with_asyncio`) and
closed, shielded, before it ends. Every public method is a trio `async def`
that crosses the bridge once; work of several commands is written as one asyncio coroutine
(`KeyValue.run`) or one Lua script (`Script`), never command by command.

```
StorageError (storage.errors, where both are defined)
└── KeyValueError          Redis refused the operation (a script error, wrong type, out of memory)
    └── RedisUnavailable   Redis did not answer: down, refused, timed out, pool exhausted, login
```

Every redis-py error becomes one of these in `_translated`, the one place.
Every key the hub writes starts with the node's `key_prefix` (`KeyValue.key`),
so several hubs, or a hub and its tests, can share one Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

import trio
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hub import run_asyncio
from storage.errors import KeyValueError, RedisUnavailable
from storage.urls import mask_url

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "KeyValue",
    "KeyValueError",
    "RedisUnavailable",
    "Script",
    "open_keyvalue",
]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_KEY_PREFIX = "sovd-hub:"
#: URL schemes redis-py connects to.
URL_SCHEMES = ("redis", "rediss", "unix")


@asynccontextmanager
async def open_keyvalue(
    url: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    pool_size: int = 16,
    timeout_s: float | None = 1.0,
) -> AsyncIterator[KeyValue]:
    """A client of the Redis at `url` (`redis://`, `rediss://` or `unix://`) while open.

    Must run in trio hosted on asyncio (`hub.run_with_asyncio`). Connects
    lazily: a Redis that is down shows up as `RedisUnavailable` from the first call (see `ping`).
    At most `pool_size` connections; a caller waits up to `timeout_s` for a
    free one. `timeout_s` also bounds connecting and each reply, so a blocking
    command (`XREAD BLOCK`, ...) needs its own client with `timeout_s=None` or
    a longer one. The pool is closed on exit, shielded from cancellation.
    """
    scheme = url.partition("://")[0].lower()
    if scheme not in URL_SCHEMES:
        raise KeyValueError(
            f"Redis URL {mask_url(url)!r} must start with redis://, rediss:// or unix:// "
            "(e.g. redis://127.0.0.1:6379/0 in SOVD_HUB_REDIS_URL)"
        )
    client = await run_asyncio(_connect, url, pool_size, timeout_s)
    try:
        yield KeyValue(client, key_prefix, mask_url(url))
    finally:
        with trio.CancelScope(shield=True):
            await run_asyncio(client.aclose)


async def _connect(url: str, pool_size: int, timeout_s: float | None) -> Redis:
    # Runs inside the asyncio loop: the pool's Condition and every connection belong to it.
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            # One immediate retry: a pooled connection may have died with a Redis restart.
            retry=Retry(NoBackoff(), 1),
        )
    except ValueError as exc:  # a malformed URL or query string
        raise KeyValueError(f"Redis URL {mask_url(url)!r} is malformed: {exc}") from exc
    return Redis.from_pool(pool)


class KeyValue:
    """One node's Redis client; every method crosses the bridge once.

    Cancelling the trio caller cancels the Redis command (redis-py then drops
    that connection rather than reuse it half-read).
    """

    def __init__(self, client: Redis, key_prefix: str, where: str) -> None:
        self._client = client
        self.key_prefix = key_prefix
        #: The URL with its password masked, for messages and logs.
        self.where = where

    def key(self, *parts: str) -> str:
        """The Redis key for `parts`: the node's prefix, then the parts joined by `:`."""
        return self.key_prefix + ":".join(parts)

    async def ping(self) -> None:
        """Return once Redis answers PING; raise `RedisUnavailable` saying why not."""
        await self.run(_ping)

    async def run(
        self, fn: Callable[Concatenate[Redis, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await the asyncio coroutine function `fn(client, *args, **kwargs)` in one crossing.

        The one place where redis-py errors become `KeyValueError` /
        `RedisUnavailable`. `fn` must build its keys with `key`.
        """
        try:
            return await run_asyncio(fn, self._client, *args, **kwargs)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise RedisUnavailable(
                f"Redis at {self.where} is unavailable: {_first_line(exc)}; check that it is "
                "running and that SOVD_HUB_REDIS_URL points at it"
            ) from exc
        except redis_errors.ReadOnlyError as exc:  # a replica, or a primary being demoted
            raise RedisUnavailable(
                f"Redis at {self.where} cannot take writes now: {_first_line(exc)}"
            ) from exc
        except redis_errors.RedisError as exc:
            raise KeyValueError(
                f"Redis at {self.where} refused the operation: {_first_line(exc)}"
            ) from exc

    async def delete(self, *keys: str) -> int:
        """Delete `keys` (full keys, from `key`); returns how many existed."""
        return await self.run(_delete, keys)

    def script(self, source: str) -> Script:
        """A Lua script run atomically by Redis (`EVALSHA`, loaded on first use)."""
        return Script(self, source)


class Script:
    """A Lua script: `EVALSHA` by its SHA-1, falling back to `EVAL` (which caches it)
    when Redis does not know it (first use, `SCRIPT FLUSH`, a restarted server)."""

    def __init__(self, keyvalue: KeyValue, source: str) -> None:
        self._keyvalue = keyvalue
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int | float]) -> object:
        """Run the script with `KEYS` and `ARGV`; returns Redis's reply (bytes, ints, lists).

        One bridge crossing and, when the script is cached, one round trip.
        """
        return await self._keyvalue.run(self._eval, keys, args)

    async def _eval(
        self, client: Redis, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> object:
        try:
            reply: object = await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            reply = await client.eval(self.source, len(keys), *keys, *args)
        return reply


async def _ping(client: Redis) -> None:
    await client.ping()


async def _delete(client: Redis, keys: Sequence[str]) -> int:
    return await client.delete(*keys) if keys else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
