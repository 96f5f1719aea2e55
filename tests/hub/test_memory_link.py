"""The in-memory link admits a vehicle as the gateway does; its hooks report what the hub did."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hub import (
    CommandStatus,
    DisconnectReason,
    HubConfig,
    InProcessBus,
    LinkVerdict,
    VehicleRefused,
)
from hub.node import Hub
from hub.testing import (
    MemoryAudit,
    MemoryDirectory,
    MemoryJournal,
    command,
    connect_memory_link,
    open_memory_hub,
)
from proto import Heartbeat, VehicleMessage
from tests.support.raw_vehicle import TOKEN, VIN

Env = tuple[Hub, MemoryJournal]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    journal = MemoryJournal()
    config = HubConfig(grpc_port=0, max_vehicle_messages_per_s=5, shutdown_grace_s=2)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        yield hub, journal


async def test_a_command_reaches_the_link_and_its_answer_ends_it(env: Env) -> None:
    hub, journal = env
    async with connect_memory_link(hub, VIN, TOKEN) as vehicle:
        assert vehicle.received[0].WhichOneof("kind") == "welcome"
        sent = command(VIN)
        hub.dispatch(sent)
        with trio.fail_after(5):
            await vehicle.wait_received(2)
            assert vehicle.command_ids == [str(sent.id)]
            await vehicle.answer(str(sent.id), b'{"dtcs": []}')
            await journal.wait_status(sent.id, CommandStatus.SUCCEEDED)
    assert [e.body for e in journal.events] == [{"dtcs": []}]


async def test_a_broken_link_lets_the_vehicle_go_and_interrupts_its_commands(env: Env) -> None:
    hub, journal = env
    async with connect_memory_link(hub, VIN, TOKEN) as vehicle:
        running = command(VIN)
        hub.dispatch(running)
        with trio.fail_after(5):
            await vehicle.wait_received(2)
            vehicle.break_link()
            offline = await vehicle.wait_offline()
            await journal.wait_status(running.id, CommandStatus.INTERRUPTED)
        assert (offline.reason, offline.detail) == (
            DisconnectReason.CONNECTION_LOST,
            "the connection was lost",
        )
        assert hub.connection(VIN) is None


async def test_heartbeats_are_answered_by_the_link_and_a_flood_ends_it(env: Env) -> None:
    hub, _ = env
    async with connect_memory_link(hub, VIN, TOKEN) as vehicle:
        beat = VehicleMessage(heartbeat=Heartbeat())
        with trio.fail_after(5):
            await vehicle.send(beat)
            answered = await vehicle.wait_received(2)
            assert answered[1].WhichOneof("kind") == "heartbeat"
            for _ in range(5):  # past max_vehicle_messages_per_s
                await vehicle.send(beat)
            ended = await vehicle.wait_ended()
            offline = await vehicle.wait_offline()
    assert ended.verdict is LinkVerdict.RATE_LIMITED
    assert offline.reason is DisconnectReason.PROTOCOL_ERROR


async def test_a_wrong_token_is_refused_as_the_gateway_refuses_it(env: Env) -> None:
    hub, _ = env
    with pytest.raises(VehicleRefused) as refused:
        async with connect_memory_link(hub, VIN, "not-the-token"):
            pass
    assert refused.value.verdict is LinkVerdict.UNAUTHENTICATED
