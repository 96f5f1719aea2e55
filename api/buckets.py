"""Token buckets and failure windows, in this process's memory or in Redis (shared by nodes).

Two primitives behind one small Protocol, `LimitStore`:

- a token bucket (`take`): `burst` tokens, refilled at `rate_per_s`; a take
  that finds fewer than `cost` tokens is refused and told when they will be there;
- a failure window (`add_failures` / `failures` / `forget`): a counter that
  starts with its first failure and is dropped `window_s` later;
- a member window (`add_member` / `remove_member` / `members`): a set (of
  usernames, of addresses) whose size `failures` reports as its count, opened
  by its first member and dropped `window_s` later (or `window_s` after its
  latest member, when `sliding`), holding at most `cap` members.

`MemoryStore` keeps them in bounded dicts timed by a monotonic clock;
`RedisStore` in Redis hashes and counters, each operation one atomic Lua
script (one bridge crossing, one round trip), timed by Redis's own `TIME` so
that nodes with skewed clocks still share one bucket. Keys expire once they
carry no information (a full bucket, an ended window).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from storage import KeyValue, KeyValueError

__all__ = ["Decision", "LimitStore", "MemoryStore", "RedisStore", "Rule", "Window"]

#: Keys a `MemoryStore` keeps per kind before forgetting the least recently used.
DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Rule:
    """A token bucket's shape: `burst` tokens at most, refilled at `rate_per_s`."""

    name: str
    rate_per_s: float
    burst: int

    @property
    def window_s(self) -> float:
        """Seconds an empty bucket takes to fill up again."""
        return self.burst / self.rate_per_s


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one `take`."""

    allowed: bool
    limit: int
    #: Whole tokens left after this take.
    remaining: int
    #: Seconds until the bucket is full again.
    reset_s: float
    #: Seconds until a refused take would succeed (0 when allowed).
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Window:
    """A failure counter: `count` failures in a window ending in `reset_s` seconds."""

    count: int
    reset_s: float


class LimitStore(Protocol):
    """Where buckets and failure windows live. Raises `KeyValueError` when it cannot answer."""

    async def take(self, key: str, rule: Rule, cost: int = 1) -> Decision:
        """Take `cost` tokens from the bucket `key` if it holds that many."""

    async def failures(self, keys: Sequence[str]) -> list[Window]:
        """The current window of each of `keys` (count 0 when there is none)."""

    async def add_failures(self, keys: Sequence[str], window_s: float) -> list[Window]:
        """Count one failure in each of `keys`, opening a `window_s` window where none is."""

    async def forget(self, *keys: str) -> None:
        """Drop the windows `keys`."""

    async def add_member(
        self, key: str, member: str, window_s: float, *, cap: int, sliding: bool = False
    ) -> Window:
        """Add `member` to the set window `key` (unless it holds `cap`); its size and end."""

    async def remove_member(self, key: str, member: str) -> None:
        """Take `member` out of the set window `key`."""

    async def members(self, key: str) -> list[str]:
        """The members of the set window `key` (none when there is no window)."""


def decision(rule: Rule, allowed: bool, tokens: float, cost: int) -> Decision:
    """The `Decision` for a bucket left with `tokens`."""
    tokens = max(0.0, min(float(rule.burst), tokens))
    return Decision(
        allowed=allowed,
        limit=rule.burst,
        remaining=math.floor(tokens),
        reset_s=(rule.burst - tokens) / rule.rate_per_s,
        retry_after_s=0.0 if allowed else max(0.0, cost - tokens) / rule.rate_per_s,
    )


class MemoryStore:
    """Buckets and windows of this process only (the embedded default, and Redis's stand-in
    while Redis is down). Each kind keeps at most `max_keys`, least recently used first out."""

    def __init__(
        self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._windows: OrderedDict[str, tuple[float, float]] = OrderedDict()  # count, ends at
        self._sets: OrderedDict[str, tuple[set[str], float]] = OrderedDict()  # members, ends at

    def __len__(self) -> int:
        return len(self._buckets) + len(self._windows) + len(self._sets)

    async def take(self, key: str, rule: Rule, cost: int = 1) -> Decision:
        """Take `cost` tokens from the bucket `key` if it holds that many."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(rule.burst), now))
        tokens = min(float(rule.burst), tokens + max(0.0, now - at) * rule.rate_per_s)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        if tokens < rule.burst:  # a full bucket is the same as none
            self._buckets[key] = (tokens, max(at, now))
            _bound(self._buckets, self._max_keys)
        return decision(rule, allowed, tokens, cost)

    async def failures(self, keys: Sequence[str]) -> list[Window]:
        """The current window of each of `keys` (count 0 when there is none)."""
        now = self._clock()
        return [
            self._set_window(key, now) if key in self._sets else self._window(key, now)
            for key in keys
        ]

    async def add_failures(self, keys: Sequence[str], window_s: float) -> list[Window]:
        """Count one failure in each of `keys`, opening a `window_s` window where none is."""
        now = self._clock()
        windows = []
        for key in keys:
            current = self._window(key, now)
            ends_at = now + (current.reset_s if current.count else window_s)
            self._windows[key] = (current.count + 1, ends_at)
            self._windows.move_to_end(key)
            windows.append(Window(current.count + 1, ends_at - now))
        _bound(self._windows, self._max_keys)
        return windows

    async def forget(self, *keys: str) -> None:
        """Drop the windows `keys`."""
        for key in keys:
            self._windows.pop(key, None)
            self._sets.pop(key, None)

    async def add_member(
        self, key: str, member: str, window_s: float, *, cap: int, sliding: bool = False
    ) -> Window:
        """Add `member` to the set window `key` (unless it holds `cap`); its size and end."""
        now = self._clock()
        members, ends_at = self._sets.pop(key, (set(), now))
        if ends_at <= now:
            members = set()
        if not members or sliding:
            ends_at = now + window_s
        if len(members) < cap:
            members.add(member)
        self._sets[key] = (members, ends_at)
        _bound(self._sets, self._max_keys)
        return Window(len(members), ends_at - now)

    async def remove_member(self, key: str, member: str) -> None:
        """Take `member` out of the set window `key`."""
        members, _ = self._sets.get(key, (set(), 0.0))
        members.discard(member)

    async def members(self, key: str) -> list[str]:
        """The members of the set window `key` (none when there is no window)."""
        if self._set_window(key, self._clock()).count == 0:
            return []
        return sorted(self._sets[key][0])

    def _set_window(self, key: str, now: float) -> Window:
        members, ends_at = self._sets.get(key, (set(), now))
        if ends_at <= now:
            self._sets.pop(key, None)
            return Window(0, 0.0)
        return Window(len(members), ends_at - now)

    def _window(self, key: str, now: float) -> Window:
        count, ends_at = self._windows.get(key, (0, now))
        if ends_at <= now:
            self._windows.pop(key, None)
            return Window(0, 0.0)
        return Window(int(count), ends_at - now)


