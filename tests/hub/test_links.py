"""Link admission and link faults, through real gRPC with a hand-driven vehicle."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpclib.client
import pytest
import trio
import trio.lowlevel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hub import (
    Command,
    CommandStatus,
    DisconnectReason,
    HubConfig,
    InProcessBus,
    MailboxFull,
    StatusChange,
    VehicleStatus,
    command_topic,
    vehicle_topic,
)
from hub.bridge import run_asyncio
from hub.node import Hub
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub
from hub.testing import command as new_command
from proto import Hello, VehicleLinkStub, VehicleMessage
from tests.support.raw_vehicle import OTHER, TOKEN, VIN, RawVehicle


@pytest.fixture
async def env() -> AsyncIterator[tuple[Hub, MemoryDirectory, MemoryJournal]]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    directory.add(OTHER, "token-2", enabled=False)
    journal = MemoryJournal()
    config = HubConfig(grpc_port=0, heartbeat_interval_s=0.1, mailbox_size=1, shutdown_grace_s=2)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        yield hub, directory, journal


def _command(timeout_s: float = 30) -> Command:
    return new_command(VIN, timeout_s=timeout_s)


async def _refused(hub: Hub, vehicle: RawVehicle, first: VehicleMessage | None = None) -> GRPCError:
    with trio.fail_after(5):
        await vehicle.run(first)
    assert vehicle.ended is not None and not vehicle.welcomed.is_set()
    return vehicle.ended


@pytest.mark.parametrize(
    ("vin", "token", "status", "message"),
    [
        (VIN, None, Status.UNAUTHENTICATED, "missing vehicle token"),
        (VIN, "wrong", Status.UNAUTHENTICATED, "unknown vehicle token"),
        (
            "WVWZZZ1JZXW999999",
            TOKEN,
            Status.UNAUTHENTICATED,
            "wrong token for VIN WVWZZZ1JZXW999999",
        ),
        (OTHER, "token-2", Status.PERMISSION_DENIED, f"vehicle {OTHER} is disabled"),
    ],
)
async def test_refusals_say_why_and_the_hub_keeps_serving(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
    vin: str,
    token: str | None,
    status: Status,
    message: str,
) -> None:
    hub, _, _ = env
    refusal = await _refused(hub, RawVehicle(hub.grpc_port, vin, token))
    assert refusal.status is status and message in (refusal.message or "")
    good = RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(good.run)
        with trio.fail_after(5):
            await good.welcomed.wait()
        assert hub.connection(VIN) is not None
        nursery.cancel_scope.cancel()


async def test_first_message_must_be_hello(env: tuple[Hub, MemoryDirectory, MemoryJournal]) -> None:
    hub, _, _ = env
    refusal = await _refused(
        hub, RawVehicle(hub.grpc_port), VehicleMessage(heartbeat={"sent_at_ms": 1})
    )
    assert refusal.status is Status.INVALID_ARGUMENT
    assert refusal.message == "the first message must be Hello"


@pytest.mark.slow
async def test_a_silent_link_is_closed_and_its_command_interrupted(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, journal = env
    vehicle = RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run)
        await vehicle.welcomed.wait()
        command = _command()
        hub.dispatch(command)
        with trio.fail_after(5):
            await vehicle.finished.wait()
            await journal.wait_status(command.id, CommandStatus.INTERRUPTED)
    assert vehicle.ended is not None and vehicle.ended.status is Status.UNAVAILABLE
    assert vehicle.ended.message == "no message from the vehicle for 0.3 s"
    assert [m.WhichOneof("kind") for m in vehicle.received] == ["welcome", "command"]
    assert hub.connection(VIN) is None
    ended = hub.last_disconnect(VIN)
    assert ended is not None and ended.reason is DisconnectReason.HEARTBEAT_TIMEOUT


async def test_a_second_connection_replaces_the_first(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, journal = env
    first, second = RawVehicle(hub.grpc_port), RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        await first.welcomed.wait()
        running = _command()
        async with hub.bus.subscribe(command_topic(running.id)) as updates:
            hub.dispatch(running)
            nursery.start_soon(second.run)
            with trio.fail_after(5):
                await first.finished.wait()
                await second.welcomed.wait()
                async for update in updates:
                    if isinstance(update, StatusChange) and update.status.is_final:
                        break
        connection = hub.connection(VIN)
        assert connection is not None
        nursery.cancel_scope.cancel()
    assert first.ended is not None and first.ended.status is Status.ABORTED
    assert first.ended.message == "replaced by a newer connection of the same vehicle"
    assert journal.status_of(running.id) is CommandStatus.INTERRUPTED
    welcome = second.received[0].welcome
    assert connection.session_id == welcome.session_id


async def test_a_full_mailbox_refuses_instead_of_blocking(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, journal = env
    vehicle = RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run)
        await vehicle.welcomed.wait()
        # The actor has not run since: the first goes to it, the second fills the buffer.
        hub.dispatch(_command())
        hub.dispatch(_command())
        with pytest.raises(MailboxFull, match=r"has 1 messages waiting \(mailbox_size\)"):
            hub.dispatch(_command())
        refused = _command()
        with pytest.raises(MailboxFull):
            await hub.submit(refused)  # refused before anything is written
        assert refused not in journal.commands
        nursery.cancel_scope.cancel()


async def test_shutdown_ends_links_with_unavailable_and_interrupts_commands(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, journal = env
    vehicle = RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run)
        await vehicle.welcomed.wait()
        command = _command()
        hub.dispatch(command)
        await trio.lowlevel.checkpoint()
        with trio.fail_after(5):
            await hub.shutdown()
            await vehicle.finished.wait()
    assert vehicle.ended is not None and vehicle.ended.status is Status.UNAVAILABLE
    assert vehicle.ended.message == "the hub is shutting down"
    assert journal.status_of(command.id) is CommandStatus.INTERRUPTED
    ended = hub.last_disconnect(VIN)
    assert ended is not None and ended.reason is DisconnectReason.HUB_SHUTDOWN


async def test_a_vehicle_that_ends_its_stream_is_closed_by_vehicle(
    env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, _ = env

    async def hello_then_end() -> None:
        channel = grpclib.client.Channel("127.0.0.1", hub.grpc_port)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {TOKEN}"}
            ) as stream:
                await stream.send_message(VehicleMessage(hello=Hello(vin=VIN)))
                welcome = await stream.recv_message()
                assert welcome is not None and welcome.WhichOneof("kind") == "welcome"
                await stream.end()
                while await stream.recv_message() is not None:
                    pass
        finally:
            channel.close()

    async with hub.bus.subscribe(vehicle_topic(VIN)) as updates:
        with trio.fail_after(5):
            await run_asyncio(hello_then_end)
            async for update in updates:  # connected, then disconnected
                if isinstance(update, VehicleStatus) and not update.connected:
                    break
    assert hub.connection(VIN) is None
    ended = hub.last_disconnect(VIN)
    assert ended is not None
    assert (ended.reason, ended.detail) == (
        DisconnectReason.CLOSED_BY_VEHICLE,
        "the vehicle closed the stream",
    )


async def test_no_hello_within_the_deadline_is_refused() -> None:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    journal = MemoryJournal()
    config = HubConfig(grpc_port=0, hello_timeout_s=0.2, shutdown_grace_s=2)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        vehicle = RawVehicle(hub.grpc_port)
        with trio.fail_after(5):
            await vehicle.run(silent=True)
    assert vehicle.ended is not None and vehicle.ended.status is Status.DEADLINE_EXCEEDED
    assert vehicle.ended.message == "no Hello within 0.2 s (hello_timeout_s)"
