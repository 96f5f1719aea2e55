"""Rate limits and login throttling (token buckets; in memory, or in Redis shared by nodes).

Limits (settings of `ApiConfig`):

- command submission, per user: a bucket of `submit_burst` refilled at
  `submit_rate_per_s` (`limit_submissions`, a route decorator);
- login attempts, per client address: `login_burst` at `login_rate_per_s`;
- failed logins (lockout), within `login_failure_window_s` of the first:
  `login_max_failures_per_user_address` failures of one username from one
  address lock that pair (the owner elsewhere is not locked out);
  `login_max_failures_per_user` of one username from any address lock the
  username; failures for `login_max_usernames_per_address` different usernames
  from one address (credential stuffing; a username leaves the count when it
  logs in from there) lock the address. A success forgets its pair's failures
  only; `unlock` (an admin, or re-enabling the user) forgets all of a user's.

A refusal is a 429 in the error envelope (`rate_limited` or
`too_many_failed_logins`) with `Retry-After` (whole seconds, at least 1).
Every response of a limited route carries `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset` (seconds until the bucket is full)
and `RateLimit-Policy` (`<burst>;w=<seconds to refill it>`), after
draft-ietf-httpapi-ratelimit-headers-06.

With Redis configured the buckets live there, shared by every node (one Lua
script per decision, timed by Redis). When Redis fails, the limiter neither
stops the API nor lifts the limits: it logs, counts, and uses this node's
memory for `REDIS_RETRY_S` before trying Redis again, so the limits hold per
node while Redis is away; `/health/ready` reports Redis meanwhile.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ParamSpec, TypeVar

import structlog
from quart import Quart, Response, current_app, g

from api.access import current_principal
from api.buckets import Decision, LimitStore, MemoryStore, RedisStore, Rule
from api.config import ApiConfig
from api.errors import ApiError
from api.openapi import errors
from storage import KeyValue, KeyValueError

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("api.ratelimit")

#: After a Redis failure, decide in memory for this long before trying Redis again.
REDIS_RETRY_S = 5.0
#: Addresses remembered per username for `unlock` (their pairs' windows end on their own).
MAX_ADDRESSES_PER_USER = 1000
_KEY = "sovd_hub.ratelimit"


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """429s by limit (`submit`, `login`, `login_failures`), decisions Redis failed to
    make, and whether decisions are in memory for now."""

    rate_limited: Mapping[str, int]
    store_errors: int
    redis_failing: bool


class RateLimiter:
    """The node's limits: decisions from Redis when configured, else (or meanwhile) memory."""

    def __init__(
        self,
        config: ApiConfig,
        redis: LimitStore | None = None,
        *,
        memory: MemoryStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.submit_rule = Rule("submit", config.submit_rate_per_s, config.submit_burst)
        self.login_rule = Rule("login", config.login_rate_per_s, config.login_burst)
        self._redis = redis
        self._memory = memory or MemoryStore()
        self._clock = clock
        self._redis_retry_at = -math.inf
        self._redis_failing = False
        self._store_errors = 0
        self._refused: dict[str, int] = {}

    def statistics(self) -> LimiterStatistics:
        """A frozen snapshot of the counters since start (see `LimiterStatistics`)."""
        return LimiterStatistics(
            rate_limited=MappingProxyType(dict(self._refused)),
            store_errors=self._store_errors,
            redis_failing=self._redis_failing,
        )

    async def take(self, rule: Rule, subject: str) -> Decision:
        """Take one token of `rule` for `subject` (a username, an address)."""
        return await self._call(lambda store: store.take(f"{rule.name}:{subject}", rule))

    async def check_submission(self, username: str) -> Decision:
        """Take a token of `username`'s submission bucket; raise a 429 `ApiError` if empty."""
        rule = self.submit_rule
        decision = await self.take(rule, username)
        if not decision.allowed:
            self._refuse(rule.name)
            raise ApiError(
                429,
                "rate_limited",
                f"too many command submissions by {username} (at most {rule.burst} at once, "
                f"{rule.rate_per_s:g} per second); try again in "
                f"{_whole_seconds(decision.retry_after_s)} s",
                headers=rate_limit_headers(rule, decision),
            )
        return decision

    async def check_login(self, username: str, address: str) -> Decision:
        """Raise a 429 `ApiError` if this login attempt is refused; else the address's bucket."""
        keys = _FailureKeys(username, address)
        pair, user, addr = await self._call(
            lambda store: store.failures([keys.pair, keys.user, keys.address_users])
        )
        config = self.config
        window_s = config.login_failure_window_s
        for window, most, what in (
            (pair, config.login_max_failures_per_user_address, "failed logins for user "
             f"{username!r} from address {address}"),
            (user, config.login_max_failures_per_user, "failed logins for user "
             f"{username!r} from all addresses"),
            (addr, config.login_max_usernames_per_address, "usernames with failed logins "
             f"from address {address}"),
        ):  # fmt: skip
            if window.count >= most:
                retry_after = _whole_seconds(window.reset_s)
                self._refuse("login_failures")
                raise ApiError(
                    429,
                    "too_many_failed_logins",
                    f"{window.count} {what} within {window_s:g} s (at most {most}); try again "
                    f"in {retry_after} s, or ask an admin to unlock the account",
                    headers={"Retry-After": str(retry_after)},
                )
        decision = await self.take(self.login_rule, address)
        if not decision.allowed:
            self._refuse(self.login_rule.name)
            raise ApiError(
                429,
                "rate_limited",
                f"too many login attempts from address {address} (at most {self.login_rule.burst}"
                f" at once, {self.login_rule.rate_per_s:g} per second); try again in "
                f"{_whole_seconds(decision.retry_after_s)} s",
                headers=rate_limit_headers(self.login_rule, decision),
            )
        return decision

    async def login_failed(self, username: str, address: str) -> None:
        """Count one failed login of `username` from `address` (pair, username, address)."""
        keys = _FailureKeys(username, address)
        window_s = self.config.login_failure_window_s
        cap = self.config.login_max_usernames_per_address

        async def count(store: LimitStore) -> None:
            await store.add_failures([keys.pair, keys.user], window_s)
            await store.add_member(keys.address_users, username, window_s, cap=cap)
            await store.add_member(
                keys.user_addresses, address, window_s, cap=MAX_ADDRESSES_PER_USER, sliding=True
            )

        await self._call(count)

    async def login_succeeded(self, username: str, address: str) -> None:
        """Forget the failures of `username` from `address` (the username's own count stays:
        the owner logging in must not give a guesser elsewhere a fresh allowance)."""
        keys = _FailureKeys(username, address)

        async def forget(store: LimitStore) -> None:
            await store.forget(keys.pair)
            await store.remove_member(keys.address_users, username)

        await self._call(forget)

    async def unlock(self, username: str) -> int:
        """Forget every failed login of `username` (from every address); how many addresses
        had failures."""
        keys = _FailureKeys(username, "")

        async def forget(store: LimitStore) -> int:
            addresses = await store.members(keys.user_addresses)
            pairs = [_FailureKeys(username, address).pair for address in addresses]
            await store.forget(keys.user, keys.user_addresses, *pairs)
            return len(addresses)

        return await self._call(forget)

    def _refuse(self, limit: str) -> None:
        self._refused[limit] = self._refused.get(limit, 0) + 1

    async def _call(self, operation: Callable[[LimitStore], Awaitable[T]]) -> T:
        if self._redis is not None and self._clock() >= self._redis_retry_at:
            try:
                result = await operation(self._redis)
            except KeyValueError as exc:
                self._store_errors += 1
                self._redis_retry_at = self._clock() + REDIS_RETRY_S
                if not self._redis_failing:
                    self._redis_failing = True
                    log.warning(
                        "ratelimit.redis_failed",
                        error=str(exc),
                        detail="limits are kept in this node's memory until Redis answers",
                        retry_in_s=REDIS_RETRY_S,
                    )
            else:
                if self._redis_failing:
                    self._redis_failing = False
                    log.info("ratelimit.redis_recovered")
                return result
        return await operation(self._memory)


@dataclass(frozen=True, slots=True)
class _FailureKeys:
    """Where the failed logins of one attempt are counted."""

    username: str
    address: str

    @property
    def pair(self) -> str:
        # The username's length keeps "a:b" from "a" + "b:..." (addresses hold colons).
        return f"login-failures:pair:{len(self.username)}:{self.username}:{self.address}"

    @property
    def user(self) -> str:
        return f"login-failures:user:{self.username}"

    @property
    def address_users(self) -> str:
        return f"login-failures:address-users:{self.address}"

    @property
    def user_addresses(self) -> str:
        return f"login-failures:user-addresses:{self.username}"


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def rate_limit_headers(rule: Rule, decision: Decision) -> dict[str, str]:
    """`RateLimit-*` headers of `decision` (and `Retry-After` when it refuses)."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_s)),
        "RateLimit-Policy": f"{rule.burst};w={math.ceil(rule.window_s)}",
    }
    if not decision.allowed:
        headers["Retry-After"] = str(_whole_seconds(decision.retry_after_s))
    return headers


def install_rate_limits(app: Quart, config: ApiConfig, keyvalue: KeyValue | None) -> None:
    """Give `app` its `RateLimiter` (on Redis when `keyvalue` is given) and the hook that
    adds `RateLimit-*` headers to every response a limit was checked for."""
    app.extensions[_KEY] = RateLimiter(config, RedisStore(keyvalue) if keyvalue else None)
    app.after_request(_add_headers)


def limiter() -> RateLimiter:
    """The `RateLimiter` of the running app."""
    value = current_app.extensions[_KEY]
    assert isinstance(value, RateLimiter)
    return value


async def _add_headers(response: Response) -> Response:
    checked = g.get("rate_limit")
    if isinstance(checked, tuple):
        rule, decision = checked
        response.headers.update(rate_limit_headers(rule, decision))
    return response


def limit_submissions(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate a route: one token of the user's submission bucket per request, else 429.

    Put it below `requires` (it needs the principal) and above `validate_request`,
    so that invalid submissions count too. Documents the 429 in the OpenAPI document.
    """

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        rules = limiter()
        decision = await rules.check_submission(current_principal().username)
        g.rate_limit = (rules.submit_rule, decision)
        return await handler(*args, **kwargs)

    return errors(429)(wrapper)


async def check_login(username: str, address: str) -> None:
    """Raise a 429 `ApiError` (with Retry-After) when logins of `username` from `address` are
    locked after repeated failures, or over the per-address login rate."""
    rules = limiter()
    decision = await rules.check_login(username, address)
    g.rate_limit = (rules.login_rule, decision)


async def login_failed(username: str, address: str) -> None:
    """Count one failed login of `username` from `address`."""
    await limiter().login_failed(username, address)


async def login_succeeded(username: str, address: str) -> None:
    """Forget the failures of `username` from `address` after a successful login."""
    await limiter().login_succeeded(username, address)


async def unlock(username: str) -> int:
    """Forget every failed login of `username`; how many addresses had some."""
    return await limiter().unlock(username)
