"""The gateway and actors through real gRPC sockets, with in-memory storage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hub import (
    BusMessage,
    CommandStatus,
    EventKind,
    Hub,
    HubConfig,
    InProcessBus,
    StatusChange,
    command_topic,
)
from hub.bridge import run_asyncio
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub
from hub.testing import command as new_command
from proto import CommandEvent, Hello, VehicleLinkStub, VehicleMessage

VIN = "WVWZZZ1JZXW000001"
TOKEN = "secret-token"


@pytest.fixture
async def hub_env() -> AsyncIterator[tuple[Hub, MemoryDirectory, MemoryJournal]]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    journal = MemoryJournal()
    config = HubConfig(grpc_port=0, shutdown_grace_s=2)
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        yield hub, directory, journal


async def _until_final(
    messages: trio.MemoryReceiveChannel[BusMessage],
) -> AsyncIterator[BusMessage]:
    async for message in messages:
        yield message
        if isinstance(message, StatusChange) and message.status.is_final:
            return


async def _refusal(port: int, vin: str, token: str) -> GRPCError:
    async def connect() -> GRPCError:
        channel = Channel("127.0.0.1", port)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {token}"}
            ) as stream:
                await stream.send_message(VehicleMessage(hello=Hello(vin=vin)), end=True)
                try:
                    await stream.recv_message()
                    await stream.recv_trailing_metadata()
                except GRPCError as exc:
                    return exc
                raise AssertionError("the hub answered instead of refusing")
        finally:
            channel.close()

    return await run_asyncio(connect)


async def test_unknown_token_and_another_vehicles_token_are_refused(
    hub_env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, _, _ = hub_env
    unknown = await _refusal(hub.grpc_port, VIN, "not-the-token")
    assert unknown.status is Status.UNAUTHENTICATED
    assert "unknown vehicle token" in (unknown.message or "")
    wrong = await _refusal(hub.grpc_port, "WVWZZZ1JZXW999999", TOKEN)  # VIN's token
    assert (wrong.status, wrong.message) == (
        Status.UNAUTHENTICATED,
        "wrong token for VIN WVWZZZ1JZXW999999",
    )
    assert hub.connection(VIN) is None


async def test_command_round_trip_and_shutdown_ends_link_with_unavailable(
    hub_env: tuple[Hub, MemoryDirectory, MemoryJournal],
) -> None:
    hub, directory, journal = hub_env
    connected = trio.Event()
    ended: list[GRPCError] = []

    async def vehicle() -> None:
        channel = Channel("127.0.0.1", hub.grpc_port)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {TOKEN}"}
            ) as stream:
                await stream.send_message(VehicleMessage(hello=Hello(vin=VIN)))
                welcome = await stream.recv_message()
                assert welcome is not None and welcome.WhichOneof("kind") == "welcome"
                connected.set()
                request = await stream.recv_message()
                assert (
                    request is not None and request.command.sovd.path == "/components/engine/faults"
                )
                for seq, final in ((0, False), (1, True)):
                    event = CommandEvent(
                        command_id=request.command.command_id,
                        seq=seq,
                        kind=CommandEvent.RESULT if final else CommandEvent.PROGRESS,
                        status=200,
                        body=b'{"n": %d}' % seq,
                        final=final,
                    )
                    await stream.send_message(VehicleMessage(event=event))
                try:
                    assert await stream.recv_message() is None
                    await stream.end()  # grpclib reads the status only once we have ended ours
                    await stream.recv_trailing_metadata()
                except GRPCError as exc:
                    ended.append(exc)
        finally:
            channel.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_asyncio, vehicle)
        await connected.wait()
        assert hub.connection(VIN) is not None and VIN in directory.seen
        command = new_command(VIN, timeout_s=5)
        async with hub.bus.subscribe(command_topic(command.id)) as messages:
            hub.dispatch(command)
            seen = [m async for m in _until_final(messages)]
        assert [type(m).__name__ for m in seen] == [
            "StatusChange",  # dispatched
            "CommandEventRecord",
            "StatusChange",  # running
            "CommandEventRecord",
            "StatusChange",  # succeeded
        ]
        assert journal.status_of(command.id) is CommandStatus.SUCCEEDED
        assert [(e.seq, e.kind) for e in journal.events] == [
            (0, EventKind.PROGRESS),
            (1, EventKind.RESULT),
        ]
        await hub.shutdown()
    assert ended and ended[0].status is Status.UNAVAILABLE
