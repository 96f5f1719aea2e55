"""A starting actor loads the commands waiting for its vehicle, and reads them only when some may
exist: the token's lookup saw some, or this node stored one since."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trio

from hub import Command, HubConfig, InProcessBus, run_asyncio
from hub.admission import Candidates
from hub.link import new_link
from hub.node import Hub
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, command, open_memory_hub
from proto import Hello, HubMessage
from tests.support.raw_vehicle import TOKEN, VIN


class CountingJournal(MemoryJournal):
    """Counts the reads of waiting commands."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting_reads = 0

    async def waiting_commands(self, vin: str) -> list[Command]:
        self.waiting_reads += 1
        return await super().waiting_commands(vin)


@pytest.fixture
async def env() -> AsyncIterator[tuple[Hub, CountingJournal]]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN, waiting=False)  # its lookups say: nothing waits for it
    journal = CountingJournal()
    config = HubConfig(grpc_port=0, shutdown_grace_s=2)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        yield hub, journal


async def _attach_and_read(hub: Hub, candidates: Candidates, count: int) -> list[str]:
    link = new_link(VIN, hub.config)
    await hub.admission.attach(Hello(vin=VIN), candidates, link)
    kinds = []
    with trio.fail_after(5):
        for _ in range(count):
            message = await run_asyncio(link.next_outgoing)
            assert isinstance(message, HubMessage)
            kinds.append(message.WhichOneof("kind"))
    return kinds


async def test_nothing_waiting_means_no_read(env: tuple[Hub, CountingJournal]) -> None:
    hub, journal = env
    candidates = await hub.admission.authenticate(TOKEN)
    assert await _attach_and_read(hub, candidates, 1) == ["welcome"]
    assert journal.waiting_reads == 0


async def test_a_command_left_waiting_after_the_lookup_is_still_delivered(
    env: tuple[Hub, CountingJournal],
) -> None:
    hub, journal = env
    candidates = await hub.admission.authenticate(TOKEN)  # saw nothing waiting
    waits = command(VIN, expires_at=datetime.now(UTC) + timedelta(minutes=5))
    await hub.submit(waits)  # the vehicle is offline: stored, waiting
    assert await _attach_and_read(hub, candidates, 2) == ["welcome", "command"]
    assert journal.waiting_reads == 1
