"""The no-op server's commands: the hub's frames, on the vehicle's schedule, encoded once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import orjson
import pytest
import trio

from api import event_frame, status_frame
from bench.noop_server import READ_DTC_EVENTS, Broadcast
from hub import CommandEventRecord, StatusChange

LATENCY_S = 0.010

Sent = list[tuple[float, str]]


def _recorder(into: Sent, start: float) -> Callable[[str], Awaitable[None]]:
    async def send(text: str) -> None:
        into.append((trio.current_time() - start, text))

    return send


async def test_every_follower_gets_the_same_frames_on_the_vehicles_schedule(
    autojump_clock: trio.abc.Clock,
) -> None:
    broadcast = Broadcast(str(uuid.uuid4()))
    early: Sent = []
    late: Sent = []
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(broadcast.play, LATENCY_S)
        nursery.start_soon(broadcast.follow, 0, _recorder(early, start))
        await trio.sleep(0.015)  # after the first event: it is replayed at once
        nursery.start_soon(broadcast.follow, 0, _recorder(late, start))

    assert [t for t, _ in early] == pytest.approx([0.010, 0.020, 0.030, 0.030])
    assert [t for t, _ in late] == pytest.approx([0.015, 0.020, 0.030, 0.030])
    assert all(a is b for (_, a), (_, b) in zip(early, late, strict=True))  # encoded once
    frames = [orjson.loads(text) for _, text in early]
    assert [(f["type"], f.get("seq"), f.get("final")) for f in frames] == [
        ("event", 0, False),
        ("event", 1, False),
        ("event", 2, True),
        ("status", None, None),
    ]


async def test_a_follower_from_seq_after_the_end_gets_the_rest_and_the_status() -> None:
    broadcast = Broadcast(str(uuid.uuid4()))
    while broadcast.status is None:
        broadcast.publish_next()
    sent: Sent = []

    await broadcast.follow(2, _recorder(sent, 0.0))

    assert [orjson.loads(text)["type"] for _, text in sent] == ["event", "status"]
    assert orjson.loads(sent[0][1])["seq"] == 2


def test_the_frames_are_the_hubs() -> None:
    """What the hub's `api.ws_frames` would send for the same event and status."""
    broadcast = Broadcast(str(uuid.uuid4()))
    for _ in READ_DTC_EVENTS:
        broadcast.publish_next()
    assert broadcast.status is not None

    for text in broadcast.events:
        noop = orjson.loads(text)
        record = CommandEventRecord.from_json(noop)
        assert orjson.loads(orjson.dumps(event_frame(broadcast.topic, record))) == noop
        assert list(event_frame(broadcast.topic, record)) == list(noop)
    noop = orjson.loads(broadcast.status)
    change = StatusChange.from_json(noop)
    assert orjson.loads(orjson.dumps(status_frame(broadcast.topic, change))) == noop
    assert list(status_frame(broadcast.topic, change)) == list(noop)
