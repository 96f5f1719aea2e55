"""Token buckets and failure windows, in memory and in a real Redis, and the limiter above them.

Buckets are timed by a fake clock (Redis's `TIME` replaced) so refills need no sleep.
Client addresses cannot vary over HTTP in the tests (all are 127.0.0.1), so the
per-address rules are tested here, on Redis as in a multi-node deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from api.buckets import Decision, LimitStore, MemoryStore, RedisStore, Rule, Window
from api.config import ApiConfig
from api.errors import ApiError
from api.ratelimit import REDIS_RETRY_S, LimiterStatistics, RateLimiter, rate_limit_headers
from hub import ConfigError, load_config
from storage import KeyValue, RedisUnavailable, open_keyvalue
from tests.support.network import closed_port
from tests.support.node import JWT_SECRET

RULE = Rule("submit", rate_per_s=0.5, burst=3)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stores:
    clock: FakeClock
    store: LimitStore


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """None for memory; the Redis URL and this test's key prefix for Redis."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_key_prefix")


@pytest.fixture
async def stores(
    aio_loop: asyncio.AbstractEventLoop, backend: tuple[str, str] | None
) -> AsyncIterator[Stores]:
    clock = FakeClock()
    if backend is None:
        yield Stores(clock, MemoryStore(clock=clock))
        return
    async with open_keyvalue(backend[0], key_prefix=backend[1]) as kv:
        yield Stores(clock, RedisStore(kv, clock=clock))


async def takes(store: LimitStore, key: str, n: int) -> list[Decision]:
    return [await store.take(key, RULE) for _ in range(n)]


async def test_a_bucket_gives_its_burst_then_refuses_until_refilled(stores: Stores) -> None:
    store, clock = stores.store, stores.clock
    first = await takes(store, "alice", 3)
    assert [d.allowed for d in first] == [True, True, True]
    assert [d.remaining for d in first] == [2, 1, 0]
    assert first[-1].reset_s == pytest.approx(6.0)  # 3 tokens at 0.5 per second

    refused = await store.take("alice", RULE)
    assert not refused.allowed
    assert (refused.limit, refused.remaining) == (3, 0)
    assert refused.retry_after_s == pytest.approx(2.0)

    assert (await store.take("bob", RULE)).allowed  # a bucket per key

    clock.now += 2.0
    again = await store.take("alice", RULE)
    assert again.allowed and again.remaining == 0
    clock.now += 60.0  # long enough to fill up; never above the burst
    assert [d.remaining for d in await takes(store, "alice", 3)] == [2, 1, 0]


async def test_failure_windows_count_per_key_and_are_forgotten(stores: Stores) -> None:
    store = stores.store
    assert await store.failures(["u", "a"]) == [Window(0, 0.0), Window(0, 0.0)]
    await store.add_failures(["u", "a"], 900)
    second = await store.add_failures(["u", "b"], 900)
    assert [w.count for w in second] == [2, 1]
    assert 899 < second[0].reset_s <= 900
    now = await store.failures(["u", "a", "b", "c"])
    assert [w.count for w in now] == [2, 1, 1, 0]
    await store.forget("u")
    assert [w.count for w in await store.failures(["u", "a"])] == [0, 1]


async def test_a_memory_window_ends_after_its_length_and_memory_stays_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(max_keys=4, clock=clock)
    await store.add_failures(["u"], 60)
    clock.now += 59.5
    assert (await store.failures(["u"]))[0] == Window(1, 0.5)
    clock.now += 0.5
    assert (await store.failures(["u"]))[0] == Window(0, 0.0)

    for n in range(10):
        await store.take(f"user{n}", RULE)
    assert len(store) <= 4
    assert (await store.take("user9", RULE)).remaining == 1  # the most recent are kept


