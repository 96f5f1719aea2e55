"""Typed crossings between trio and asyncio (trio-asyncio ships no types).

One crossing costs about 40-55 us (DESIGN.md): cross once per transaction or
per connection, never per message on a hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import trio_asyncio

P = ParamSpec("P")
T = TypeVar("T")


async def run_asyncio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From a trio task, await the asyncio coroutine function `fn(*args, **kwargs)`.

    Cancelling the trio caller cancels the asyncio task.
    """
    result: T = await trio_asyncio.aio_as_trio(fn)(*args, **kwargs)
    return result


async def run_trio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From an asyncio task, await the trio async function `fn(*args, **kwargs)`.

    Cancelling the asyncio caller cancels the trio task.
    """
    result: T = await trio_asyncio.trio_as_aio(fn)(*args, **kwargs)
    return result
