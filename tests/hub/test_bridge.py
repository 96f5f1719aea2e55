"""The asyncio bridge: results, errors, cancellation and context cross both ways.

Every trio test runs hosted by `hub.run_with_asyncio` (tests/conftest.py);
the tests that need a bare `trio.run` or their own host call it themselves.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal

import pytest
import trio

from hub import crossings, run_asyncio, run_trio, run_with_asyncio

REQUEST = contextvars.ContextVar[str]("REQUEST", default="none")


async def _asyncio_double(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


async def test_a_result_and_an_error_cross_both_ways() -> None:
    before = crossings()

    async def trio_side(value: int) -> int:
        await trio.lowlevel.checkpoint()
        if value < 0:
            raise ValueError("negative")
        return value + 1

    async def asyncio_side() -> tuple[int, str]:
        result = await run_trio(trio_side, 1)
        try:
            await run_trio(trio_side, -1)
        except ValueError as error:
            return result, str(error)
        raise AssertionError("the trio error did not cross")

    assert await run_asyncio(_asyncio_double, 21) == 42
    assert await run_asyncio(asyncio_side) == (2, "negative")
    with pytest.raises(ZeroDivisionError):
        await run_asyncio(_divide_by_zero)
    after = crossings()
    assert (after.to_asyncio - before.to_asyncio, after.to_trio - before.to_trio) == (3, 2)


async def _divide_by_zero() -> float:
    await asyncio.sleep(0)
    return 1 / 0


async def test_cancelling_the_trio_caller_cancels_the_asyncio_task_and_waits_for_it() -> None:
    cleaned_up = trio.Event()

    async def asyncio_forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned_up.set()

    with trio.move_on_after(0.05) as scope:
        await run_asyncio(asyncio_forever)
    assert scope.cancelled_caught
    assert cleaned_up.is_set()


async def test_cancelling_the_asyncio_caller_cancels_the_trio_task_and_waits_for_it() -> None:
    cleaned_up = trio.Event()

    async def trio_forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.01)
            cleaned_up.set()

    async def asyncio_caller() -> str:
        try:
            await asyncio.wait_for(run_trio(trio_forever), timeout=0.05)
        except TimeoutError:
            return "timed out"
        return "finished"

    assert await run_asyncio(asyncio_caller) == "timed out"
    assert cleaned_up.is_set()


async def test_context_variables_cross_as_copies() -> None:
    REQUEST.set("r-1")

    async def asyncio_side() -> str:
        seen = REQUEST.get()
        REQUEST.set("changed in asyncio")
        return seen + "/" + await run_trio(trio_side)

    async def trio_side() -> str:
        return REQUEST.get()

    assert await run_asyncio(asyncio_side) == "r-1/changed in asyncio"
    assert REQUEST.get() == "r-1"


async def test_asyncio_callbacks_may_wake_trio_tasks_directly() -> None:
    loop = asyncio.get_running_loop()
    woken = trio.Event()
    loop.call_later(0.01, woken.set)
    with trio.fail_after(5):
        await woken.wait()


def test_the_bridge_refuses_a_trio_run_that_asyncio_does_not_host() -> None:
    with pytest.raises(RuntimeError, match=r"hub\.run_with_asyncio, not trio\.run"):
        trio.run(run_asyncio, _asyncio_double, 1)


def test_run_with_asyncio_returns_and_raises_like_trio_run() -> None:
    async def answer(value: int) -> int:
        await trio.lowlevel.checkpoint()
        return await run_asyncio(_asyncio_double, value)

    async def fail() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("lost")

    assert run_with_asyncio(answer, 4) == 8
    with pytest.raises(KeyError, match="lost"):
        run_with_asyncio(fail)


def test_ctrl_c_cancels_the_trio_run_and_raises_keyboard_interrupt() -> None:
    finished: list[str] = []

    async def main() -> None:
        try:
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
            await trio.sleep(10)
        finally:
            finished.append("cleaned up")

    with pytest.raises(KeyboardInterrupt):
        run_with_asyncio(main)
    assert finished == ["cleaned up"]
