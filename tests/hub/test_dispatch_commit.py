"""A dispatch goes to the vehicle without waiting for its `dispatched` commit (real gRPC)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import trio
from grpclib.client import Channel
from grpclib.exceptions import GRPCError

from hub import (
    BusMessage,
    Command,
    CommandEventRecord,
    CommandStatus,
    HubConfig,
    InProcessBus,
    StatusChange,
    command_topic,
)
from hub.bridge import run_asyncio
from hub.catalog import build_request
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub
from proto import CommandEvent, Hello, VehicleLinkStub, VehicleMessage

VIN = "WVWZZZ1JZXW000001"
TOKEN = "secret-token"


class GatedJournal(MemoryJournal):
    """Holds every commit that carries a `dispatched` change until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> None:
        if any(c.status is CommandStatus.DISPATCHED for c in changes):
            await self.gate.wait()
        await super().record(events, changes, commands)


async def test_the_request_reaches_the_vehicle_before_dispatched_commits_and_events_follow_it() -> (
    None
):
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    journal = GatedJournal()
    connected, received = trio.Event(), trio.Event()

    async def vehicle(port: int) -> None:
        channel = Channel("127.0.0.1", port)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {TOKEN}"}
            ) as stream:
                await stream.send_message(VehicleMessage(hello=Hello(vin=VIN)))
                assert await stream.recv_message() is not None  # Welcome
                connected.set()
                request = await stream.recv_message()
                assert request is not None
                received.set()  # and it answers at once
                event = CommandEvent(
                    command_id=request.command.command_id,
                    seq=0,
                    kind=CommandEvent.RESULT,
                    status=200,
                    body=b"{}",
                    final=True,
                )
                await stream.send_message(VehicleMessage(event=event))
                try:
                    assert await stream.recv_message() is None  # the hub stops
                    await stream.end()
                    await stream.recv_trailing_metadata()
                except GRPCError:
                    pass  # UNAVAILABLE: the hub is shutting down
        finally:
            channel.close()

    config = HubConfig(grpc_port=0, shutdown_grace_s=2)
    async with (
        open_memory_hub(config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()) as hub,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(run_asyncio, lambda: vehicle(hub.grpc_port))
        with trio.fail_after(5):
            await connected.wait()
        command = Command(
            id=uuid.uuid4(),
            vin=VIN,
            name="ReadDTC",
            params={"ecuAddress": "0x10"},
            sovd=build_request("ReadDTC", {"ecuAddress": "0x10"}),
            timeout_s=5,
            submitted_by="tester",
            submitted_at=datetime.now(UTC),
        )
        seen: list[BusMessage] = []
        async with hub.bus.subscribe(command_topic(command.id)) as messages:
            hub.dispatch(command)
            with trio.fail_after(5):
                await received.wait()  # the `dispatched` commit is still held
            assert journal.status_of(command.id) is None
            journal.gate.set()
            with trio.fail_after(5):
                async for message in messages:
                    seen.append(message)
                    if isinstance(message, StatusChange) and message.status.is_final:
                        break
        # Recorded, and published, in order: dispatched before what the vehicle answered.
        assert [c.status for c in journal.changes] == [
            CommandStatus.DISPATCHED,
            CommandStatus.RUNNING,
            CommandStatus.SUCCEEDED,
        ]
        assert [type(m).__name__ for m in seen] == [
            "StatusChange",
            "CommandEventRecord",
            "StatusChange",
            "StatusChange",
        ]
        assert isinstance(seen[0], StatusChange) and seen[0].status is CommandStatus.DISPATCHED
        await hub.shutdown()
        nursery.cancel_scope.cancel()
