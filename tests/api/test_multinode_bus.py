"""Two nodes on one Postgres and one Redis: events and session revocations cross between them.

Node A holds the vehicle (it connects to A's gRPC port) and takes the
commands; operators watch from node B. Both nodes run in this process, each
with its own `RedisBus` (different `node_id`s, one key prefix), as two hub
processes would. Routing a command submitted on B is another test's work.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio
import trio_websocket

from bench.simulator import Behaviour
from hub import JSON
from tests.support.multinode import READ_DTC, subscribe_to, two_nodes
from tests.support.network import redis_host_port
from tests.support.node import VINS
from tests.support.tcp_proxy import Cut, open_tcp_proxy
from tests.support.websocket import collect_until_status, receive_json, subscribe

Frame = dict[str, JSON]
POSTGRES = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
pytestmark = POSTGRES


async def frames_of(ws: trio_websocket.WebSocketConnection, command_id: str) -> list[Frame]:
    """The frames of `command_id` up to its status frame, skipping others."""
    frames = []
    while True:
        frame = await receive_json(ws)
        if frame.get("command_id") == command_id:
            frames.append(frame)
            if frame["type"] == "status":
                return frames


def seqs(frames: list[Frame]) -> list[JSON]:
    """The seq of each event frame."""
    return [f["seq"] for f in frames if f["type"] == "event"]


async def test_a_socket_on_b_sees_what_happens_on_a_without_gap_or_duplicate(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[0]
    async with (
        two_nodes(database_url, redis_url, redis_key_prefix) as (a, b),
        AsyncExitStack() as stack,
    ):
        fleet_b = await stack.enter_async_context(b.websocket("admin"))
        await subscribe_to(fleet_b, "fleet")
        # Slow events, so that a second subscriber joins B while the command runs.
        await a.connect_vehicle(vin, Behaviour(event_latency_s=0.2))
        frame = await receive_json(fleet_b)
        assert (frame["type"], frame["vin"], frame["status"]) == ("vehicle", vin, "connected")

        vehicle_b = await stack.enter_async_context(b.websocket("admin"))
        await subscribe_to(vehicle_b, f"vehicle:{vin}")
        watcher_a = await stack.enter_async_context(a.websocket("engineer"))
        early_b = await stack.enter_async_context(b.websocket("engineer"))

        response = await a.submit(vin, "ReadDTC", READ_DTC)
        assert response.status_code == 202, response.text
        command_id = response.json()["id"]
        await subscribe(watcher_a, command_id)
        await subscribe(early_b, command_id)
        first = await receive_json(early_b)
        assert (first["type"], first["seq"]) == ("event", 0)
        # Joins while the command runs: stored events from the database, then live ones.
        joining_b = await stack.enter_async_context(b.websocket("engineer"))
        await subscribe(joining_b, command_id)

        on_a = await collect_until_status(watcher_a)
        early = [first, *await collect_until_status(early_b)]
        joining = await collect_until_status(joining_b)
        on_vehicle_topic = await frames_of(vehicle_b, command_id)

    assert on_a[-1]["status"] == "succeeded"
    events = seqs(on_a)
    assert events == list(range(len(events))) and len(events) >= 2, on_a
    assert early == on_a  # every frame, once, in order, with the same content
    assert joining == on_a
    assert seqs(on_vehicle_topic) == events
    assert on_vehicle_topic[-1]["status"] == "succeeded"


async def test_a_late_subscriber_on_b_replays_from_seq_what_a_stored(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[1]
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        await a.connect_vehicle(vin)
        command_id = (await a.submit(vin, "ReadDTC", READ_DTC)).json()["id"]
        on_a = await a.wait_final(command_id)
        assert on_a["status"] == "succeeded"
        async with a.websocket("engineer") as ws:
            await subscribe(ws, command_id)
            everything = await collect_until_status(ws)
        async with b.websocket("engineer") as ws:
            await subscribe(ws, command_id, from_seq=1)
            late = await collect_until_status(ws)
    assert late == [f for f in everything if f["type"] != "event" or f["seq"] != 0]
    assert len(late) < len(everything)


async def test_a_logout_on_a_refuses_the_token_on_b(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        headers = await a.headers("engineer")
        assert (await b.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
        assert (await a.http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        for _ in range(500):  # the revocation crosses Redis: not synchronously, but at once
            response = await b.http.get("/api/v1/auth/me", headers=headers)
            if response.status_code != 200:
                break
            await trio.sleep(0.01)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "session_revoked"


async def test_a_redis_cut_keeps_each_node_serving_and_fan_out_resumes(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[2]
    host, port = redis_host_port(redis_url)
    async with open_tcp_proxy(host, port) as proxy:
        url = redis_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)
        async with two_nodes(database_url, url, redis_key_prefix) as (a, b):
            await a.connect_vehicle(vin)
            await a.token("engineer")  # logged in before the cut (login needs no Redis anyway)
            await b.token("engineer")
            proxy.cut(Cut.REFUSE)
            # Node A serves its vehicle and its operators as before: local delivery.
            command_id = (await a.submit(vin, "ReadDTC", READ_DTC)).json()["id"]
            assert (await a.wait_final(command_id))["status"] == "succeeded"
            proxy.restore()
            # B's subscriber reconnects by itself; A's publisher sends again.
            async with b.websocket("engineer") as watcher:
                await subscribe_to(watcher, f"vehicle:{vin}")
                with trio.fail_after(20):
                    while True:  # until one command's frames all reach B (none is replayed)
                        command_id = (await a.submit(vin, "ReadDTC", READ_DTC)).json()["id"]
                        with trio.move_on_after(1):
                            frames = await frames_of(watcher, command_id)
                            if seqs(frames) and seqs(frames)[0] == 0:
                                break
            assert frames[-1]["status"] == "succeeded"
            assert seqs(frames) == list(range(len(seqs(frames))))
