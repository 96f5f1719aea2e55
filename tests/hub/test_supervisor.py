"""Supervision: restart policies and the restart budget, on trio's fake clock."""

from __future__ import annotations

import pytest
import trio

from hub.errors import GaveUp
from hub.supervisor import Restart, RestartBudget, supervise


class Flaky:
    """Crashes `crashes` times, then returns "done"; counts its runs and restarts."""

    def __init__(self, crashes: int, pause_s: float = 0.0) -> None:
        self.crashes = crashes
        self.pause_s = pause_s
        self.runs = 0
        self.restarts: list[str] = []

    async def run(self) -> str:
        self.runs += 1
        await trio.sleep(self.pause_s)
        if self.runs <= self.crashes:
            raise RuntimeError(f"crash {self.runs}")
        return "done"

    async def restarted(self, crash: Exception) -> None:
        self.restarts.append(str(crash))


async def test_a_transient_child_is_restarted_after_a_crash(autojump_clock: trio.abc.Clock) -> None:
    child = Flaky(crashes=2)
    result = await supervise(
        child.run, policy=Restart.TRANSIENT, budget=RestartBudget(3, 60), on_restart=child.restarted
    )
    assert (result, child.runs, child.restarts) == ("done", 3, ["crash 1", "crash 2"])


async def test_too_many_crashes_in_the_window_give_up(autojump_clock: trio.abc.Clock) -> None:
    child = Flaky(crashes=10)
    with pytest.raises(GaveUp, match=r"crashed again after 3 restarts in 60 s") as gave_up:
        await supervise(
            child.run,
            policy=Restart.TRANSIENT,
            budget=RestartBudget(3, 60),
            on_restart=child.restarted,
        )
    assert isinstance(gave_up.value.__cause__, RuntimeError) and child.runs == 4


async def test_crashes_spread_beyond_the_window_are_forgiven(
    autojump_clock: trio.abc.Clock,
) -> None:
    child = Flaky(crashes=5, pause_s=30)  # one crash every 30 s: at most 2 in any 60 s
    result = await supervise(
        child.run, policy=Restart.TRANSIENT, budget=RestartBudget(2, 60), on_restart=child.restarted
    )
    assert (result, child.runs) == ("done", 6)


async def test_a_temporary_child_is_never_restarted() -> None:
    child = Flaky(crashes=1)
    with pytest.raises(GaveUp):
        await supervise(
            child.run,
            policy=Restart.TEMPORARY,
            budget=RestartBudget(3, 60),
            on_restart=child.restarted,
        )
    assert child.runs == 1


async def test_a_permanent_child_is_restarted_when_it_ends(autojump_clock: trio.abc.Clock) -> None:
    child = Flaky(crashes=0)
    with pytest.raises(GaveUp, match="a permanent child ended 3 times too quickly"):
        await supervise(
            child.run,
            policy=Restart.PERMANENT,
            budget=RestartBudget(2, 60),
            on_restart=child.restarted,
        )
    assert child.runs == 3


async def test_cancellation_is_not_a_crash(autojump_clock: trio.abc.Clock) -> None:
    child = Flaky(crashes=0, pause_s=10)
    with trio.move_on_after(1):
        await supervise(
            child.run,
            policy=Restart.TRANSIENT,
            budget=RestartBudget(3, 60),
            on_restart=child.restarted,
        )
    assert (child.runs, child.restarts) == (1, [])
