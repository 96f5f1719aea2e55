"""A command this node ran lately is replayed from memory (`hub.recent`), as from storage."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bench.simulator import Behaviour
from tests.support.node import VINS, Node, NodeSettings
from tests.support.websocket import collect_until_status, subscribe


@pytest.fixture(params=[{}, {"recent_commands": 0}], ids=["in_memory", "from_storage"])
def node_settings(request: pytest.FixtureRequest) -> NodeSettings:
    return NodeSettings(hub=dict(request.param))


def _count_reads(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    reads: list[uuid.UUID] = []
    read: Callable[..., Awaitable[Any]] = node.db.commands.command_with_events

    async def counted(command_id: uuid.UUID, from_seq: int = 0) -> Any:
        reads.append(command_id)
        return await read(command_id, from_seq)

    monkeypatch.setattr(node.db.commands, "command_with_events", counted)
    return reads


async def test_live_late_and_partial_replays_agree_and_memory_reads_nothing(
    node: Node, node_settings: NodeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _count_reads(node, monkeypatch)
    await node.connect_vehicle(VINS[0], Behaviour(event_latency_s=0.05))
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)  # while it runs
        live = await collect_until_status(ws)
    async with node.websocket("engineer") as late:
        await subscribe(late, command_id, from_seq=0)
        replayed = await collect_until_status(late)
    async with node.websocket("admin") as partial:
        await subscribe(partial, command_id, from_seq=2)
        rest = await collect_until_status(partial)

    assert [f.get("seq") for f in live] == [0, 1, 2, None]
    assert replayed == live
    assert rest == live[2:]
    assert live[-1]["status"] == "succeeded"
    expected_reads = 0 if "recent_commands" not in node_settings.hub else 3
    assert len(reads) == expected_reads
