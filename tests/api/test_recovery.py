"""Crash recovery per node: a node's restart ends only its own unfinished commands.

Two nodes (`node-a`, `node-b`) share one database. A crash of `node-a` is
reproduced by writing the state its run left behind (commands stamped
`node-a`, dispatched or running) through a storage handle of that node, then
starting `node-a`: a graceful stop would have ended them itself. The kill
test (`test_kill.py`) crashes a real process.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest
import trio

from bench.simulator import Behaviour
from hub import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    ConfigError,
    EventKind,
    HubConfig,
    InProcessBus,
    SovdRequest,
    StatusChange,
    load_config,
)
from sovd_hub import RESTART_REASON
from storage import Database, open_database
from tests.support.node import VINS
from tests.support.recovery import running_node, status_of
from tests.support.websocket import collect_until_status, receive_json, send_json, subscribe

Frame = dict[str, JSON]


def command(vin: str, *, ttl: bool = False) -> Command:
    """A ReadDTC command of the engineer's, submitted a second ago (waiting if `ttl`)."""
    now = datetime.now(UTC)
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=30.0,
        submitted_by="engineer",
        submitted_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(minutes=5) if ttl else None,
    )


async def leave_behind(database_url: str, node_id: str | None) -> dict[str, Command]:
    """What a run of `node_id` that crashed leaves: one command running (one event stored),
    one dispatched, one queued (pending), one waiting for its offline vehicle (pending, ttl)."""
    running, dispatched, queued = command(VINS[0]), command(VINS[0]), command(VINS[0])
    waiting = command(VINS[1], ttl=True)
    now = datetime.now(UTC)
    accepted = CommandEventRecord(running.id, 0, EventKind.ACCEPTED, 202, {"ok": True}, False, now)
    async with open_database(database_url, bcrypt_rounds=4, node_id=node_id) as db:
        await db.commands.record([], [], [running, dispatched, queued, waiting])
        await db.commands.record(
            [accepted],
            [
                StatusChange(running.id, CommandStatus.DISPATCHED, now),
                StatusChange(dispatched.id, CommandStatus.DISPATCHED, now),
                StatusChange(running.id, CommandStatus.RUNNING, now),
            ],
        )
    return {"running": running, "dispatched": dispatched, "queued": queued, "waiting": waiting}


async def wait_status(db: Database, command_id: uuid.UUID, status: CommandStatus) -> None:
    """Poll the database until the command is in `status` (the hub has no push for dispatch)."""
    for _ in range(250):
        if (await status_of(db, command_id))[0] is status:
            return
        await trio.sleep(0.02)
    raise AssertionError(f"command {command_id} is not {status} after 5 s")


async def test_a_restart_interrupts_its_commands_and_tells_subscribers_on_other_nodes(
    aio_loop: object, database_url: str
) -> None:
    bus = InProcessBus()  # what nodes share through Redis once the bus is Redis (issue 7)
    tokens: dict[str, str] = {}
    async with running_node(database_url, "node-b", tokens, bus) as node_b:
        left = await leave_behind(database_url, "node-a")
        legacy = (await leave_behind(database_url, None))["running"].id  # stamped by no node
        running = left["running"].id
        async with AsyncExitStack() as stack:
            follower = await stack.enter_async_context(node_b.websocket("engineer"))
            await subscribe(follower, str(running))
            replayed = await receive_json(follower)
            assert (replayed["type"], replayed["seq"]) == ("event", 0)
            watcher = await stack.enter_async_context(node_b.websocket("admin"))
            topic = f"vehicle:{VINS[0]}"
            await send_json(watcher, {"type": "subscribe", "topic": topic})
            assert await receive_json(watcher) == {"type": "subscribed", "topic": topic}
            assert (await receive_json(watcher))["type"] == "vehicle"  # the snapshot

            async with running_node(database_url, "node-a", tokens, bus) as node_a:
                # Node B's subscribers hear the end of node A's command from node A.
                [status] = await collect_until_status(follower)
                assert (status["status"], status["error"]) == ("interrupted", RESTART_REASON)
                ended: set[JSON] = set()
                while len(ended) < 3:  # running, dispatched, queued: all on VINS[0]
                    frame = await receive_json(watcher)
                    assert (frame["type"], frame["status"]) == ("status", "interrupted"), frame
                    ended.add(frame["command_id"])
                assert ended == {str(left[k].id) for k in ("running", "dispatched", "queued")}

                # A subscriber arriving after the restart reads the end from the database.
                async with node_a.websocket("engineer") as late:
                    await subscribe(late, str(running))
                    frames = await collect_until_status(late)
                assert [f["type"] for f in frames] == ["event", "status"]
                assert (frames[-1]["status"], frames[-1]["error"]) == (
                    "interrupted",
                    RESTART_REASON,
                )

                for kind in ("running", "dispatched", "queued"):
                    assert await status_of(node_a.db, left[kind].id) == (
                        CommandStatus.INTERRUPTED,
                        RESTART_REASON,
                    )
                    audit = await node_a.db.audit.list_audit(target=f"command:{left[kind].id}")
                    assert [a.action for a in audit].count("command.interrupted") == 1
                    last = audit[-1]
                    assert (last.action, last.actor, last.details["error"]) == (
                        "command.interrupted",
                        "hub",
                        RESTART_REASON,
                    )
                # Commands stamped by no node (written before nodes were recorded) are
                # ended by whichever node starts; the waiting one keeps waiting.
                assert (await status_of(node_a.db, legacy))[0] is CommandStatus.INTERRUPTED
                waiting = left["waiting"].id
                assert await status_of(node_a.db, waiting) == (CommandStatus.PENDING, None)


