"""A crashing actor is restarted with its commands intact, or given up on; nobody else notices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio_asyncio
from grpclib.const import Status

from hub import (
    Command,
    CommandStatus,
    DisconnectReason,
    HubConfig,
    InProcessBus,
)
from hub.commands import CommandTracker
from hub.node import Hub
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub
from hub.testing import command as new_command
from tests.support.raw_vehicle import OTHER, TOKEN, VIN, RawVehicle

Env = tuple[Hub, MemoryJournal, MemoryAudit]
#: Written in batches, soon after the fact: not ordered with the actor's own events.
LINK_NOTES = ("vehicle.connected", "vehicle.disconnected", "vehicle.refused")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    directory.add(OTHER, "token-2")
    journal, audit = MemoryJournal(), MemoryAudit()
    config = HubConfig(grpc_port=0, actor_max_restarts=2, shutdown_grace_s=2)
    async with (
        trio_asyncio.open_loop(),
        open_memory_hub(config, directory, journal, audit=audit, bus=InProcessBus()) as hub,
    ):
        yield hub, journal, audit


def _command(vin: str = VIN) -> Command:
    return new_command(vin)


def _crash_on_dispatch(monkeypatch: pytest.MonkeyPatch, vin: str, times: int) -> list[int]:
    """Make `vin`'s actor crash the first `times` times it takes a command."""
    crashes = [0]
    submit = CommandTracker.submit

    def crashing_submit(self: CommandTracker, command: Command) -> None:
        if command.vin == vin and crashes[0] < times:
            crashes[0] += 1
            raise RuntimeError(f"bug {crashes[0]}")
        submit(self, command)

    monkeypatch.setattr(CommandTracker, "submit", crashing_submit)
    return crashes


async def test_a_crashed_actor_restarts_and_keeps_its_link(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, journal, audit = env
    crashes = _crash_on_dispatch(monkeypatch, VIN, times=1)
    vehicle = RawVehicle(hub.grpc_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run)
        await vehicle.welcomed.wait()
        lost, kept = _command(), _command()
        hub.dispatch(lost)  # crashes the actor: this one message is lost
        hub.dispatch(kept)
        with trio.fail_after(5):
            await vehicle.wait_received(2)
        assert hub.connection(VIN) is not None
        nursery.cancel_scope.cancel()
    assert crashes == [1]
    assert [m.command.command_id for m in vehicle.received[1:]] == [str(kept.id)]
    assert journal.status_of(lost.id) is CommandStatus.FAILED  # recorded, not forgotten
    assert [(a[1], a[3]["detail"]) for a in audit.events if a[1] not in LINK_NOTES] == [
        ("vehicle.actor_restarted", "RuntimeError('bug 1')")
    ]


async def test_an_actor_that_keeps_crashing_is_given_up_on(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, journal, audit = env
    _crash_on_dispatch(monkeypatch, VIN, times=100)
    vehicle, other = RawVehicle(hub.grpc_port), RawVehicle(hub.grpc_port, OTHER, "token-2")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run)
        nursery.start_soon(other.run)
        await vehicle.welcomed.wait()
        await other.welcomed.wait()
        crashed = [_command() for _ in range(3)]
        for command in crashed:  # two restarts allowed, the third crash gives up
            hub.dispatch(command)
            await trio.sleep(0.01)
        with trio.fail_after(5):
            await vehicle.finished.wait()
        assert hub.connection(OTHER) is not None  # the other vehicle never noticed
        survivor = _command(OTHER)
        hub.dispatch(survivor)
        with trio.fail_after(5):
            await other.wait_received(2)
        nursery.cancel_scope.cancel()
    assert vehicle.ended is not None and vehicle.ended.status is Status.INTERNAL
    assert "the hub failed to serve this vehicle" in (vehicle.ended.message or "")
    ended = hub.last_disconnect(VIN)
    assert ended is not None and ended.reason is DisconnectReason.ERROR
    assert [a[1] for a in audit.events if a[1] not in LINK_NOTES] == [
        "vehicle.actor_restarted",
        "vehicle.actor_restarted",
        "vehicle.actor_failed",
    ]
    assert journal.status_of(survivor.id) is CommandStatus.DISPATCHED
    assert {journal.status_of(c.id) for c in crashed} == {CommandStatus.FAILED}
