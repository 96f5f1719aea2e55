"""The dispatcher: the one way into actors' mailboxes, each dispatch counted once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import trio

from hub import Command, MailboxFull, VehicleNotConnected
from hub.catalog import build_request
from hub.dispatching import Dispatcher
from hub.link import Link
from hub.link_protocol import LinkProtocol
from hub.mailbox import ActorMessage, Dispatch, VehicleActor
from hub.registry import Registry

VIN = "WVWZZZ1JZXW000001"


def _command() -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=VIN,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=build_request("ReadDTC", {"ecuAddress": "0x10"}),
        timeout_s=5,
        submitted_by="tester",
        submitted_at=datetime.now(UTC),
    )


def _actor(
    mailbox_size: int,
) -> tuple[Registry[VehicleActor], trio.MemoryReceiveChannel[ActorMessage]]:
    actors: Registry[VehicleActor] = Registry()
    send, receive = trio.open_memory_channel[ActorMessage](mailbox_size)
    link = Link(
        VIN, "session", LinkProtocol(max_messages_per_s=10, heartbeat_interval_s=1.0, now=0.0)
    )
    actors.add(VehicleActor(link, send, datetime.now(UTC)))
    return actors, receive


async def test_a_command_dispatched_again_is_dropped_and_counted_once_per_arrival() -> None:
    actors, receive = _actor(4)
    dispatcher = Dispatcher(actors, 4)
    command = _command()
    assert dispatcher.dispatch_once(command) is True
    assert dispatcher.dispatch_once(command) is False  # a redelivered stream entry
    dispatcher.duplicate(uuid.uuid4())  # the router found one no longer pending
    assert dispatcher.duplicates == 2
    assert dispatcher.dispatched_lately(command.id)
    assert receive.receive_nowait() == Dispatch(command)
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()  # handed over once


async def test_a_full_mailbox_is_refused_before_and_at_the_hand_over() -> None:
    actors, _ = _actor(1)
    dispatcher = Dispatcher(actors, 1)
    dispatcher.check_room(VIN)  # room for one
    dispatcher.dispatch(_command())
    with pytest.raises(MailboxFull) as before:
        dispatcher.check_room(VIN)
    with pytest.raises(MailboxFull) as during:
        dispatcher.dispatch(_command())
    expected = f"vehicle {VIN} has 1 messages waiting (mailbox_size); retry later"
    assert str(before.value) == str(during.value) == expected


async def test_a_vehicle_without_an_actor_is_not_connected() -> None:
    dispatcher = Dispatcher(Registry(), 4)
    dispatcher.check_room(VIN)  # nothing to be full
    with pytest.raises(VehicleNotConnected, match=f"vehicle {VIN} is not connected"):
        dispatcher.dispatch(_command())
    assert not dispatcher.dispatched_lately(uuid.uuid4())
