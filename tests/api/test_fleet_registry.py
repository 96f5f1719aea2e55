"""The fleet registry: filtering and paging the vehicle list, one vehicle in detail, editing one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub import Command, SovdRequest
from tests.support.node import VINS, Node

HONDA = "1HGCM82633A004352"
TESLA = "5YJ3E1EA7KF317000"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


async def _register_more(node: Node) -> None:
    _, node.vehicle_tokens[HONDA] = await node.db.vehicles.add_vehicle(
        HONDA, make="Honda", model="Accord", year=2003
    )
    _, node.vehicle_tokens[TESLA] = await node.db.vehicles.add_vehicle(
        TESLA, make="Tesla", model="Model 3", year=2019
    )


async def _list(node: Node, user: str = "viewer", **params: str | int) -> dict[str, object]:
    response = await node.http.get(
        "/api/v1/vehicles", params=params, headers=await node.headers(user)
    )
    assert response.status_code == 200, response.text
    listing: dict[str, object] = response.json()
    return listing


def _vins(listing: dict[str, object]) -> list[str]:
    items = listing["items"]
    assert isinstance(items, list)
    return [item["vin"] for item in items]


async def test_the_list_filters_by_live_status_and_search(node: Node) -> None:
    await _register_more(node)
    await node.connect_vehicle(VINS[1])
    await node.connect_vehicle(TESLA)

    connected = await _list(node, status="connected")
    assert (_vins(connected), connected["total"]) == ([TESLA, VINS[1]], 2)
    disconnected = await _list(node, status="disconnected")
    assert (_vins(disconnected), disconnected["total"]) == ([HONDA, VINS[0], VINS[2]], 3)

    assert _vins(await _list(node, search="gOLf")) == list(VINS)  # model, any case
    assert _vins(await _list(node, search="honda")) == [HONDA]  # make
    assert _vins(await _list(node, search="000002")) == [VINS[1]]  # VIN
    assert _vins(await _list(node, search="model 3")) == [TESLA]
    both = await _list(node, search="golf", status="disconnected")
    assert (_vins(both), both["total"]) == ([VINS[0], VINS[2]], 2)
    # LIKE wildcards are plain characters here
    for literal in ("%", "_"):
        nothing = await _list(node, search=literal)
        assert (nothing["items"], nothing["total"]) == ([], 0)


async def test_pages_are_stable_and_total_counts_the_whole_match(node: Node) -> None:
    await _register_more(node)
    everything = sorted([*VINS, HONDA, TESLA])
    pages = [await _list(node, limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [_vins(p) for p in pages] == [everything[0:2], everything[2:4], everything[4:], []]
    assert (pages[1]["limit"], pages[1]["offset"]) == (2, 2)
    default = await _list(node)
    assert (default["limit"], default["offset"], default["total"]) == (50, 0, 5)
    golf = await _list(node, search="golf", limit=1, offset=1)
    assert (_vins(golf), golf["total"]) == ([VINS[1]], 3)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("status=online", "status"),
        ("search=", "search"),
        ("search=" + "x" * 101, "search"),
        ("limit=1&limit=2", "limit"),
        ("stauts=connected", "stauts"),
        ("search=a%00b", "search"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_parameter(
    node: Node, query: str, field: str
) -> None:
    response = await node.http.get(f"/api/v1/vehicles?{query}", headers=await node.headers())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(f"{field}: ")


async def test_the_list_needs_a_token(node: Node) -> None:
    response = await node.http.get("/api/v1/vehicles?status=connected")
    assert response.status_code == 401


async def test_one_vehicle_shows_its_link_counts_and_own_recent_commands(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    ids: dict[str, list[str]] = {}
    for user in ("engineer", "other", "engineer"):
        response = await node.http.post(
            "/api/v1/commands",
            json={"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}},
            headers=await node.headers(user),
        )
        assert response.status_code == 202, response.text
        ids.setdefault(user, []).append(response.json()["id"])

    async def detail(user: str) -> dict[str, object]:
        response = await node.http.get(
            f"/api/v1/vehicles/{VINS[0]}", headers=await node.headers(user)
        )
        assert response.status_code == 200, response.text
        found: dict[str, object] = response.json()
        return found

    def recent(found: dict[str, object]) -> list[str]:
        commands = found["recent_commands"]
        assert isinstance(commands, list)
        return [c["id"] for c in commands]

    as_admin = await detail("admin")
    newest_first = [ids["engineer"][1], ids["other"][0], ids["engineer"][0]]
    assert recent(as_admin) == newest_first
    assert recent(await detail("engineer")) == [ids["engineer"][1], ids["engineer"][0]]
    assert recent(await detail("other")) == ids["other"]
    assert recent(await detail("viewer")) == []
    connection = as_admin["connection"]
    assert isinstance(connection, dict)
    assert connection["status"] == "connected"
    assert connection["session_id"] == node.vehicles[VINS[0]].session_id
    active = as_admin["active_commands"]
    assert isinstance(active, dict) and set(active) == {"pending", "dispatched", "running"}
    assert (as_admin["make"], as_admin["enabled"], as_admin["metadata"]) == ("VW", True, {})


async def test_recent_commands_are_the_ten_newest_and_active_ones_are_counted(
    node: Node,
) -> None:
    commands = [_command(VINS[2], T0 + timedelta(minutes=i)) for i in range(12)]
    await node.db.commands.record((), (), commands)
    response = await node.http.get(f"/api/v1/vehicles/{VINS[2]}", headers=await node.headers())
    found = response.json()
    assert [c["id"] for c in found["recent_commands"]] == [
        str(c.id) for c in reversed(commands[2:])
    ]
    assert found["active_commands"] == {"pending": 12, "dispatched": 0, "running": 0}
    assert found["connection"]["session_id"] is None
    missing = await node.http.get(
        "/api/v1/vehicles/WVWZZZ1JZXW999999", headers=await node.headers()
    )
    assert missing.status_code == 404


async def test_an_admin_updates_a_vehicle_and_the_change_is_audited(node: Node) -> None:
    admin = await node.headers("admin")
    url = f"/api/v1/vehicles/{VINS[0]}"
    body = {"model": "Passat", "year": 2022, "metadata": {"fleet": "north", "seats": 5}}
    response = await node.http.patch(url, json=body, headers=admin)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["make"], updated["model"], updated["year"]) == ("VW", "Passat", 2022)
    assert updated["metadata"] == {"fleet": "north", "seats": 5}
    again = await node.http.patch(url, json={"metadata": {"fleet": "south"}}, headers=admin)
    assert again.json()["metadata"] == {"fleet": "south"}  # replaced, not merged
    same = await node.http.patch(url, json={"make": "VW", "year": 2022}, headers=admin)
    assert same.status_code == 200  # nothing differs: nothing written

    audit = await node.db.audit.list_audit(target=f"vehicle:{VINS[0]}")
    updates = [(a.actor, a.details) for a in audit if a.action == "vehicle.updated"]
    assert updates == [
        (
            "admin",
            {
                "changed": {
                    "model": {"from": "Golf", "to": "Passat"},
                    "year": {"from": 2021, "to": 2022},
                    "metadata": {"from": {}, "to": {"fleet": "north", "seats": 5}},
                }
            },
        ),
        ("admin", {"changed": {"metadata": {"from": body["metadata"], "to": {"fleet": "south"}}}}),
    ]
    listed = await _list(node, search="passat")
    assert _vins(listed) == [VINS[0]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"make": None}, "make"),
        ({"make": ""}, "make"),
        ({"year": 1800}, "year"),
        ({"year": "2022"}, "year"),
        ({"colour": "red"}, "colour"),
        ({"vin": VINS[1]}, "vin"),
        ({"metadata": []}, "metadata"),
        ({"make": "V\u0000W"}, "make"),
        ({"model": "Golf\n"}, "model"),
        ({"metadata": {"note": ["a\u0000b"]}}, "metadata"),
        ({"metadata": {"k\u0000": 1}}, "metadata"),
    ],
)
async def test_bad_updates_are_422_and_change_nothing(
    node: Node, body: dict[str, object], field: str
) -> None:
    response = await node.http.patch(
        f"/api/v1/vehicles/{VINS[0]}", json=body, headers=await node.headers("admin")
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field
    vehicle = await node.db.vehicles.get_vehicle(VINS[0])
    assert vehicle is not None and (vehicle.make, vehicle.model, vehicle.year) == (
        "VW",
        "Golf",
        2021,
    )


async def test_only_admins_update_and_unknown_vehicles_are_404(node: Node) -> None:
    body = {"make": "Seat"}
    for user in ("engineer", "viewer"):
        response = await node.http.patch(
            f"/api/v1/vehicles/{VINS[0]}", json=body, headers=await node.headers(user)
        )
        assert response.status_code == 403
    missing = await node.http.patch(
        "/api/v1/vehicles/WVWZZZ1JZXW999999", json=body, headers=await node.headers("admin")
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_vehicle"
    assert [a.action for a in await node.db.audit.list_audit(target=f"vehicle:{VINS[0]}")] == [
        "vehicle.added",
        "vehicle.token_issued",
    ]


def _command(vin: str, at: datetime, by: str = "engineer") -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/engine/faults"),
        timeout_s=5.0,
        submitted_by=by,
        submitted_at=at,
    )


async def test_what_cannot_be_a_vin_is_404_without_a_query(node: Node) -> None:
    admin = await node.headers("admin")
    for path in ("/api/v1/vehicles/%00", "/api/v1/vehicles/" + "A%00" * 6):
        assert (await node.http.get(path, headers=admin)).status_code == 404
        patched = await node.http.patch(path, json={"make": "x"}, headers=admin)
        assert patched.status_code == 404
        for action in ("token", "disable", "enable"):
            assert (await node.http.post(f"{path}/{action}", headers=admin)).status_code == 404
