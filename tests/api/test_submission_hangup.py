"""A stored command reaches the vehicle or ends, whatever the HTTP client does (issue 11, point 2).

The hostile client sends `POST /api/v1/commands` over a raw socket and closes
it while the command's commit is held back (a gate in front of the database's
`record`), so Hypercorn cancels the request handler half-way through the
submission, deterministically.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import trio

from hub import Command, CommandEventRecord, JSON, StatusChange, build_request
from storage import CommandFilter, CommandRow, Database
from tests.api.conftest import VINS, Node, collect_until_status, receive_json, send_json, subscribe

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
        original = self.db.record

        async def record(
            events: Sequence[CommandEventRecord],
            changes: Sequence[StatusChange],
            commands: Sequence[Command] = (),
        ) -> frozenset[uuid.UUID]:
            if any(c.vin == self.vin for c in commands):
                self.entered.set()
                await self.released.wait()
            return await original(events, changes, commands)

        monkeypatch.setattr(self.db, "record", record)

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


async def stored(node: Node, vin: str) -> list[CommandRow]:
    """The commands stored for `vin`, newest first."""
    return list((await node.db.list_commands(CommandFilter(vin=vin), limit=100)).items)


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
