"""Every way a command can end: the WebSocket frames and the stored row agree.

For each end (succeeded, failed, cancelled while waiting, cancelled while
running, expired, interrupted by a restart, by a dead node, by a revoked
vehicle) an operator follows the command on its command topic and its
vehicle's topic through a real WebSocket, and the status frame on each says
what `GET /commands/{id}` then answers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import trio_websocket

from api.config import ApiConfig
from bench.simulator import Behaviour
from hub import JSON, Command, CommandStatus, HubConfig, InProcessBus, SovdRequest, StatusChange
from sovd_hub import RESTART_REASON, open_node
from storage import StorageConfig, open_database
from tests.support.node import JWT_SECRET, VINS, Node, provision, serve_clients
from tests.support.websocket import receive_json, send_json

Frame = dict[str, JSON]
READ_DTC: dict[str, JSON] = {"ecuAddress": "0x10"}


async def _follow(ws: trio_websocket.WebSocketConnection, topic: str) -> None:
    message: dict[str, JSON] = {"type": "subscribe", "topic": topic}
    if topic.startswith("command:"):
        message["from_seq"] = 0
    await send_json(ws, message)
    reply = await receive_json(ws)
    assert reply["type"] == "subscribed" and reply["topic"] == topic, reply
    if topic.startswith("vehicle:"):
        assert (await receive_json(ws))["type"] == "vehicle"  # the snapshot


async def _status_frame(ws: trio_websocket.WebSocketConnection, command_id: str) -> Frame:
    """The first status frame of `command_id` that is final (skipping anything else)."""
    while True:
        frame = await receive_json(ws)
        if frame.get("command_id") != command_id or frame["type"] != "status":
            continue
        if frame["status"] not in ("pending", "dispatched", "running"):
            return frame


async def ends_agree(
    node: Node,
    vin: str,
    start: Callable[[], Awaitable[str]],
    end: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[Frame, Frame]:
    """Follow `vin`'s topic, `start` a command (its id), follow it, `end` it; check that both
    topics' final status frames say what the stored row says. Returns (command frame, row)."""
    async with AsyncExitStack() as stack:
        watcher = await stack.enter_async_context(node.websocket("engineer"))
        await _follow(watcher, f"vehicle:{vin}")
        command_id = await start()
        follower = await stack.enter_async_context(node.websocket("engineer"))
        await _follow(follower, f"command:{command_id}")
        if end is not None:
            await end(command_id)
        on_command = await _status_frame(follower, command_id)
        on_vehicle = await _status_frame(watcher, command_id)
    response = await node.http.get(f"/api/v1/commands/{command_id}", headers=await node.headers())
    row: Frame = response.json()
    for frame in (on_command, on_vehicle):
        assert (frame["status"], frame.get("error")) == (row["status"], row["error"]), (frame, row)
    return on_command, row


def _submitter(node: Node, vin: str, **extra: JSON) -> Callable[[], Awaitable[str]]:
    async def start() -> str:
        response = await node.submit(vin, "ReadDTC", READ_DTC, **extra)
        assert response.status_code == 202, response.text
        command_id: str = response.json()["id"]
        return command_id

    return start


async def _cancel(node: Node, command_id: str) -> None:
    response = await node.http.post(
        f"/api/v1/commands/{command_id}/cancel", headers=await node.headers()
    )
    assert response.status_code == 202, response.text


