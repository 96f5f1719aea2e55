"""A database outage, handled in the open: the node talks to Postgres through a TCP proxy
the test controls (`tests.support.tcp_proxy`) and the test cuts it.

Postgres only: SQLite is a file in the hub's own process, it has no outage of this kind.
Both ways a path breaks are exercised: `Cut.REFUSE` (connections reset at once, as when
the server is down) and `Cut.BLACKHOLE` (nothing answers, as in a network partition:
every query runs into the database timeouts, set short here).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog
import trio
from grpclib.const import Status
from sqlalchemy.engine import make_url

from bench.simulator import Behaviour, LinkRefused, SimulatedVehicle, VehicleSpec
from hub import JSON, run_asyncio
from tests.support.databases import postgres_server_url, truncate_all
from tests.support.node import VINS, Node, NodeSettings
from tests.support.tcp_proxy import Cut, TcpProxy, open_tcp_proxy
from tests.support.websocket import collect_until_status, receive_json, send_json, subscribe

VIN = VINS[0]
HEARTBEAT_S = 0.5  # the links must live through outages several heartbeats long
#: A command that runs across the outage: ACCEPTED and PROGRESS 0 at once, then one
#: event every durationMs / 4 (PROGRESS 25, 50, 75, then the RESULT).
SELFTEST = {"component": "engine", "operation": "selftest"}


@pytest.fixture(autouse=True)
def plain_tracebacks() -> Iterator[None]:
    """Log tracebacks as plain text: the default console renderer draws each with its
    locals (rich), which takes seconds and stalls the node while writers log failures."""
    config = structlog.get_config()
    processors = [
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if isinstance(p, structlog.dev.ConsoleRenderer)
        else p
        for p in config["processors"]
    ]
    structlog.configure(processors=processors)
    yield
    structlog.configure(**config)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    """A proxy in front of the test Postgres server."""
    server = make_url(postgres_server_url())
    async with open_tcp_proxy(server.host or "127.0.0.1", server.port or 5432) as running:
        yield running


@pytest.fixture
async def database_url(proxy: TcpProxy, postgres_database_url: str) -> str:
    """The session's Postgres database, emptied, reached through `proxy` (Postgres only)."""
    await trio.to_thread.run_sync(asyncio.run, truncate_all(postgres_database_url))
    url = make_url(postgres_database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def node_settings(request: pytest.FixtureRequest) -> NodeSettings:
    """Short database timeouts and retries; quick heartbeats; a buffer size per test."""
    buffer = getattr(request, "param", 100_000)
    return NodeSettings(
        storage={"database_connect_timeout_s": 0.5, "database_command_timeout_s": 0.5},
        hub={
            "heartbeat_interval_s": HEARTBEAT_S,
            "journal_commit_timeout_s": 2.0,
            "journal_retry_max_s": 0.2,
            "journal_buffer_records": buffer,
            "default_command_timeout_s": 30,
        },
    )


async def _statistics(node: Node) -> dict[str, Any]:
    response = await node.http.get("/health/live")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _wait_until(node: Node, key: str, predicate: Any) -> dict[str, Any]:
    """Poll `/health/live` until `predicate(value of key)` (fails after 10 s)."""
    with trio.fail_after(10):
        while not predicate((stats := await _statistics(node))[key]):  # noqa: ASYNC110 (HTTP)
            await trio.sleep(0.05)
    return stats


async def _wait_ready(node: Node) -> None:
    with trio.fail_after(15):
        while (await node.http.get("/health/ready")).status_code != 200:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def _start_selftest(node: Node, duration_ms: int) -> str:
    response = await node.submit(VIN, "StartOperation", {**SELFTEST, "durationMs": duration_ms})
    assert response.status_code == 202, response.text
    command_id: str = response.json()["id"]
    return command_id


async def _frames_until_status(ws: Any) -> list[dict[str, JSON]]:
    frames = []
    while True:
        frame = await receive_json(ws)
        frames.append(frame)
        if frame["type"] == "status":
            return frames


async def _stored(node: Node, command_id: str) -> tuple[dict[str, Any], list[int]]:
    headers = await node.headers()
    command = (await node.http.get(f"/api/v1/commands/{command_id}", headers=headers)).json()
    events = await node.http.get(f"/api/v1/commands/{command_id}/events", headers=headers)
    assert events.status_code == 200, events.text
    return command, [e["seq"] for e in events.json()["items"]]


@pytest.mark.parametrize("cut", [Cut.REFUSE, Cut.BLACKHOLE], ids=["refuse", "blackhole"])
async def test_a_database_outage_is_handled_in_the_open(
    node: Node, proxy: TcpProxy, cut: Cut
) -> None:
    vehicle = await node.connect_vehicle(VIN)
    session = vehicle.session_id
    await node.headers()  # log in while the database answers
    command_id = await _start_selftest(node, 2400)
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        seen = [await receive_json(ws)]  # ACCEPTED: the command runs
        proxy.cut(cut)
        try:
            # Readiness names the database.
            ready = await node.http.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] != "ok"
            assert ready.json()["checks"]["gateway"] == "ok"
            # The events of the running command keep coming, and are held.
            await _wait_until(node, "journal_buffered_records", lambda n: n > 0)
            # A new command is refused at once with a reason and Retry-After; nothing runs.
            refused = await node.submit(VIN, "ReadDTC", {"ecuAddress": "0x10"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage_unavailable"
            assert "not recorded and will not run" in refused.json()["error"]["message"]
            assert int(refused.headers["Retry-After"]) >= 1
            ready = await node.http.get("/health/ready")
            assert ready.status_code == 503
            assert "has not answered since" in ready.json()["checks"]["database"]
            # A vehicle that connects now is told to come back later.
            await _refused_while_down(node, VINS[1])
            # The command ends on the vehicle while the database is still away.
            await _wait_until(node, "journal_buffered_records", lambda n: n >= 5)
        finally:
            proxy.restore()
        seen += await _frames_until_status(ws)
    # Every event reached the subscriber once, in order, then the final status.
    events = [f["seq"] for f in seen if f["type"] == "event"]
    assert events == list(range(6)), seen
    assert seen[-1]["status"] == "succeeded"
    # ... and is stored, in order; the link never dropped.
    command, stored = await _stored(node, command_id)
    assert (command["status"], stored) == ("succeeded", list(range(6)))
    assert vehicle.session_id == session and VIN not in node.endings
    # The hub recovers by itself: ready, and taking commands again.
    await _wait_ready(node)
    stats = await _statistics(node)
    assert (stats["journal_buffered_records"], stats["journal_records_lost"]) == (0, 0)
    accepted = await node.submit(VIN, "ReadDTC", {"ecuAddress": "0x10"})
    assert accepted.status_code == 202, accepted.text
    assert (await node.wait_final(accepted.json()["id"]))["status"] == "succeeded"
    assert vehicle.session_id == session and VIN not in node.endings


async def _refused_while_down(node: Node, vin: str) -> None:
    vehicle = SimulatedVehicle(
        VehicleSpec(vin, node.vehicle_tokens[vin]), "127.0.0.1", node.grpc_port, Behaviour()
    )
    with trio.fail_after(10), pytest.raises(LinkRefused) as refused:
        await run_asyncio(vehicle.run)
    assert refused.value.status is Status.UNAVAILABLE
    assert "database does not answer; retry in" in str(refused.value.message)


@pytest.mark.parametrize("node_settings", [3], indirect=True)  # journal_buffer_records
async def test_records_lost_when_the_buffer_is_full_are_counted_and_marked(
    node: Node, proxy: TcpProxy
) -> None:
    vehicle = await node.connect_vehicle(VIN)
    await node.headers()
    command_id = await _start_selftest(node, 1200)
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        seen = [await receive_json(ws)]
        proxy.cut(Cut.REFUSE)
        try:
            # The vehicle sends all 6 events; 3 records fit the buffer.
            stats = await _wait_until(node, "journal_records_lost", lambda n: n > 0)
            with trio.fail_after(10):
                while vehicle.events_sent < 6:  # noqa: ASYNC110 (another loop's counter)
                    await trio.sleep(0.05)
            stats = await _statistics(node)
            assert stats["journal_buffered_records"] == 3
        finally:
            proxy.restore()
        seen += await _frames_until_status(ws)
    lost = stats["journal_records_lost"]
    assert lost >= 2  # at least the RESULT event and its final status
    # The subscriber got what was stored, in order, then the mark.
    command, stored = await _stored(node, command_id)
    assert [f["seq"] for f in seen if f["type"] == "event"] == stored
    assert stored == list(range(len(stored))) and len(stored) < 6
    assert seen[-1]["status"] == "interrupted"
    assert command["status"] == "interrupted"
    assert "lost during a database outage" in command["error"]
    assert "journal_buffer_records=3" in command["error"]
    # Counted in the metrics and audited.
    metrics = (await node.http.get("/metrics")).text
    assert f"sovd_hub_journal_records_lost_total {float(lost)}" in metrics
    audit = await node.db.audit.list_audit(target=f"command:{command_id}")
    marks = [a for a in audit if a.action == "command.records_lost"]
    assert len(marks) == 1 and marks[0].details["records_lost"] == lost
    await _wait_ready(node)


async def test_the_journal_recovers_without_traffic(node: Node, proxy: TcpProxy) -> None:
    await node.connect_vehicle(VIN)
    earlier = (await node.submit(VIN, "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, earlier)
        ended = await collect_until_status(ws)
        proxy.cut(Cut.REFUSE)
        # A command this node ran is replayed from its memory all the same...
        await subscribe(ws, earlier)
        assert await collect_until_status(ws) == ended
        # ...and a subscription that needs the database is refused; the socket stays open.
        topic = f"command:{uuid.uuid4()}"
        await send_json(ws, {"type": "subscribe", "topic": topic, "from_seq": 0})
        refusal = await receive_json(ws)
        assert (refusal["type"], refusal["code"], refusal["topic"]) == (
            "error",
            "storage_unavailable",
            topic,
        ), refusal
        await send_json(ws, {"type": "ping"})
        assert await receive_json(ws) == {"type": "pong"}
    try:
        refused = await node.submit(VIN, "ReadDTC", {"ecuAddress": "0x10"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "storage_unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        ready = await node.http.get("/health/ready")
        assert ready.status_code == 503
        assert "has not answered since" in ready.json()["checks"]["database"]
    finally:
        proxy.restore()
    await _wait_ready(node)  # nothing to write: the journal's probe notices by itself
    accepted = await node.submit(VIN, "ReadDTC", {"ecuAddress": "0x10"})
    assert accepted.status_code == 202, accepted.text
