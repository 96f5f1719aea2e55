"""Command history: who sees which commands, the filters, and the pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub import Command, CommandStatus, SovdRequest, StatusChange
from tests.support.node import VINS, Node

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _command(vin: str, by: str, minutes: int, name: str = "ReadDTC") -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name=name,
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=5.0,
        submitted_by=by,
        submitted_at=T0 + timedelta(minutes=minutes),
    )


async def _seed(node: Node) -> dict[str, Command]:
    """Six commands a minute apart (a0 oldest): engineer's e0-e2, other's o0-o1, admin's a0."""
    seeded = {
        "a0": _command(VINS[0], "admin", 0),
        "e0": _command(VINS[0], "engineer", 1),
        "o0": _command(VINS[1], "other", 2, name="ClearDTC"),
        "e1": _command(VINS[1], "engineer", 3, name="ClearDTC"),
        "o1": _command(VINS[0], "other", 4),
        "e2": _command(VINS[2], "engineer", 5),
    }
    await node.db.commands.record((), (), list(seeded.values()))
    ended = T0 + timedelta(hours=1)
    await node.db.commands.record(
        (),
        [
            StatusChange(seeded["e0"].id, CommandStatus.SUCCEEDED, ended),
            StatusChange(seeded["e1"].id, CommandStatus.FAILED, ended, "vehicle said no"),
            StatusChange(seeded["o0"].id, CommandStatus.SUCCEEDED, ended),
        ],
    )
    return seeded


async def _history(node: Node, user: str, **params: str | int) -> tuple[list[str], int]:
    response = await node.http.get(
        "/api/v1/commands", params=params, headers=await node.headers(user)
    )
    assert response.status_code == 200, response.text
    listing = response.json()
    return [item["id"] for item in listing["items"]], listing["total"]


def _ids(seeded: dict[str, Command], *names: str) -> list[str]:
    return [str(seeded[name].id) for name in names]


async def test_each_sees_their_own_history_and_admins_see_everyones(node: Node) -> None:
    seeded = await _seed(node)
    assert await _history(node, "engineer") == (_ids(seeded, "e2", "e1", "e0"), 3)
    assert await _history(node, "other") == (_ids(seeded, "o1", "o0"), 2)
    assert await _history(node, "viewer") == ([], 0)  # viewers submit nothing
    everything = _ids(seeded, "e2", "o1", "e1", "o0", "e0", "a0")
    assert await _history(node, "admin") == (everything, 6)
    assert await _history(node, "admin", submitted_by="other") == (_ids(seeded, "o1", "o0"), 2)
    assert await _history(node, "engineer", submitted_by="engineer") == (
        _ids(seeded, "e2", "e1", "e0"),
        3,
    )


async def test_only_admins_may_name_another_submitter(node: Node) -> None:
    await _seed(node)
    response = await node.http.get(
        "/api/v1/commands", params={"submitted_by": "other"}, headers=await node.headers()
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert error["message"] == (
        "only admins may list other users' commands (you are engineer); "
        "leave out submitted_by or set it to engineer"
    )


async def test_filters_narrow_the_history(node: Node) -> None:
    seeded = await _seed(node)
    assert await _history(node, "admin", vin=VINS[0]) == (_ids(seeded, "o1", "e0", "a0"), 3)
    assert await _history(node, "admin", status="succeeded") == (_ids(seeded, "o0", "e0"), 2)
    assert await _history(node, "admin", status="failed,pending") == (
        _ids(seeded, "e2", "o1", "e1", "a0"),
        4,
    )
    assert await _history(node, "admin", command="ClearDTC") == (_ids(seeded, "e1", "o0"), 2)
    assert await _history(node, "engineer", command="ClearDTC", status="failed") == (
        _ids(seeded, "e1"),
        1,
    )
    # since is inclusive, until exclusive; any time zone
    since = (T0 + timedelta(minutes=1)).isoformat()
    until = (T0 + timedelta(minutes=4)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert await _history(node, "admin", since=since, until=until) == (
        _ids(seeded, "e1", "o0", "e0"),
        3,
    )
    assert await _history(node, "admin", since="2025-06-01T12:05:00Z") == (_ids(seeded, "e2"), 1)
    assert await _history(node, "admin", until="2025-06-01T12:00:00Z") == ([], 0)


async def test_pages_are_newest_first_without_overlap_even_for_equal_times(node: Node) -> None:
    same_time = [_command(VINS[0], "engineer", 0) for _ in range(5)]
    await node.db.commands.record((), (), same_time)
    pages = [await _history(node, "engineer", limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [total for _, total in pages] == [5, 5, 5]
    seen = [command_id for ids, _ in pages for command_id in ids]
    assert sorted(seen) == sorted(str(c.id) for c in same_time)
    assert [len(ids) for ids, _ in pages] == [2, 2, 1]
    assert await _history(node, "engineer", limit=2, offset=10) == ([], 5)


async def test_a_submitted_command_is_in_its_submitters_history(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    command = await node.wait_final(response.json()["id"])
    listing = await node.http.get(
        "/api/v1/commands", params={"status": "succeeded"}, headers=await node.headers()
    )
    [item] = listing.json()["items"]
    assert (item["id"], item["status"], item["vin"]) == (command["id"], "succeeded", VINS[0])
    assert item["links"]["events"] == f"/api/v1/commands/{command['id']}/events"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("since=2025-06-01T12:00:00", "since", "since: Input should have timezone info"),
        (
            "until=yesterday",
            "until",
            "until: Input should be a valid datetime or date, input is too short",
        ),
        (
            "status=done",
            "status",
            "status: Value error, unknown status 'done'; expected some of pending, "
            "dispatched, running, succeeded, failed, timed_out, cancelled, expired, interrupted",
        ),
        ("status=succeeded,", "status", None),
        ("vin=WVWZZZ1JZXW00000", "vin", None),
        ("limit=0", "limit", None),
        ("offset=x", "offset", None),
        ("submitted_by=", "submitted_by", None),
        ("sort=asc", "sort", None),
        ("command=Read%00DTC", "command", None),
        ("submitted_by=a%01", "submitted_by", None),
        (
            "since=2025-06-02T00:00:00Z&until=2025-06-01T00:00:00Z",
            "until",
            "until: Value error, until (2025-06-01T00:00:00+00:00) must be after since "
            "(2025-06-02T00:00:00+00:00)",
        ),
    ],
)
async def test_bad_history_parameters_are_422(
    node: Node, query: str, field: str, message: str | None
) -> None:
    response = await node.http.get(f"/api/v1/commands?{query}", headers=await node.headers())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == ("validation_failed", field)
    if message is not None:
        assert error["message"] == message


async def test_the_history_needs_a_token(node: Node) -> None:
    assert (await node.http.get("/api/v1/commands")).status_code == 401
