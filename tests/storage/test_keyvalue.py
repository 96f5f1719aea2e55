"""storage.KeyValue against a real Redis: prefixed keys, scripts, and errors translated once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from storage import KeyValue, KeyValueError, RedisUnavailable, open_keyvalue
from tests.support.network import closed_port


async def _get(client: Redis, key: str) -> bytes | str | None:
    return await client.get(key)


async def _flush_scripts(client: Redis) -> None:
    await client.script_flush()


async def test_keys_carry_the_prefix_and_delete_counts(keyvalue: KeyValue) -> None:
    await keyvalue.ping()
    key = keyvalue.key("ratelimit", "submit:alice")
    assert key == f"{keyvalue.key_prefix}ratelimit:submit:alice"
    incr = keyvalue.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await incr([key], [5]) == 5
    assert await keyvalue.run(_get, key) == b"5"
    assert await keyvalue.delete(key, keyvalue.key("absent")) == 1
    assert await keyvalue.run(_get, key) is None


async def test_a_script_unknown_to_redis_is_loaded_again(keyvalue: KeyValue) -> None:
    # A comment unique to this run: Redis has never seen the script, so EVALSHA fails first.
    script = keyvalue.script(f"-- {uuid.uuid4()}\nreturn redis.call('INCR', KEYS[1])")
    key = keyvalue.key("counter")
    assert await script([key], []) == 1
    await keyvalue.run(_flush_scripts)  # as after a Redis restart
    assert await script([key], []) == 2


async def test_a_refused_operation_is_a_keyvalue_error_not_unavailable(
    keyvalue: KeyValue,
) -> None:
    broken = keyvalue.script("return redis.call('NO_SUCH_COMMAND')")
    with pytest.raises(KeyValueError, match="refused the operation") as caught:
        await broken([], [])
    assert not isinstance(caught.value, RedisUnavailable)
    await keyvalue.ping()  # the client is still usable


async def test_unreachable_redis_is_unavailable_naming_it_without_password(
    aio_loop: asyncio.AbstractEventLoop,
) -> None:
    port = closed_port()
    async with open_keyvalue(f"redis://:s3cret@127.0.0.1:{port}/0") as kv:
        with pytest.raises(RedisUnavailable) as caught:
            await kv.ping()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "SOVD_HUB_REDIS_URL" in message
    assert "s3cret" not in message


async def test_a_url_that_is_not_redis_is_refused(aio_loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(KeyValueError, match=r"must start with redis://, rediss:// or unix://"):
        async with open_keyvalue("http://127.0.0.1:6379/0"):
            pass
