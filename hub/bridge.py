"""Typed crossings between trio and asyncio (trio-asyncio ships no types).

One crossing costs about 40-55 us (DESIGN.md): cross once per transaction or
per connection, never per message on a hot path. `crossings()` counts them,
for the process (there is one bridge per process: its trio-asyncio loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import trio_asyncio

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Crossings:
    """Bridge crossings this process has made since it started."""

    to_asyncio: int
    to_trio: int


_counts = [0, 0]  # to asyncio, to trio


def crossings() -> Crossings:
    """How many times trio called into asyncio and asyncio into trio."""
    return Crossings(*_counts)


async def run_asyncio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From a trio task, await the asyncio coroutine function `fn(*args, **kwargs)`.

    Cancelling the trio caller cancels the asyncio task.
    """
    _counts[0] += 1
    result: T = await trio_asyncio.aio_as_trio(fn)(*args, **kwargs)
    return result


async def run_trio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From an asyncio task, await the trio async function `fn(*args, **kwargs)`.

    Cancelling the asyncio caller cancels the trio task.
    """
    _counts[1] += 1
    result: T = await trio_asyncio.trio_as_aio(fn)(*args, **kwargs)
    return result
