"""The simulated fleet against real hubs: failover between endpoints, crash loops."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from bench.simulator import Behaviour, SimulatedVehicle, VehicleSpec, keep_connected, run_fleet
from hub import Hub, HubConfig, InProcessBus, run_asyncio
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub

VIN, OTHER = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"


@pytest.fixture
def directory() -> MemoryDirectory:
    directory = MemoryDirectory()
    directory.add(VIN, "t1")
    directory.add(OTHER, "t2")
    return directory


async def _serve_hub(
    directory: MemoryDirectory,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[Hub] = trio.TASK_STATUS_IGNORED,
) -> None:
    journal = MemoryJournal()
    config = HubConfig(grpc_port=0, shutdown_grace_s=1)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        task_status.started(hub)
        await stop.wait()


@asynccontextmanager
async def _hubs(directory: MemoryDirectory) -> AsyncIterator[tuple[Hub, Hub, trio.Event]]:
    """Two hubs on their own ports; setting the event stops the first one."""
    stop_first, stop_both = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        first: Hub = await nursery.start(_serve_hub, directory, stop_first)
        second: Hub = await nursery.start(_serve_hub, directory, stop_both)
        yield first, second, stop_first
        stop_first.set()
        stop_both.set()
        nursery.cancel_scope.cancel()


async def _until(check: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        for _ in range(1000):
            if check():
                return
            await trio.sleep(0.01)


@pytest.mark.slow
async def test_a_vehicle_fails_over_to_the_next_hub(directory: MemoryDirectory) -> None:
    async with _hubs(directory) as (first, second, stop_first), trio.open_nursery() as nursery:
        endpoints = ("127.0.0.1", first.grpc_port, Behaviour())
        fleet = functools.partial(
            run_fleet, [VehicleSpec(VIN, "t1")], *endpoints, [("127.0.0.1", second.grpc_port)]
        )
        nursery.start_soon(run_asyncio, fleet)
        await _until(lambda: first.connection(VIN) is not None)
        stop_first.set()  # the first hub shuts down: UNAVAILABLE, then unreachable
        await _until(lambda: second.connection(VIN) is not None)
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_crash_looping_vehicle_does_not_disturb_the_hub(
    directory: MemoryDirectory,
) -> None:
    async with _hubs(directory) as (hub, _, _), trio.open_nursery() as nursery:
        looping = SimulatedVehicle(
            VehicleSpec(VIN, "t1"), "127.0.0.1", hub.grpc_port, Behaviour(fault="crash_loop")
        )
        steady = SimulatedVehicle(VehicleSpec(OTHER, "t2"), "127.0.0.1", hub.grpc_port)
        nursery.start_soon(run_asyncio, functools.partial(keep_connected, looping))
        nursery.start_soon(run_asyncio, functools.partial(keep_connected, steady))
        await _until(lambda: looping.sessions >= 3)
        assert hub.connection(OTHER) is not None and steady.sessions == 1
        nursery.cancel_scope.cancel()
