"""The audit trail for admins: who may read it, filters, keyset pages, and streamed exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from api.audit import EXPORT_COLUMNS, EXPORT_PAGE_ROWS
from hub import AuditNote
from storage import row_hash
from tests.support.node import PASSWORD, VINS, Node

AUDIT = "/api/v1/audit"
EXPORT = "/api/v1/audit/export"


async def _page(node: Node, **params: Any) -> dict[str, Any]:
    response = await node.http.get(AUDIT, params=params, headers=await node.headers("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _all(node: Node, **params: Any) -> list[dict[str, Any]]:
    """Every event the filters select, in one page."""
    body = await _page(node, limit=1000, **params)
    assert body["next"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def _notes(count: int, **fields: Any) -> list[AuditNote]:
    at = datetime.now(UTC)
    values = {"actor": "loader", "action": "test.bulk", "target": "test:bulk"} | fields
    return [
        AuditNote(at, values["actor"], values["action"], values["target"], {"n": n})
        for n in range(count)
    ]


def _verify(rows: list[dict[str, Any]], *, whole: bool) -> None:
    """Check each exported row's hash offline; `whole`: no row of any chain is missing."""
    last: dict[str, tuple[int, str]] = {}
    for row in rows:
        at = datetime.strptime(row["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        seq = int(row["seq"])
        digest = row_hash(
            row["prev_hash"], row["chain"], seq, at, row["actor"], row["action"], row["target"],
            row["details"],
        )  # fmt: skip
        assert digest == row["hash"], row
        before = last.get(row["chain"])
        if whole:
            assert before is None or before[0] + 1 == seq, row
        if before is not None and before[0] + 1 == seq:
            assert row["prev_hash"] == before[1], row
        last[row["chain"]] = (seq, row["hash"])


async def test_only_admins_read_or_export_the_trail(node: Node) -> None:
    before = await _all(node)
    for path in (AUDIT, EXPORT):
        anonymous = await node.http.get(path)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        assert anonymous.json()["error"]["code"] == "unauthenticated"
        for username in ("engineer", "viewer"):
            refused = await node.http.get(path, headers=await node.headers(username))
            assert refused.status_code == 403
            assert refused.json()["error"]["message"] == (
                f"role admin or higher required; you are {username}"
            )
    after = await _all(node)
    # Logins of the refused users only: no export was audited, nothing else was written.
    assert {e["action"] for e in after[len(before) :]} == {"auth.login"}


async def test_filters_select_by_actor_action_vehicle_and_time(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    command = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()
    assert (await node.wait_final(command["id"]))["status"] == "succeeded"
    failed = await node.http.post(
        "/api/v1/auth/login", json={"username": "viewer", "password": "not " + PASSWORD}
    )
    assert failed.status_code == 401
    patched = await node.http.patch(
        f"/api/v1/vehicles/{VINS[1]}", json={"year": 2022}, headers=await node.headers("admin")
    )
    assert patched.status_code == 200
    everything = await _all(node)

    by_engineer = await _all(node, actor="engineer")
    assert by_engineer and all(e["actor"] == "engineer" for e in by_engineer)
    assert {"auth.login", "command.submitted"} <= {e["action"] for e in by_engineer}

    auth = await _all(node, action="auth.*")
    assert {e["action"] for e in auth} == {"auth.login", "auth.login_failed"}
    assert auth == [e for e in everything if e["action"].startswith("auth.")]
    logins = await _all(node, action="auth.login")
    assert logins and {e["action"] for e in logins} == {"auth.login"}

    command_rows = await _all(node, vin=VINS[0], action="command.*")
    assert [(e["action"], e["actor"], e["target"]) for e in command_rows] == [
        ("command.submitted", "engineer", f"command:{command['id']}"),
        ("command.succeeded", "hub", f"command:{command['id']}"),
    ]
    of_vehicle = await _all(node, vin=VINS[0])
    assert all(e["vin"] == VINS[0] for e in of_vehicle)
    assert {"vehicle.added", "vehicle.token_issued"} <= {e["action"] for e in of_vehicle}
    assert [e["action"] for e in await _all(node, vin=VINS[1], actor="admin")] == [
        "vehicle.updated"
    ]
    assert await _all(node, vin="WVWZZZ1JZXW999999") == []

    last_id = everything[-1]["id"]
    middle = everything[len(everything) // 2]
    since = middle["at"]
    later = [e for e in await _all(node, since=since) if e["id"] <= last_id]
    assert middle in later
    assert later == [e for e in everything if _at(e) >= _at(middle)]
    earlier = await _all(node, until=since)
    assert earlier == [e for e in everything if _at(e) < _at(middle)]
    window = await _all(node, since=since, until="2100-01-01T00:00:00Z", action="vehicle.updated")
    assert [e["action"] for e in window] == ["vehicle.updated"]


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "2025-06-01T12:00:00"}, "since", "Input should have timezone info"),
        (
            {"since": "2025-06-01T12:00:00Z", "until": "2025-06-01T11:00:00Z"},
            "until",
            "Value error, until (2025-06-01T11:00:00+00:00) must be after since "
            "(2025-06-01T12:00:00+00:00)",
        ),
        ({"action": "auth."}, "action", "String should match pattern"),
        ({"action": "*"}, "action", "String should match pattern"),
        ({"vin": "SHORT"}, "vin", "String should match pattern"),
        ({"limit": "0"}, "limit", "Input should be greater than or equal to 1"),
        ({"after_id": "-1"}, "after_id", "Input should be greater than or equal to 0"),
        ({"order": "sideways"}, "order", "Input should be 'asc' or 'desc'"),
        ({"color": "red"}, "color", "Extra inputs are not permitted"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    node: Node, params: dict[str, str], field: str, message: str
) -> None:
    response = await node.http.get(AUDIT, params=params, headers=await node.headers("admin"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"][0]["field"] == field
    assert error["details"][0]["message"].startswith(message)
    if field != "order":  # the export takes the same filters (and no order)
        exported = await node.http.get(EXPORT, params=params, headers=await node.headers("admin"))
        assert exported.status_code == 422


async def test_pages_follow_next_in_both_orders_without_gap_or_repeat(node: Node) -> None:
    await node.db.audit.append_audits(_notes(23))
    whole = await _all(node, action="test.bulk")
    assert [e["details"]["n"] for e in whole] == list(range(23))
    for order, expected in (("asc", whole), ("desc", whole[::-1])):
        seen: list[dict[str, Any]] = []
        page = await _page(node, action="test.bulk", limit=5, order=order)
        while True:
            assert len(page["items"]) <= 5
            seen.extend(page["items"])
            if page["next"] is None:
                break
            assert page["next"].startswith(f"{AUDIT}?")
            response = await node.http.get(page["next"], headers=await node.headers("admin"))
            page = response.json()
        assert seen == expected
    # Events appended after a page neither shift nor repeat the next ones.
    page = await _page(node, action="test.bulk", limit=10)
    await node.db.audit.append_audits(_notes(2))
    numbers = [e["details"]["n"] for e in page["items"]]
    while page["next"] is not None:
        page = (await node.http.get(page["next"], headers=await node.headers("admin"))).json()
        numbers.extend(e["details"]["n"] for e in page["items"])
    assert numbers == [*range(23), 0, 1]


async def test_an_ndjson_export_streams_every_row_in_order_and_verifies(node: Node) -> None:
    count = 2 * EXPORT_PAGE_ROWS + 500  # three pages of the export
    await node.db.audit.append_audits(_notes(count))
    async with node.http.stream("GET", EXPORT, headers=await node.headers("admin")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in response.headers  # streamed, not built whole first
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="audit-')
        assert disposition.endswith('.ndjson"')
        lines = [line async for line in response.aiter_lines() if line]
    rows = [orjson.loads(line) for line in lines]
    ids = [row["id"] for row in rows]
    assert ids == sorted(set(ids))  # in order, no duplicates
    assert [r["details"]["n"] for r in rows if r["action"] == "test.bulk"] == list(range(count))
    assert ids == [e["id"] for e in await _all_pages(node)]  # every row, up to the export's own
    assert rows[-1]["action"] == "audit.exported"  # audited before it started, so included
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    _verify(rows, whole=True)


async def _all_pages(node: Node) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = await _page(node, limit=1000)
    while True:
        items.extend(page["items"])
        if page["next"] is None:
            return items
        page = (await node.http.get(page["next"], headers=await node.headers("admin"))).json()


async def test_a_csv_export_parses_back_with_json_details_intact(node: Node) -> None:
    awkward: dict[str, Any] = {
        "text": 'a "quoted", comma\nnewline; ünïcödé ✓',
        "nested": {"list": [1, 2.5, None, True], "empty": ""},
    }
    at = datetime.now(UTC)
    notes = [AuditNote(at, "loader", "test.csv", "test:csv", awkward | {"n": n}) for n in range(3)]
    notes += _notes(EXPORT_PAGE_ROWS + 10, action="test.csv")
    await node.db.audit.append_audits(notes)
    response = await node.http.get(
        EXPORT, params={"format": "csv", "action": "test.*"}, headers=await node.headers("admin")
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    reader = csv.DictReader(io.StringIO(response.text, newline=""))
    assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
    rows = [row | {"details": orjson.loads(row["details"])} for row in reader]
    assert len(rows) == len(notes)
    assert [r["details"] for r in rows[:3]] == [awkward | {"n": n} for n in range(3)]
    assert all(r["vin"] == "" for r in rows)  # no vehicle: an empty cell
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(set(ids))
    _verify(rows, whole=False)


async def test_an_export_is_audited_with_its_filters_before_it_streams(node: Node) -> None:
    await node.token("engineer")  # logs in: the one event of theirs
    since = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    params = {"format": "csv", "actor": "engineer", "since": since.isoformat()}
    response = await node.http.get(EXPORT, params=params, headers=await node.headers("admin"))
    assert response.status_code == 200
    [exported] = await _all(node, action="audit.exported")
    assert (exported["actor"], exported["target"], exported["vin"]) == ("admin", "audit", None)
    assert exported["details"] == {
        "format": "csv",
        "actor": "engineer",
        "since": since.isoformat().replace("+00:00", "Z"),
    }
    # The export held the engineer's events only (their login), not its own event.
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [(r["actor"], r["action"]) for r in rows] == [("engineer", "auth.login")]
    # A refused export is not audited.
    bad = await node.http.get(EXPORT, params={"format": "xml"}, headers=await node.headers("admin"))
    assert bad.status_code == 422
    assert len(await _all(node, action="audit.exported")) == 1