def _bound(entries: OrderedDict[str, Any], max_keys: int) -> None:
    while len(entries) > max_keys:
        entries.popitem(last=False)


# ARGV: rate_per_s, burst, cost, now_s ("" = Redis TIME). Returns {allowed, tokens as text}.
_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(saved[1]), tonumber(saved[2])
if not tokens or not at then
  tokens, at = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
if tokens < burst then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(at, now)))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
else
  redis.call('DEL', KEYS[1])
end
return {allowed, tostring(tokens)}
"""

# Returns {count, milliseconds left} per key (a set's count is its size).
_FAILURES = """
local out = {}
for i, key in ipairs(KEYS) do
  local count
  if redis.call('TYPE', key)['ok'] == 'set' then
    count = redis.call('SCARD', key)
  else
    count = tonumber(redis.call('GET', key) or '0')
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then count, ttl = 0, 0 end
  table.insert(out, count)
  table.insert(out, ttl)
end
return out
"""

# ARGV: window in milliseconds. Returns {count, milliseconds left} per key.
_ADD_FAILURES = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[1])
    redis.call('PEXPIRE', key, ttl)
  end
  table.insert(out, count)
  table.insert(out, ttl)
end
return out
"""

# ARGV: member, window in milliseconds, sliding (1/0), cap. Returns {size, milliseconds left}.
_ADD_MEMBER = """
local key = KEYS[1]
if redis.call('SCARD', key) < tonumber(ARGV[4]) then
  redis.call('SADD', key, ARGV[1])
end
local ttl = redis.call('PTTL', key)
if ttl < 0 or ARGV[3] == '1' then
  ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', key, ttl)
end
return {redis.call('SCARD', key), ttl}
"""


