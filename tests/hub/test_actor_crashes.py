"""A crashing actor is restarted with its commands intact, or given up on; nobody else notices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hub import (
    Command,
    CommandStatus,
    DisconnectReason,
    HubConfig,
    InProcessBus,
    LinkVerdict,
)
from hub.commands import CommandTracker
from hub.node import Hub
from hub.testing import (
    MemoryAudit,
    MemoryDirectory,
    MemoryJournal,
    connect_memory_link,
    open_memory_hub,
)
from hub.testing import command as new_command
from tests.support.raw_vehicle import OTHER, TOKEN, VIN

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
    async with open_memory_hub(config, directory, journal, audit=audit, bus=InProcessBus()) as hub:
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
    async with connect_memory_link(hub, VIN, TOKEN) as vehicle:
        lost, kept = _command(), _command()
        hub.dispatch(lost)  # crashes the actor: this one message is lost
        hub.dispatch(kept)
        with trio.fail_after(5):
            await vehicle.wait_received(2)
        assert hub.connection(VIN) is not None
    assert crashes == [1]
    assert vehicle.command_ids == [str(kept.id)]
    assert journal.status_of(lost.id) is CommandStatus.FAILED  # recorded, not forgotten
    assert [(a[1], a[3]["detail"]) for a in audit.events if a[1] not in LINK_NOTES] == [
        ("vehicle.actor_restarted", "RuntimeError('bug 1')")
    ]


async def test_an_actor_that_keeps_crashing_is_given_up_on(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, journal, audit = env
    _crash_on_dispatch(monkeypatch, VIN, times=100)
    async with (
        connect_memory_link(hub, VIN, TOKEN) as vehicle,
        connect_memory_link(hub, OTHER, "token-2") as other,
    ):
        crashed = [_command() for _ in range(3)]
        for command in crashed:  # two restarts allowed, the third crash gives up
            hub.dispatch(command)
        with trio.fail_after(5):
            ended = await vehicle.wait_ended()
            offline = await vehicle.wait_offline()
        assert hub.connection(OTHER) is not None  # the other vehicle never noticed
        survivor = _command(OTHER)
        hub.dispatch(survivor)
        with trio.fail_after(5):
            await other.wait_received(2)
            await journal.wait_status(survivor.id, CommandStatus.DISPATCHED)
    assert ended.verdict is LinkVerdict.INTERNAL
    assert "the hub failed to serve this vehicle" in ended.message
    assert (offline.reason, offline.detail) == (DisconnectReason.ERROR, ended.message)
    last = hub.last_disconnect(VIN)
    assert last is not None and (last.reason, last.at) == (offline.reason, offline.at)
    assert [a[1] for a in audit.events if a[1] not in LINK_NOTES] == [
        "vehicle.actor_restarted",
        "vehicle.actor_restarted",
        "vehicle.actor_failed",
    ]
    assert {journal.status_of(c.id) for c in crashed} == {CommandStatus.FAILED}
