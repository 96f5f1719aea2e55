"""Trio as a guest on a native asyncio loop, and the typed crossings between them.

The process has one thread and one event loop: `run_with_asyncio` starts a
plain asyncio loop (`asyncio.run`) and runs trio inside it in guest mode
(`trio.lowlevel.start_guest_run`). The asyncio libraries (grpclib, asyncpg,
redis) run their callbacks on asyncio's own C-accelerated loop; trio's
scheduler runs as callbacks on the same loop, and waits for its own I/O in a
helper thread only when it has nothing to run.

Why not trio-asyncio: it runs every asyncio callback through trio (a cancel
scope each, about 170 callbacks per command), 24-29 % of the hub's CPU. On
this machine the `baseline` bench measured 76.2 us per gRPC message with
trio-asyncio against 34.2 us in guest mode, 0.99x pure-asyncio grpclib;
`commands --rate 100` went from 8.28 to 7.53 ms of hub CPU per command,
p99 308 to 188 ms (ARCHITECTURE.md, "The loop"). A dedicated asyncio thread
was the other candidate; it pays a thread hand-off per crossing and the GIL
between two busy threads, where guest mode pays nothing: both sides share one
thread, so an asyncio callback may call trio's synchronous APIs
(`trio.Event.set`, `MemorySendChannel.send_nowait`) directly.

Do not import `trio_asyncio` anywhere in this process: importing it patches
`asyncio.get_running_loop` for everyone.

A crossing is one asyncio task or one trio system task: cheap, but cross
once per transaction or per connection, not per message. `crossings()`
counts them for the process.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import outcome
import structlog
import trio

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("hub.bridge")

_HOSTED: trio.lowlevel.RunVar[bool] = trio.lowlevel.RunVar("hub.bridge.hosted", default=False)


@dataclass(frozen=True, slots=True)
class Crossings:
    """Bridge crossings this process has made since it started."""

    to_asyncio: int
    to_trio: int


_counts = [0, 0]  # to asyncio, to trio


def crossings() -> Crossings:
    """How many times trio called into asyncio and asyncio into trio."""
    return Crossings(*_counts)


def run_with_asyncio(
    async_fn: Callable[..., Awaitable[T]],
    *args: Any,
    clock: trio.abc.Clock | None = None,
    instruments: Sequence[trio.abc.Instrument] = (),
) -> T:
    """`trio.run(async_fn, *args)`, hosted by a new asyncio loop in this thread.

    Its signature is `trio.run`'s, so pytest-trio can use it as a runner.
    Cancelling the host (Ctrl-C under `asyncio.run`) cancels `async_fn` and
    waits for it to finish.
    """
    return asyncio.run(_host(async_fn, args, clock, tuple(instruments)))


async def _host(
    async_fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    clock: trio.abc.Clock | None,
    instruments: tuple[trio.abc.Instrument, ...],
) -> T:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_asyncio_exception)
    done: asyncio.Future[outcome.Outcome[T]] = loop.create_future()
    scope = trio.CancelScope()

    def finish(result: outcome.Outcome[T]) -> None:
        if not done.done():  # a second Ctrl-C may have cancelled the wait
            done.set_result(result)

    trio.lowlevel.start_guest_run(
        _guest,
        scope,
        async_fn,
        args,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=finish,
        clock=clock,
        instruments=instruments,
    )
    try:
        result = await asyncio.shield(done)
    except asyncio.CancelledError:
        scope.cancel()
        await done
        raise
    return result.unwrap()


async def _guest(
    scope: trio.CancelScope, async_fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
) -> T:
    _HOSTED.set(True)
    with scope:
        return await async_fn(*args)
    raise asyncio.CancelledError("the asyncio host was cancelled")


def _check_hosted() -> None:
    if not _HOSTED.get():
        raise RuntimeError(
            "the asyncio bridge needs trio hosted by hub.run_with_asyncio, not trio.run"
        )


async def run_asyncio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From a trio task, await the asyncio coroutine function `fn(*args, **kwargs)`.

    It runs as an asyncio task with a copy of the caller's context variables.
    Cancelling the trio caller cancels the asyncio task and waits for it.
    """
    _check_hosted()
    _counts[0] += 1
    task = asyncio.ensure_future(fn(*args, **kwargs))
    finished = trio.Event()
    task.add_done_callback(lambda _: finished.set())
    try:
        await finished.wait()
    finally:
        if not task.done():
            task.cancel()
            with trio.CancelScope(shield=True):
                await finished.wait()
            if not task.cancelled():
                task.exception()  # seen: the trio caller's cancellation wins
    return task.result()


async def run_trio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From an asyncio task, await the trio async function `fn(*args, **kwargs)`.

    It runs as a trio system task with a copy of the caller's context
    variables. Cancelling the asyncio caller cancels the trio task and waits
    for it.
    """
    _check_hosted()
    _counts[1] += 1
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    scope = trio.CancelScope()

    async def task() -> None:
        try:
            with scope:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as error:  # handed to the asyncio caller
                    future.set_exception(error)
                    return
                future.set_result(result)
        finally:
            if not future.done():
                future.cancel()

    trio.lowlevel.spawn_system_task(task, context=contextvars.copy_context())
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        scope.cancel()
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # seen: the asyncio caller's cancellation wins
        raise


def _log_asyncio_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log a stray asyncio error (an unretrieved task exception, a failed callback)."""
    exc = context.get("exception")
    log.error(
        "asyncio.error",
        message=context.get("message"),
        exc_info=exc if isinstance(exc, BaseException) else None,
    )
