"""Rate limits and login throttling (token buckets; in memory, or in Redis shared by nodes).

STUB: the interface the login route calls. The rate-limit work fills it in.
"""

from __future__ import annotations


async def check_login(username: str, address: str) -> None:
    """Raise a 429 `ApiError` (with Retry-After) when logins for `username` or from
    `address` are throttled after repeated failures, or over the per-address login rate."""


async def login_failed(username: str, address: str) -> None:
    """Count one failed login against `username` and against `address`."""


async def login_succeeded(username: str, address: str) -> None:
    """Forget `username`'s failures after a successful login."""