class RedisStore:
    """Buckets and windows in Redis, shared by every node on it.

    Keys are `<redis_key_prefix>ratelimit:<key>`. `clock` replaces Redis's
    `TIME` for buckets (tests); windows always use Redis's own key expiry.
    """

    def __init__(self, keyvalue: KeyValue, clock: Callable[[], float] | None = None) -> None:
        self._keyvalue = keyvalue
        self._clock = clock
        self._take = keyvalue.script(_TAKE)
        self._failures = keyvalue.script(_FAILURES)
        self._add_failures = keyvalue.script(_ADD_FAILURES)
        self._add_member = keyvalue.script(_ADD_MEMBER)
        self._remove_member = keyvalue.script("return redis.call('SREM', KEYS[1], ARGV[1])")
        self._members = keyvalue.script("return redis.call('SMEMBERS', KEYS[1])")

    def _key(self, key: str) -> str:
        return self._keyvalue.key("ratelimit", key)

    async def take(self, key: str, rule: Rule, cost: int = 1) -> Decision:
        """Take `cost` tokens from the bucket `key` if it holds that many (one round trip)."""
        now = "" if self._clock is None else repr(self._clock())
        reply = await self._take([self._key(key)], [repr(rule.rate_per_s), rule.burst, cost, now])
        match reply:
            case [int(allowed), bytes(tokens)]:
                return decision(rule, allowed == 1, float(tokens), cost)
        raise KeyValueError(f"Redis at {self._keyvalue.where} answered a take with {reply!r}")

    async def failures(self, keys: Sequence[str]) -> list[Window]:
        """The current window of each of `keys` (one round trip for all)."""
        return self._windows(await self._failures([self._key(k) for k in keys], []), len(keys))

    async def add_failures(self, keys: Sequence[str], window_s: float) -> list[Window]:
        """Count one failure in each of `keys` (one round trip for all)."""
        window_ms = max(1, math.ceil(window_s * 1000))
        reply = await self._add_failures([self._key(k) for k in keys], [window_ms])
        return self._windows(reply, len(keys))

    async def forget(self, *keys: str) -> None:
        """Drop the windows `keys` (one round trip)."""
        await self._keyvalue.delete(*(self._key(k) for k in keys))

    async def add_member(
        self, key: str, member: str, window_s: float, *, cap: int, sliding: bool = False
    ) -> Window:
        """Add `member` to the set window `key` (unless it holds `cap`); one round trip."""
        window_ms = max(1, math.ceil(window_s * 1000))
        reply = await self._add_member(
            [self._key(key)], [member, window_ms, 1 if sliding else 0, cap]
        )
        return self._windows(reply, 1)[0]

    async def remove_member(self, key: str, member: str) -> None:
        """Take `member` out of the set window `key`."""
        await self._remove_member([self._key(key)], [member])

    async def members(self, key: str) -> list[str]:
        """The members of the set window `key` (one round trip)."""
        reply = await self._members([self._key(key)], [])
        if isinstance(reply, list) and all(isinstance(m, bytes) for m in reply):
            return sorted(m.decode() for m in reply)
        raise KeyValueError(f"Redis at {self._keyvalue.where} answered {reply!r}")

    def _windows(self, reply: object, expected: int) -> list[Window]:
        if (
            isinstance(reply, list)
            and len(reply) == 2 * expected
            and all(isinstance(n, int) for n in reply)
        ):
            pairs = zip(reply[::2], reply[1::2], strict=True)
            return [Window(int(count), int(ms) / 1000) for count, ms in pairs]
        raise KeyValueError(f"Redis at {self._keyvalue.where} answered {reply!r}")
