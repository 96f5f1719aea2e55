"""Supervision: run a child again when it crashes, within a restart budget.

A child is declared with a restart policy (Erlang/OTP's names, as in triotp):
`PERMANENT` children are restarted whenever they end, `TRANSIENT` ones only
when they crash, `TEMPORARY` ones never. A child that crashes more than
`max_restarts` times within `window_s` seconds is given up on: `supervise`
raises `GaveUp`. Time is trio's clock, so tests drive it with `autojump_clock`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from hub.errors import GaveUp

T = TypeVar("T")


class Restart(enum.Enum):
    """When a supervised child is started again."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@dataclass
class RestartBudget:
    """At most `max_restarts` restarts in any `window_s` seconds."""

    max_restarts: int
    window_s: float
    _restarts: list[float] = field(default_factory=list)  # a deque costs 0.74 KiB

    @property
    def recent(self) -> int:
        """Restarts recorded within the last window (as of the last `spend`)."""
        return len(self._restarts)

    def spend(self, now: float) -> bool:
        """Record a restart at `now`; False when that exceeds the budget."""
        while self._restarts and self._restarts[0] <= now - self.window_s:
            self._restarts.pop(0)
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True


async def supervise(
    child: Callable[[], Awaitable[T]],
    *,
    policy: Restart,
    budget: RestartBudget,
    on_restart: Callable[[Exception], Awaitable[None]],
) -> T:
    """Run `child` under `policy`; returns what it returned when it is not restarted.

    `on_restart(crash)` runs before each restart. Raises `GaveUp` (from the
    crash) when the budget is spent or the policy is `TEMPORARY`.
    Cancellation is never caught: it ends the child and the supervisor.
    """
    while True:
        try:
            result = await child()
        except Exception as crash:
            if policy is Restart.TEMPORARY or not budget.spend(trio.current_time()):
                raise GaveUp(
                    f"crashed again after {budget.recent} restarts in {budget.window_s:g} s: "
                    f"{crash!r}"
                ) from crash
            await on_restart(crash)
            continue
        if policy is not Restart.PERMANENT:
            return result
        if not budget.spend(trio.current_time()):
            raise GaveUp(f"a permanent child ended {budget.max_restarts + 1} times too quickly")
        await on_restart(RuntimeError("ended"))
