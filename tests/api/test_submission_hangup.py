"""A stored command reaches the vehicle or ends, whatever the HTTP client does (issue 11, point 2).

The hostile client sends `POST /api/v1/commands` over a raw socket and closes
it while the command's commit is held back (a gate in front of the database's
`record`), so Hypercorn cancels the request handler half-way through the
submission, deterministically.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import trio

from api.idempotency import request_hash
from api.schemas import SubmitCommand
from hub import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    StatusChange,
    StorageUnavailable,
)
from hub.testing import command as new_command
from sovd_hub import STOP_REASON
from storage import CommandFilter, Database, open_database
from tests.support.node import VINS, Node
from tests.support.recovery import running_node, status_of
from tests.support.websocket import (
    Frame,
    collect_until_status,
    frames_until,
    subscribe,
    subscribe_vehicle,
)

READ: dict[str, JSON] = {"command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
#: Time given to Hypercorn to notice a closed connection and cancel its handler.
NOTICE_S = 0.5


@dataclass
class CommitGate:
    """Holds back every commit that stores a new command for `vin` until `open`."""

    db: Database
    vin: str
    entered: trio.Event = field(default_factory=trio.Event)
    released: trio.Event = field(default_factory=trio.Event)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = self.db.commands.record

        async def record(
            events: Sequence[CommandEventRecord],
            changes: Sequence[StatusChange],
            commands: Sequence[Command] = (),
        ) -> frozenset[uuid.UUID]:
            if any(c.vin == self.vin for c in commands):
                self.entered.set()
                await self.released.wait()
            return await original(events, changes, commands)

        monkeypatch.setattr(self.db.commands, "record", record)

    def open(self) -> None:
        self.released.set()


async def hang_up_during_commit(
    node: Node, gate: CommitGate, body: dict[str, JSON], key: str | None = None
) -> None:
    """Send the submission over a raw socket, close it once its commit began, then let it commit."""
    url = httpx.URL(str(node.http.base_url))
    payload = orjson.dumps(body)
    lines = [
        "POST /api/v1/commands HTTP/1.1",
        f"Host: {url.host}:{url.port}",
        f"Authorization: {(await node.headers())['Authorization']}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
    ]
    if key is not None:
        lines.append(f"Idempotency-Key: {key}")
    stream = await trio.open_tcp_stream(url.host, url.port or 80)
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        with trio.fail_after(5):
            await gate.entered.wait()
    await trio.sleep(NOTICE_S)  # the handler is cancelled while its command is being committed
    gate.open()


async def stored(node: Node, vin: str) -> list[Command]:
    """The commands stored for `vin`, newest first."""
    return list((await node.db.commands.list_commands(CommandFilter(vin=vin), limit=100)).items)


async def final_status(node: Node, command_id: uuid.UUID | str) -> str:
    """Follow the command on the WebSocket until its status frame (fails after 5 s)."""
    with trio.fail_after(5):
        async with node.websocket("admin") as ws:
            await subscribe(ws, str(command_id))
            frames = await collect_until_status(ws)
    status = frames[-1]["status"]
    assert isinstance(status, str), frames
    return status


async def unrelated_command_succeeds(node: Node) -> None:
    response = await node.submit(VINS[2], "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 202, response.text
    assert await final_status(node, response.json()["id"]) == "succeeded"


@pytest.mark.slow
async def test_a_submission_whose_client_hangs_up_during_the_commit_still_runs(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    await node.connect_vehicle(VINS[2])
    gate = CommitGate(node.db, VINS[0])
    gate.install(monkeypatch)
    await hang_up_during_commit(node, gate, {"vin": VINS[0], **READ})
    await unrelated_command_succeeds(node)
    (row,) = await stored(node, VINS[0])
    assert await final_status(node, row.id) == "succeeded"
    assert vehicle.commands_received == 1


@pytest.mark.slow
async def test_an_idempotent_retry_after_a_hang_up_gets_the_command_and_it_runs(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    await node.connect_vehicle(VINS[2])
    gate = CommitGate(node.db, VINS[0])
    gate.install(monkeypatch)
    body: dict[str, JSON] = {"vin": VINS[0], **READ}
    await hang_up_during_commit(node, gate, body, key="hang-up-1")
    retry = await node.http.post(
        "/api/v1/commands",
        json=body,
        headers={**await node.headers(), "Idempotency-Key": "hang-up-1"},
    )
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    (row,) = await stored(node, VINS[0])
    assert retry.json()["id"] == str(row.id)
    assert await final_status(node, row.id) == "succeeded"
    await unrelated_command_succeeds(node)
    assert vehicle.commands_received == 1


def stray(vin: str, *, key: str | None = None) -> Command:
    """A ReadDTC of the engineer's whose hand-over was lost: stored, and nothing will run it."""
    body = {"vin": vin, **READ}
    return new_command(
        vin,
        timeout_s=5.0,
        submitted_by="engineer",
        idempotency_key=key,
        request_hash=request_hash(SubmitCommand.model_validate(body)) if key else None,
    )