async def test_a_restart_leaves_the_commands_of_other_nodes_alone(
    aio_loop: object, database_url: str
) -> None:
    tokens: dict[str, str] = {}
    async with running_node(database_url, "node-a", tokens) as node_a:
        response = await node_a.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=300)
        assert (response.status_code, response.json()["status"]) == (202, "pending")
        handed_over = uuid.UUID(response.json()["id"])  # accepted by node A
    async with running_node(database_url, "node-b", tokens) as node_b:
        # The waiting command goes to node B, which its vehicle connects to: node B holds it.
        await node_b.connect_vehicle(VINS[0], Behaviour(silent=True))
        await wait_status(node_b.db, handed_over, CommandStatus.DISPATCHED)
        await node_b.connect_vehicle(VINS[1], Behaviour(silent=True))
        response = await node_b.submit(VINS[1], "ReadDTC", {"ecuAddress": "0x10"})
        assert response.status_code == 202
        own = uuid.UUID(response.json()["id"])
        await wait_status(node_b.db, own, CommandStatus.DISPATCHED)

        async with running_node(database_url, "node-a", tokens) as node_a:
            for command_id in (handed_over, own):
                assert await status_of(node_a.db, command_id) == (CommandStatus.DISPATCHED, None)
        # Node B still holds both, with their vehicles' links.
        assert node_b.vehicles[VINS[0]].commands_received == 1
        assert node_b.vehicles[VINS[1]].commands_received == 1
        assert not node_b.endings
        assert (await status_of(node_b.db, own))[0] is CommandStatus.DISPATCHED


async def test_a_waiting_command_survives_a_restart_and_is_delivered_after_it(
    aio_loop: object, database_url: str
) -> None:
    tokens: dict[str, str] = {}
    async with running_node(database_url, "node-a", tokens) as node:
        response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=300)
        assert (response.status_code, response.json()["status"]) == (202, "pending")
        waiting = response.json()["id"]
    async with running_node(database_url, "node-a", tokens) as node:
        assert await status_of(node.db, uuid.UUID(waiting)) == (CommandStatus.PENDING, None)
        vehicle = await node.connect_vehicle(VINS[0])
        done = await node.wait_final(waiting)
        assert done["status"] == "succeeded"
        assert vehicle.commands_received == 1
        actions = [a.action for a in await node.db.audit.list_audit(target=f"command:{waiting}")]
        assert actions[0] == "command.submitted" and actions[-1] == "command.succeeded"
        assert "command.interrupted" not in actions


async def test_a_waiting_command_expires_on_time_across_a_restart(
    aio_loop: object, database_url: str
) -> None:
    tokens: dict[str, str] = {}
    async with running_node(database_url, "node-a", tokens) as node:
        response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=2)
        assert response.status_code == 202
        waiting = response.json()["id"]
    async with running_node(database_url, "node-a", tokens) as node:
        async with node.websocket("engineer") as ws:
            await subscribe(ws, waiting)
            [status] = await collect_until_status(ws)
        assert (status["status"], status["error"]) == (
            "expired",
            "the vehicle stayed offline past the command's ttl_s",
        )
        row = await node.db.commands.get_command(uuid.UUID(waiting))
        assert row is not None and row.finished_at is not None and row.expires_at is not None
        assert row.finished_at >= row.expires_at
        actions = [a.action for a in await node.db.audit.list_audit(target=f"command:{waiting}")]
        assert actions[0] == "command.submitted" and actions[-1] == "command.expired"
        assert "command.interrupted" not in actions


@pytest.mark.parametrize("bad", ["", " node-a", "node\na", "n" * 65])
def test_a_node_id_that_cannot_name_a_node_is_refused_naming_its_setting(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(HubConfig, environ={"SOVD_HUB_NODE_ID": bad})
    assert str(caught.value) == (
        "node_id must be 1-64 printable characters without leading or trailing spaces "
        f"(set SOVD_HUB_NODE_ID), got {bad!r}"
    )
    assert load_config(HubConfig, environ={"SOVD_HUB_NODE_ID": "hub-2"}).node_id == "hub-2"
