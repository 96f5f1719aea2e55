"""`Idempotency-Key` on command submission: a retry returns the first command, never a second."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
import pytest
import trio
import trio.testing

from api.idempotency import KeyLocks, request_hash
from api.schemas import SubmitCommand
from hub import Command, SovdRequest
from tests.support.node import VINS, Node
from tests.support.websocket import collect_until_status, subscribe

READ: dict[str, object] = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}


async def _post(
    node: Node, body: Mapping[str, object], key: str | bytes, user: str = "engineer"
) -> httpx.Response:
    raw_key = key if isinstance(key, bytes) else key.encode()
    auth = {k.encode(): v.encode() for k, v in (await node.headers(user)).items()}
    headers = {**auth, b"Idempotency-Key": raw_key}
    return await node.http.post("/api/v1/commands", json=body, headers=headers)


async def _wait_final(node: Node, command_id: str) -> None:
    async with node.websocket("admin") as ws:
        await subscribe(ws, command_id)
        await collect_until_status(ws)


async def _stored(node: Node, user: str = "admin") -> list[str]:
    response = await node.http.get("/api/v1/commands", headers=await node.headers(user))
    return [item["id"] for item in response.json()["items"]]


async def test_a_retry_returns_the_first_command_without_running_it_again(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    first = await _post(node, READ, "retry-1")
    assert first.status_code == 202, first.text
    command_id = first.json()["id"]
    await node.wait_final(command_id)

    # the same body, keys reordered and a default spelled out: the same request
    again = {"params": {"ecuAddress": "0x10"}, "command": "ReadDTC", "vin": VINS[0], "ttl_s": None}
    retry = await _post(node, again, "retry-1")
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == command_id
    assert retry.json()["status"] == "succeeded"  # the command as it is now
    assert retry.headers["Location"] == f"/api/v1/commands/{command_id}"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert vehicle.commands_received == 1
    assert await _stored(node) == [command_id]
    submitted = [a for a in await node.db.audit.list_audit() if a.action == "command.submitted"]
    assert len(submitted) == 1


async def test_the_same_key_with_another_body_is_409(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    first = await _post(node, READ, "k")
    assert first.status_code == 202
    other = await _post(node, {**READ, "params": {"ecuAddress": "0x28"}}, "k")
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["message"] == (
        f"Idempotency-Key 'k' was already used for command {first.json()['id']} with a "
        "different body; send that body again to get the command back, or use a new key"
    )
    await node.wait_final(first.json()["id"])
    assert vehicle.commands_received == 1
    assert await _stored(node) == [first.json()["id"]]


async def test_keys_belong_to_their_user_and_refusals_do_not_use_them(node: Node) -> None:
    offline = await _post(node, READ, "shared")
    assert offline.status_code == 409  # vehicle offline: nothing stored, the key stays free
    assert offline.json()["error"]["code"] == "vehicle_offline"
    vehicle = await node.connect_vehicle(VINS[0])
    mine = await _post(node, READ, "shared")
    theirs = await _post(node, READ, "shared", user="other")
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]
    without_key = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    assert without_key.status_code == 202
    for response in (mine, theirs, without_key):
        await _wait_final(node, response.json()["id"])
    assert vehicle.commands_received == 3


async def test_simultaneous_submissions_with_one_key_make_one_command(node: Node) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    responses: list[httpx.Response] = []

    async def submit() -> None:
        responses.append(await _post(node, READ, "at-once"))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(submit)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 202]
    [command_id] = {r.json()["id"] for r in responses}
    await node.wait_final(command_id)
    assert vehicle.commands_received == 1
    assert await _stored(node) == [command_id]


async def test_a_waiting_command_is_returned_to_a_retry_while_it_waits(node: Node) -> None:
    body = {**READ, "ttl_s": 60}
    first = await _post(node, body, "wait")
    assert first.status_code == 202
    retry = await _post(node, body, "wait")
    assert (retry.status_code, retry.json()["id"]) == (200, first.json()["id"])
    assert retry.json()["status"] == "pending"
    vehicle = await node.connect_vehicle(VINS[0])
    await node.wait_final(first.json()["id"])
    assert vehicle.commands_received == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("x" * 201, "idempotency_key: String should have at most 200 characters"),
        (
            "clé".encode("latin-1"),
            "idempotency_key: Value error, Idempotency-Key must be 1-200 printable ASCII "
            "characters (no control characters, not blank); use e.g. a UUID",
        ),
        ("", None),
    ],
)
async def test_bad_keys_are_422_and_submit_nothing(
    node: Node, key: str | bytes, message: str | None
) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    response = await _post(node, READ, key)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == ("validation_failed", "idempotency_key")
    if message is not None:
        assert error["message"] == message
    assert await _stored(node) == []
    assert vehicle.commands_received == 0


async def test_a_200_character_key_is_fine(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    key = "k" * 199 + "~"
    first = await _post(node, READ, key)
    retry = await _post(node, READ, key)
    assert (first.status_code, retry.status_code) == (202, 200)
    assert first.json()["id"] == retry.json()["id"]


async def test_losing_a_race_to_another_node_returns_the_winners_command(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    # Another node stored the command between this node's lookup and its commit.
    winner = Command(
        id=uuid.uuid4(),
        vin=VINS[0],
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=5.0,
        submitted_by="engineer",
        submitted_at=datetime.now(UTC),
        idempotency_key="raced",
        request_hash=request_hash(SubmitCommand.model_validate(READ)),
    )
    await node.db.commands.record((), (), [winner])
    lookups = []
    real_lookup = node.db.commands.find_idempotent

    async def late_lookup(submitted_by: str, key: str) -> Command | None:
        lookups.append(key)
        return None if len(lookups) == 1 else await real_lookup(submitted_by, key)

    monkeypatch.setattr(node.db.commands, "find_idempotent", late_lookup)
    response = await _post(node, READ, "raced")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(winner.id)
    assert lookups == ["raced", "raced"]
    # Nothing on this node held the winner (no Redis: no other node to run it), so the retry
    # handed it over; the loser's command was never stored nor dispatched.
    await _wait_final(node, str(winner.id))
    assert vehicle.commands_received == 1
    assert await _stored(node) == [str(winner.id)]


async def test_key_locks_serialize_one_key_only_and_forget_it_after(
    autojump_clock: trio.abc.Clock,
) -> None:
    locks = KeyLocks()
    log: list[str] = []

    async def use(name: str, key: str) -> None:
        async with locks.hold("engineer", key):
            log.append(f"{name} in")
            await trio.sleep(1)
            log.append(f"{name} out")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, "a", "k")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(use, "b", "k")
        nursery.start_soon(use, "c", "another key")
        with trio.move_on_after(0.5):  # a waiter that gives up leaves the lock to the others
            async with locks.hold("engineer", "k"):
                log.append("never")
        assert len(locks) == 2
    assert log.index("a out") < log.index("b in")
    assert log.index("c in") < log.index("a out")  # another key does not wait
    assert "never" not in log
    assert len(locks) == 0