async def cancel_and_watch(node: Node, command_id: str, vin: str) -> tuple[Frame, Frame]:
    """Cancel as the engineer; the status frames its command and vehicle topics then carry."""
    async with node.websocket("engineer") as on_command, node.websocket("engineer") as on_vin:
        await subscribe(on_command, command_id)
        await subscribe_vehicle(on_vin, vin)
        response = await node.http.post(
            f"/api/v1/commands/{command_id}/cancel", headers=await node.headers()
        )
        assert response.status_code == 202, response.text
        with trio.fail_after(5):
            (status,) = [f for f in await collect_until_status(on_command) if f["type"] == "status"]
            by_vin = await frames_until(on_vin, lambda f: f["type"] == "status")
    return status, by_vin[-1]


async def test_cancel_ends_a_pending_command_its_actor_does_not_hold(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    await node.connect_vehicle(VINS[2])
    lost = stray(VINS[0])
    await node.db.commands.record((), (), [lost])
    on_command, on_vin = await cancel_and_watch(node, str(lost.id), VINS[0])
    for frame in (on_command, on_vin):
        assert (frame["command_id"], frame["status"]) == (str(lost.id), "cancelled"), frame
        assert frame["error"] == "cancelled by engineer before it was sent"
    row = await node.db.commands.get_command(lost.id)
    assert row is not None and row.status is CommandStatus.CANCELLED
    await unrelated_command_succeeds(node)
    assert vehicle.commands_received == 0


async def test_cancel_of_a_command_waiting_for_its_vehicle_is_published(node: Node) -> None:
    await node.connect_vehicle(VINS[2])
    waiting = await node.submit(VINS[1], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=60)
    assert waiting.status_code == 202, waiting.text
    on_command, on_vin = await cancel_and_watch(node, waiting.json()["id"], VINS[1])
    for frame in (on_command, on_vin):
        assert (frame["command_id"], frame["status"]) == (waiting.json()["id"], "cancelled")
    await unrelated_command_succeeds(node)


async def test_a_retry_that_finds_its_command_lost_hands_it_over(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    await node.connect_vehicle(VINS[2])
    lost = stray(VINS[0], key="lost-1")
    await node.db.commands.record((), (), [lost])
    retry = await node.http.post(
        "/api/v1/commands",
        json={"vin": VINS[0], **READ},
        headers={**await node.headers(), "Idempotency-Key": "lost-1"},
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == str(lost.id)
    assert await final_status(node, lost.id) == "succeeded"
    await unrelated_command_succeeds(node)
    assert vehicle.commands_received == 1


async def test_a_commit_whose_answer_is_lost_leaves_no_pending_command(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    await node.connect_vehicle(VINS[0])
    await node.connect_vehicle(VINS[2])
    original = node.db.commands.record
    broken: list[uuid.UUID] = []

    async def record(
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> frozenset[uuid.UUID]:
        refused = await original(events, changes, commands)
        if not broken and any(c.vin == VINS[0] for c in commands):
            broken.extend(c.id for c in commands)
            raise StorageUnavailable("the connection broke while the commit was answered")
        return refused

    monkeypatch.setattr(node.db.commands, "record", record)
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 503, response.text
    (row,) = await stored(node, VINS[0])  # stored all the same
    assert await final_status(node, row.id) == "failed"
    row_now = await node.db.commands.get_command(row.id)
    assert row_now is not None and row_now.error is not None
    assert row_now.error.startswith("the hub could not confirm that the command was recorded")
    await unrelated_command_succeeds(node)


async def test_a_graceful_stop_ends_the_pending_commands_nothing_holds(
    aio_loop: object, database_url: str
) -> None:
    tokens: dict[str, str] = {}
    lost, waiting = (
        stray(VINS[0]),
        replace(stray(VINS[1]), expires_at=datetime.now(UTC) + timedelta(minutes=5)),
    )
    async with running_node(database_url, "stopping", tokens) as node:
        await node.connect_vehicle(VINS[0])
        await node.connect_vehicle(VINS[2])
        await node.db.commands.record((), (), [lost, waiting])
        await unrelated_command_succeeds(node)
    async with open_database(database_url, bcrypt_rounds=4, node_id="stopping") as db:
        assert await status_of(db, lost.id) == (CommandStatus.INTERRUPTED, STOP_REASON)
        assert (await status_of(db, waiting.id))[0] is CommandStatus.PENDING  # waits on
