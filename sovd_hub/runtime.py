"""Process bootstrap: trio hosted on one asyncio loop (`hub.run_with_asyncio`), signals, logs."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, cast

import structlog
import trio

from hub import raise_open_file_limit, run_with_asyncio

log = structlog.get_logger("sovd_hub.runtime")


def run(main: Callable[[trio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` in trio, hosted by one asyncio loop (`hub.run_with_asyncio`).

    `stop` is set on the first SIGINT or SIGTERM: `main` should then shut
    down politely (its own bounds apply). A second signal cancels it. An
    error that ends the run alone is raised as itself, not wrapped in the
    exception groups of the nurseries it crossed. The soft open-file limit is
    raised to the hard one first: each connected vehicle holds a file.
    """
    before, after = raise_open_file_limit()
    if after != before:
        log.info("hub.open_file_limit_raised", before=before, after=after)
    try:
        run_with_asyncio(_run, main)
    except BaseExceptionGroup as group:
        leaf = _only_leaf(group)
        if leaf is None:
            raise
        raise leaf from None


def _only_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None


async def _run(main: Callable[[trio.Event], Awaitable[None]]) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, stop, nursery.cancel_scope)
        await main(stop)
        nursery.cancel_scope.cancel()


async def _watch_signals(stop: trio.Event, scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if stop.is_set():
                log.warning("hub.stop_forced", signal=signal.Signals(signum).name)
                scope.cancel()
                return
            log.info("hub.stopping", signal=signal.Signals(signum).name)
            stop.set()


class _Stdout:
    """Whatever `sys.stdout` is when a line is written (loggers are cached on first use)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout, ours (structlog) and the libraries' (stdlib logging) alike.

    Each line carries the context bound with `structlog.contextvars` in its
    task: `correlation_id` and `user` in an API request, `vin` in a vehicle's
    actor, `command_id` where one is known.
    """
    stdout = cast(TextIO, _Stdout())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