async def test_two_nodes_on_one_redis_share_a_bucket(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    async with (
        open_keyvalue(redis_url, key_prefix=redis_key_prefix) as one,
        open_keyvalue(redis_url, key_prefix=redis_key_prefix) as two,
    ):
        node_a, node_b = RedisStore(one), RedisStore(two)  # timed by Redis itself
        slow = Rule("submit", rate_per_s=0.001, burst=2)
        assert (await node_a.take("alice", slow)).remaining == 1
        assert (await node_b.take("alice", slow)).remaining == 0
        refused = await node_a.take("alice", slow)
        assert not refused.allowed
        assert refused.retry_after_s > 900  # one token per 1000 s


def config(**overrides: object) -> ApiConfig:
    settings: dict[str, object] = {
        "jwt_secret": JWT_SECRET,
        "login_burst": 2,
        "login_rate_per_s": 0.01,
        "login_max_failures_per_user_address": 2,
        "login_max_failures_per_user": 3,
        "login_max_usernames_per_address": 5,
        "login_failure_window_s": 600.0,
        **overrides,
    }
    return ApiConfig(**settings)  # type: ignore[arg-type]


async def refused(limiter: RateLimiter, username: str, address: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await limiter.check_login(username, address)
    assert caught.value.status == 429
    return caught.value


async def test_failed_logins_lock_the_pair_then_the_username_from_any_address(
    keyvalue: KeyValue,
) -> None:
    limiter = RateLimiter(config(login_burst=50), RedisStore(keyvalue))
    for _ in range(2):
        await limiter.check_login("alice", "10.0.0.1")
        await limiter.login_failed("alice", "10.0.0.1")
    pair = await refused(limiter, "alice", "10.0.0.1")
    assert pair.message == (
        "2 failed logins for user 'alice' from address 10.0.0.1 within 600 s (at most 2); "
        "try again in 600 s, or ask an admin to unlock the account"
    )
    await limiter.check_login("alice", "10.0.0.2")  # the owner elsewhere: not locked
    await limiter.login_failed("alice", "10.0.0.2")

    error = await refused(limiter, "alice", "10.0.0.4")  # 3 of 3 for the username
    assert error.code == "too_many_failed_logins"
    assert error.message.startswith(
        "3 failed logins for user 'alice' from all addresses within 600 s (at most 3)"
    )
    assert error.headers["Retry-After"] == "600"
    await limiter.check_login("bob", "10.0.0.9")  # another user, another address: unaffected


async def test_failures_for_many_usernames_lock_the_address(keyvalue: KeyValue) -> None:
    limiter = RateLimiter(config(login_burst=50), RedisStore(keyvalue))
    for n in range(5):
        for _ in range(2):  # one username failing again counts once
            await limiter.login_failed(f"user{n}", "10.0.0.1")

    error = await refused(limiter, "zed", "10.0.0.1")
    assert error.code == "too_many_failed_logins"
    assert error.message.startswith(
        "5 usernames with failed logins from address 10.0.0.1 within 600 s (at most 5)"
    )
    await limiter.check_login("zed", "10.0.0.2")


async def test_a_success_forgets_its_pair_and_leaves_the_address_count(
    keyvalue: KeyValue,
) -> None:
    limiter = RateLimiter(
        config(login_burst=50, login_max_usernames_per_address=2), RedisStore(keyvalue)
    )
    await limiter.login_failed("alice", "10.0.0.1")
    await limiter.login_failed("bob", "10.0.0.1")
    await refused(limiter, "carol", "10.0.0.1")  # alice and bob: 2 of 2
    await limiter.login_succeeded("alice", "10.0.0.1")
    await limiter.check_login("carol", "10.0.0.1")  # bob only
    await limiter.login_failed("alice", "10.0.0.1")  # alice is back in
    error = await refused(limiter, "carol", "10.0.0.1")
    assert "usernames with failed logins from address 10.0.0.1" in error.message


async def test_unlock_forgets_every_pair_of_the_user_only(stores: Stores) -> None:
    limiter = RateLimiter(config(login_burst=50), stores.store)
    for address in ("10.0.0.1", "10.0.0.2"):
        for _ in range(2):
            await limiter.login_failed("alice", address)
    await limiter.login_failed("bob", "10.0.0.1")
    await refused(limiter, "alice", "10.0.0.3")

    assert await limiter.unlock("alice") == 2
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        await limiter.check_login("alice", address)
    assert await limiter.unlock("alice") == 0
    await limiter.login_failed("bob", "10.0.0.1")
    await refused(limiter, "bob", "10.0.0.1")  # bob's pair was not alice's to clear


async def test_member_windows_count_members_and_end(stores: Stores) -> None:
    store, clock = stores.store, stores.clock
    first = await store.add_member("s", "a", 60, cap=2)
    assert first.count == 1 and 59 < first.reset_s <= 60
    await store.add_member("s", "a", 60, cap=2)
    await store.add_member("s", "b", 60, cap=2)
    assert (await store.add_member("s", "c", 60, cap=2)).count == 2  # capped
    assert [w.count for w in await store.failures(["s", "t"])] == [2, 0]
    assert await store.members("s") == ["a", "b"]
    await store.remove_member("s", "a")
    assert await store.members("s") == ["b"]
    await store.forget("s")
    assert await store.members("s") == []

    memory = MemoryStore(clock=clock)  # Redis's own expiry is not on the fake clock
    await memory.add_member("s", "a", 60, cap=5)
    clock.now += 30
    await memory.add_member("s", "b", 60, cap=5)
    assert (await memory.failures(["s"]))[0] == Window(2, 30.0)  # fixed: from the first
    await memory.add_member("t", "a", 60, cap=5, sliding=True)
    clock.now += 30
    assert (await memory.add_member("t", "b", 60, cap=5, sliding=True)) == Window(2, 60.0)
    clock.now += 30
    assert await memory.members("s") == [] and await memory.members("t") == ["a", "b"]


async def test_logins_per_address_are_rate_limited(keyvalue: KeyValue) -> None:
    limiter = RateLimiter(config(), RedisStore(keyvalue))
    first = await limiter.check_login("alice", "10.0.0.1")
    await limiter.check_login("bob", "10.0.0.1")
    assert first.remaining == 1

    error = await refused(limiter, "carol", "10.0.0.1")
    assert error.code == "rate_limited"
    assert error.message.startswith("too many login attempts from address 10.0.0.1")
    assert error.headers["RateLimit-Limit"] == "2"
    assert error.headers["RateLimit-Remaining"] == "0"
    assert error.headers["RateLimit-Policy"] == "2;w=200"
    assert int(error.headers["Retry-After"]) >= 90  # one login per 100 s
    await limiter.check_login("carol", "10.0.0.2")


class FlakyStore:
    """A `LimitStore` that raises `RedisUnavailable` while `broken` (a Redis that comes back)."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0
        self._inner = MemoryStore()

    async def take(self, key: str, rule: Rule, cost: int = 1) -> Decision:
        self._check()
        return await self._inner.take(key, rule, cost)

    async def failures(self, keys: Sequence[str]) -> list[Window]:
        self._check()
        return await self._inner.failures(keys)

    async def add_failures(self, keys: Sequence[str], window_s: float) -> list[Window]:
        self._check()
        return await self._inner.add_failures(keys, window_s)

    async def forget(self, *keys: str) -> None:
        self._check()
        await self._inner.forget(*keys)

    async def add_member(
        self, key: str, member: str, window_s: float, *, cap: int, sliding: bool = False
    ) -> Window:
        self._check()
        return await self._inner.add_member(key, member, window_s, cap=cap, sliding=sliding)

    async def remove_member(self, key: str, member: str) -> None:
        self._check()
        await self._inner.remove_member(key, member)

    async def members(self, key: str) -> list[str]:
        self._check()
        return await self._inner.members(key)

    def _check(self) -> None:
        self.calls += 1
        if self.broken:
            raise RedisUnavailable("Redis at test is unavailable")


async def test_redis_down_keeps_the_limits_in_memory_then_returns_to_redis(
    aio_loop: asyncio.AbstractEventLoop,
) -> None:
    clock = FakeClock()
    async with open_keyvalue(f"redis://127.0.0.1:{closed_port()}/0") as down:
        limiter = RateLimiter(
            config(submit_burst=2, submit_rate_per_s=0.001), RedisStore(down), clock=clock
        )
        decisions = [await limiter.check_submission("alice") for _ in range(2)]
        assert [d.remaining for d in decisions] == [1, 0]  # decided, in memory
        with pytest.raises(ApiError) as caught:
            await limiter.check_submission("alice")  # still limited: per node, not off
        assert caught.value.code == "rate_limited"
    assert limiter.statistics() == LimiterStatistics(
        rate_limited={"submit": 1},
        store_errors=1,  # Redis is not asked again for REDIS_RETRY_S
        redis_failing=True,
    )

    flaky = FlakyStore()
    limiter = RateLimiter(config(), flaky, clock=clock)
    await limiter.login_failed("alice", "10.0.0.1")
    await limiter.check_login("alice", "10.0.0.1")
    assert flaky.calls == 1
    flaky.broken = False
    clock.now += REDIS_RETRY_S
    await limiter.check_login("alice", "10.0.0.1")
    assert flaky.calls == 3  # failures, then the login bucket
    assert limiter.statistics().redis_failing is False


def test_headers_follow_the_ratelimit_draft() -> None:
    allowed = Decision(allowed=True, limit=50, remaining=49, reset_s=0.1, retry_after_s=0.0)
    assert rate_limit_headers(Rule("submit", 10.0, 50), allowed) == {
        "RateLimit-Limit": "50",
        "RateLimit-Remaining": "49",
        "RateLimit-Reset": "1",
        "RateLimit-Policy": "50;w=5",
    }
    refused = Decision(allowed=False, limit=50, remaining=0, reset_s=5.0, retry_after_s=0.1)
    assert rate_limit_headers(Rule("submit", 10.0, 50), refused)["Retry-After"] == "1"


def test_a_username_lock_below_its_pair_lock_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as caught:
        config(login_max_failures_per_user=1)
    assert str(caught.value).startswith(
        "login_max_failures_per_user (1) must be at least login_max_failures_per_user_address "
        "(2): a username is locked from every address only well after one address is"
    )
    environ = {"SOVD_HUB_JWT_SECRET": JWT_SECRET, "SOVD_HUB_LOGIN_MAX_USERNAMES_PER_ADDRESS": "0"}
    with pytest.raises(ConfigError, match="login_max_usernames_per_address must be a finite"):
        load_config(ApiConfig, environ=environ)