async def test_succeeded(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    _, row = await ends_agree(node, VINS[0], _submitter(node, VINS[0]))
    assert (row["status"], row["error"]) == ("succeeded", None)


async def test_failed(node: Node) -> None:
    await node.connect_vehicle(VINS[0])

    async def start() -> str:
        params: dict[str, JSON] = {"ecuAddress": "0x10", "dataId": "0x1234"}
        response = await node.submit(VINS[0], "ReadDataByID", params)
        assert response.status_code == 202, response.text
        command_id: str = response.json()["id"]
        return command_id

    _, row = await ends_agree(node, VINS[0], start)
    assert (row["status"], row["error"]) == ("failed", "unknown data identifier 0x1234")


async def test_cancelled_while_waiting_for_its_offline_vehicle(node: Node) -> None:
    """The bug of issue 12: this cancel answered 202 and published nothing."""
    _, row = await ends_agree(
        node, VINS[1], _submitter(node, VINS[1], ttl_s=60), end=_cancel_of(node)
    )
    assert (row["status"], row["error"]) == (
        "cancelled",
        "cancelled by engineer before it was sent",
    )


async def test_cancelled_while_running(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(event_latency_s=0.3))
    _, row = await ends_agree(node, VINS[0], _submitter(node, VINS[0]), end=_cancel_of(node))
    assert (row["status"], row["error"]) == ("cancelled", "cancelled by engineer")


async def test_expired(node: Node) -> None:
    _, row = await ends_agree(node, VINS[1], _submitter(node, VINS[1], ttl_s=0.5))
    assert row["status"] == "expired"
    assert row["error"] == "the vehicle stayed offline past the command's ttl_s"


async def test_interrupted_by_a_revoked_vehicle(node: Node) -> None:
    await node.connect_vehicle(VINS[0], Behaviour(silent=True))

    async def rotate(command_id: str) -> None:
        response = await node.http.post(
            f"/api/v1/vehicles/{VINS[0]}/token", headers=await node.headers("admin")
        )
        assert response.status_code == 200, response.text

    _, row = await ends_agree(node, VINS[0], _submitter(node, VINS[0]), end=rotate)
    assert row["status"] == "interrupted"
    assert isinstance(row["error"], str) and row["error"].startswith("link lost: ")


def _cancel_of(node: Node) -> Callable[[str], Awaitable[None]]:
    async def cancel(command_id: str) -> None:
        await _cancel(node, command_id)

    return cancel


def _left_running(vin: str) -> Command:
    now = datetime.now(UTC)
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params=READ_DTC,
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=30.0,
        submitted_by="engineer",
        submitted_at=now - timedelta(seconds=1),
    )


async def _leave_running(database_url: str, node_id: str, vin: str) -> str:
    """What a node `node_id` that died leaves behind: one command of `vin` running."""
    command = _left_running(vin)
    now = datetime.now(UTC)
    async with open_database(database_url, bcrypt_rounds=4, node_id=node_id) as db:
        await db.commands.record([], [], [command])
        running = [
            StatusChange(command.id, CommandStatus.DISPATCHED, now),
            StatusChange(command.id, CommandStatus.RUNNING, now),
        ]
        await db.commands.record([], running)
    return str(command.id)


@asynccontextmanager
async def _node(
    database_url: str,
    node_id: str,
    tokens: dict[str, str],
    *,
    bus: InProcessBus | None = None,
    redis_url: str | None = None,
    redis_key_prefix: str = "sovd-hub:",
) -> AsyncIterator[Node]:
    hub_config = HubConfig(
        grpc_port=0,
        shutdown_grace_s=2,
        node_id=node_id,
        janitor_interval_s=0.2,
        node_dead_after_s=0.0,
    )
    api_config = ApiConfig(http_port=0, jwt_secret=JWT_SECRET, ws_auth_timeout_s=1)
    storage = StorageConfig(
        database_url=database_url,
        bcrypt_rounds=4,
        redis_url=redis_url,
        redis_key_prefix=redis_key_prefix,
    )
    async with open_node(hub_config, api_config, storage, bus=bus) as (addresses, db):
        await provision(db, tokens)
        async with serve_clients(addresses, db, tokens) as node:
            yield node


async def test_interrupted_by_a_restart(aio_loop: object, database_url: str) -> None:
    tokens: dict[str, str] = {}
    bus = InProcessBus()  # what the nodes would share over Redis
    async with _node(database_url, "node-b", tokens, bus=bus) as node:

        async def start() -> str:
            return await _leave_running(database_url, "node-a", VINS[0])

        async def restart(command_id: str) -> None:
            async with _node(database_url, "node-a", tokens, bus=bus):
                pass  # its start ends what its crashed run left

        _, row = await ends_agree(node, VINS[0], start, end=restart)
    assert (row["status"], row["error"]) == ("interrupted", RESTART_REASON)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_interrupted_by_a_dead_node(
    aio_loop: object, database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    tokens: dict[str, str] = {}
    async with _node(
        database_url, "node-b", tokens, redis_url=redis_url, redis_key_prefix=redis_key_prefix
    ) as node:

        async def start() -> str:
            return await _leave_running(database_url, "node-dead", VINS[0])

        _, row = await ends_agree(node, VINS[0], start)
    assert row["status"] == "interrupted"
    assert row["error"] == "hub node node-dead stopped answering while the command ran"
