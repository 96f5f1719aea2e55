"""Routing between two nodes on one Postgres and one Redis (see test_multinode_bus).

Node A holds the vehicle (`max_in_flight_per_vehicle=1`).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import pytest

from bench.simulator import Behaviour
from hub import Command
from storage import CommandStreams, KeyValue
from tests.support.multinode import READ_DTC, subscribe_to, two_nodes
from tests.support.network import redis_host_port
from tests.support.node import VINS
from tests.support.tcp_proxy import Cut, open_tcp_proxy
from tests.support.websocket import receive_json, send_json

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


async def test_commands_from_both_nodes_run_one_at_a_time_in_submission_order(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[0]
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        # Slow events: a command runs long enough for an overlap to show.
        await a.connect_vehicle(vin, Behaviour(event_latency_s=0.05))
        ids: list[str] = []
        for i in range(6):
            response = await (a if i % 2 == 0 else b).submit(vin, "ReadDTC", READ_DTC)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        finals = [await a.wait_final(command_id) for command_id in ids]

    assert [f["status"] for f in finals] == ["succeeded"] * len(ids), finals
    intervals: list[tuple[datetime, datetime]] = []
    for final in finals:
        started, finished = final["started_at"], final["finished_at"]
        assert isinstance(started, str) and isinstance(finished, str)
        intervals.append((datetime.fromisoformat(started), datetime.fromisoformat(finished)))
    # Each starts after the previous one finished: no overlap, and submission order.
    t0 = intervals[0][0]
    shown = [((s - t0).total_seconds(), (e - t0).total_seconds()) for s, e in intervals]
    for (_, previous_end), (start, _) in itertools.pairwise(intervals):
        assert start >= previous_end, shown


async def test_an_outcome_the_router_decides_reaches_the_vehicle_topic(
    aio_loop: object,
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    keyvalue: KeyValue,
) -> None:
    vin = VINS[1]  # connected nowhere
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        response = await a.submit(vin, "ReadDTC", READ_DTC, ttl_s=60)
        assert response.status_code == 202, response.text
        command_id = response.json()["id"]
        async with b.websocket("engineer") as watcher:
            await subscribe_to(watcher, f"vehicle:{vin}")
            # A cancel reaches A's stream (as from a node that thought A held the
            # vehicle): no actor holds it anywhere, so A's router ends it itself.
            streams = CommandStreams(keyvalue, "test")
            await streams.send("node-a", "cancel", vin, uuid.UUID(command_id), "admin")
            frame = await receive_json(watcher)
        stored = await a.http.get(f"/api/v1/commands/{command_id}", headers=await a.headers())
    assert (frame["type"], frame["command_id"], frame["status"]) == (
        "status",
        command_id,
        "cancelled",
    ), frame
    assert frame.get("error") == "cancelled by admin", frame
    assert stored.json()["status"] == "cancelled"


async def test_a_vehicle_held_by_a_shows_connected_on_b_until_redis_is_cut(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[2]
    host, port = redis_host_port(redis_url)
    async with open_tcp_proxy(host, port) as proxy:
        url = redis_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)
        async with two_nodes(database_url, url, redis_key_prefix) as (a, b):
            await a.connect_vehicle(vin)
            headers = await b.headers("admin")
            detail = (await b.http.get(f"/api/v1/vehicles/{vin}", headers=headers)).json()
            connected = await b.http.get("/api/v1/vehicles?status=connected", headers=headers)
            offline = await b.http.get("/api/v1/vehicles?status=disconnected", headers=headers)
            async with b.websocket("admin") as ws:
                await send_json(ws, {"type": "subscribe", "topic": f"vehicle:{vin}"})
                await receive_json(ws)  # subscribed
                snapshot = await receive_json(ws)
            proxy.cut(Cut.REFUSE)
            local = (await b.http.get(f"/api/v1/vehicles/{vin}", headers=headers)).json()

    assert detail["connection"]["status"] == "connected", detail
    assert detail["connection"]["node_id"] == "node-a"
    assert detail["connection"]["source"] == "cluster"
    assert [v["vin"] for v in connected.json()["items"]] == [vin], connected.text
    assert vin not in [v["vin"] for v in offline.json()["items"]]
    assert offline.json()["total"] == len(VINS) - 1
    assert (snapshot["status"], snapshot["node_id"], snapshot["source"]) == (
        "connected",
        "node-a",
        "cluster",
    ), snapshot
    # Redis does not answer: B knows only its own links, and says so.
    assert (local["connection"]["status"], local["connection"]["source"]) == (
        "disconnected",
        "local",
    ), local


async def test_a_routed_command_reaches_its_vehicle_without_being_read_back(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    vin = VINS[0]
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        await a.connect_vehicle(vin)
        read_back: list[uuid.UUID] = []
        read = a.db.commands.get_command

        async def get_command(command_id: uuid.UUID) -> Command | None:
            read_back.append(command_id)
            return await read(command_id)

        a.db.commands.get_command = get_command  # type: ignore[method-assign]
        response = await b.submit(vin, "ReadDTC", READ_DTC)
        assert response.status_code == 202, response.text
        final = await b.wait_final(response.json()["id"])

    assert final["status"] == "succeeded", final
    assert a.vehicles[vin].commands_received == 1
    assert read_back == []  # the stream entry carried the command to node A


async def test_a_dispatch_entry_of_a_command_cancelled_meanwhile_never_runs(
    aio_loop: object,
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    keyvalue: KeyValue,
) -> None:
    vin = VINS[1]  # offline: its command waits
    async with two_nodes(database_url, redis_url, redis_key_prefix) as (a, b):
        response = await b.submit(vin, "ReadDTC", READ_DTC, ttl_s=60)
        assert response.status_code == 202, response.text
        command_id = uuid.UUID(response.json()["id"])
        headers = await b.headers()
        cancel = await b.http.post(f"/api/v1/commands/{command_id}/cancel", headers=headers)
        assert cancel.status_code == 202, cancel.text
        await a.connect_vehicle(vin)
        # A dispatch of it, carrying the command, reaches A after the cancel (sent late).
        stored = await b.db.commands.get_command(command_id)
        assert stored is not None
        streams = CommandStreams(keyvalue, "test")
        await streams.send("node-a", "dispatch", vin, by="node-b", command=stored)
        # A command submitted on A queues behind that entry on A's stream: once it
        # has ended, the entry was handled.
        later = await a.submit(vin, "ReadDTC", READ_DTC)
        assert later.status_code == 202, later.text
        final = await a.wait_final(later.json()["id"])
        cancelled = await b.http.get(f"/api/v1/commands/{command_id}", headers=headers)

    assert final["status"] == "succeeded", final
    assert a.vehicles[vin].commands_received == 1  # only the later one
    assert cancelled.json()["status"] == "cancelled", cancelled.text
