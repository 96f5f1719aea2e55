"""The console in a real browser: Debian's Chromium, driven by playwright-core
(`console/e2e/`), against a real node with simulated vehicles over gRPC, on SQLite and
Postgres. Each scenario is a script that prints what it saw and exits non-zero on the
first step that fails; its screenshots (1280 and 768 px wide) are kept under
`.artifacts/console/`.

The console must be built (`make console`; `make test` builds it first). Without
Chromium these tests skip, except under CI=true, where they fail (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from tests.support.hub_settings import ROOT
from tests.support.node import PASSWORD, VINS, Node, NodeSettings

CONSOLE = ROOT / "console"
ARTIFACTS = ROOT / ".artifacts" / "console"


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install chromium); CI needs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    if not (CONSOLE / "dist" / "index.html").is_file():
        pytest.fail("the console is not built: run `make console`")
    return found


@pytest.fixture
def node_settings() -> NodeSettings:
    # ws_token_check_s: an open console learns of a revoked session within a second.
    return NodeSettings(api={"console_dir": str(CONSOLE / "dist"), "ws_token_check_s": 1})


#: What a scenario may ask the test to do (`ask` in browser.mjs): its question, the answer.
Answer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def _no_questions(question: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError(f"the scenario asked {question} and this test answers nothing")


async def _scenario(
    node: Node,
    name: str,
    request: pytest.FixtureRequest,
    answer: Answer = _no_questions,
    **env: str,
) -> dict[str, Any]:
    """Run `console/e2e/<name>.mjs` against `node`; what it printed last (one JSON line).

    Its lines `ask {...}` are questions: `answer` acts on them (cuts a link, revokes a
    session) and its answer goes back as one JSON line on the script's stdin.
    """
    shots = ARTIFACTS / request.node.name.replace("[", "-").rstrip("]")
    shots.mkdir(parents=True, exist_ok=True)
    settings = {
        **os.environ,
        "CHROMIUM": _chromium(),
        "HUB_URL": str(node.http.base_url).rstrip("/"),
        "PASSWORD": PASSWORD,
        "SCREENSHOTS": str(shots),
        **env,
    }
    lines: list[str] = []
    errors = bytearray()
    process = await trio.lowlevel.open_process(
        ["node", str(CONSOLE / "e2e" / f"{name}.mjs")],
        env=settings,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin and process.stdout and process.stderr
    stdin, stdout, stderr = process.stdin, process.stdout, process.stderr

    async def drain_stderr() -> None:
        async for chunk in stderr:
            errors.extend(chunk)

    try:
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain_stderr)
                pending = b""
                async for chunk in stdout:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        line = raw.decode(errors="replace")
                        if line.startswith("ask "):
                            reply = await answer(json.loads(line.removeprefix("ask ")))
                            await stdin.send_all(json.dumps(reply).encode() + b"\n")
                        else:
                            lines.append(line)
                if pending:
                    lines.append(pending.decode(errors="replace"))
            returncode = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
    output = "\n".join(lines)
    assert returncode == 0, f"{output}\n{errors.decode(errors='replace')[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    (shots / "seen.json").write_text(json.dumps(result, indent=1) + "\n")  # kept for a look
    return result


async def test_an_engineer_logs_in_sees_the_fleet_and_runs_readdtc_live(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    seen = await _scenario(node, "command", request, USERNAME="engineer", VIN=VINS[0])
    headers = await node.headers("engineer")
    stored = await node.http.get(f"/api/v1/commands/{seen['command_id']}", headers=headers)
    assert stored.json()["status"] == "succeeded"  # the page waited for this status
    events = await node.http.get(f"/api/v1/commands/{seen['command_id']}/events", headers=headers)
    expected = [  # the page lists every stored event, in order, once (EventList's first line)
        f"#{e['seq']} {e['kind']} ({e['status']}){' · final' if e['final'] else ''}"
        for e in events.json()["items"]
    ]
    assert len(expected) == 3 and seen["events"] == expected  # two faults, then the result
    assert (await _all_commands(node)) == 1  # one submission, one command
    shots = set(await trio.to_thread.run_sync(os.listdir, seen["screenshots"]))
    assert {
        f"{page}-{width}.png" for page in ("fleet", "command") for width in (1280, 768)
    } <= shots


async def _all_commands(node: Node) -> int:
    listing = await node.http.get("/api/v1/commands", headers=await node.headers("admin"))
    total: int = listing.json()["total"]
    return total


async def _vehicle(node: Node, vin: str) -> dict[str, Any]:
    response = await node.http.get(f"/api/v1/vehicles/{vin}", headers=await node.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _shots(seen: dict[str, Any], *pages: str) -> set[str]:
    """The screenshots each of `pages` should have (one per width) that are missing."""
    wanted = {f"{page}-{width}.png" for page in pages for width in (1280, 768)}
    return wanted - set(os.listdir(seen["screenshots"]))


async def test_the_fleet_shows_a_vehicle_go_offline_and_come_back_live(
    node: Node, request: pytest.FixtureRequest
) -> None:
    vehicle = await node.connect_vehicle(VINS[0])
    hub_saw: list[dict[str, Any]] = []

    async def answer(question: dict[str, Any]) -> dict[str, Any]:
        if question["what"] == "cut":
            vehicle.break_link()  # as a lost cellular link would
            with trio.fail_after(5):
                await node.ended[VINS[0]].wait()  # the vehicle's side of the link is gone
            return {"cut": True}
        assert question["what"] == "reconnect", question
        await node.connect_vehicle(VINS[0])  # the vehicle's agent comes back
        hub_saw.append((await _vehicle(node, VINS[0]))["connection"])
        return {"reconnected": True}

    seen = await _scenario(node, "fleet_live", request, answer, USERNAME="viewer", VIN=VINS[0])
    assert [s["status"] for s in seen["seen"]] == ["connected", "disconnected", "connected"]
    assert [s["count"] for s in seen["seen"]] == ["connected: 1", "connected: 0", "connected: 1"]
    assert [c["status"] for c in hub_saw] == ["connected"]
    assert seen["seen"][1]["reason"] == "connection_lost"  # why, as the hub recorded it
    assert (await _vehicle(node, VINS[0]))["connection"]["status"] == "connected"
    assert (seen["reloaded"], seen["url"]) == (False, "/fleet")
    assert not _shots(seen, "fleet-offline", "fleet-online")


async def test_a_running_operation_shows_progress_and_is_cancelled_from_the_page(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    seen = await _scenario(
        node, "operation", request, USERNAME="engineer", VIN=VINS[0], DURATION_MS="6000"
    )
    assert seen["running_shown"] and seen["progress_events"] >= 2  # 0 %, then 25 %
    assert seen["final_status"] == "cancelled"
    assert seen["error"] == "cancelled by engineer"
    assert seen["cancel_buttons_after"] == 0
    stored = await node.http.get(
        f"/api/v1/commands/{seen['command_id']}", headers=await node.headers()
    )
    assert (stored.json()["command"], stored.json()["status"]) == ("StartOperation", "cancelled")
    events = await node.http.get(
        f"/api/v1/commands/{seen['command_id']}/events", headers=await node.headers()
    )
    bodies = [e["body"] for e in events.json()["items"]]
    assert all(b.get("status") != "completed" for b in bodies)  # stopped before its end
    assert events.json()["items"][-1]["status"] == 499  # the vehicle confirmed the cancel
    assert not _shots(seen, "operation-running", "operation-cancelled")


async def test_a_viewer_sees_no_send_button_on_a_vehicle_page(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    seen = await _scenario(node, "viewer", request, USERNAME="viewer", VIN=VINS[0])
    assert (seen["send_buttons"], seen["composers"], seen["command_pickers"]) == (0, 0, 0)
    assert "(viewer)" in seen["notice"]
    assert not _shots(seen, "fleet-viewer", "vehicle-viewer")


async def test_history_filters_change_the_rows_and_the_total(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    submissions: list[tuple[str, dict[str, Any]]] = [
        ("ReadDTC", {"ecuAddress": "0x10"}),
        ("ReadDataByID", {"ecuAddress": "0x10", "dataId": "0x1234"}),  # unknown: fails
        ("ListComponents", {}),
        ("ReadDTC", {"ecuAddress": "0x28"}),
    ]
    for command, params in submissions:
        response = await node.submit(VINS[0], command, params)
        assert response.status_code == 202, response.text
        await node.wait_final(response.json()["id"])
    filters: dict[str, dict[str, str]] = {
        "all": {},
        "failed": {"status": "failed"},
        "readdtc": {"command": "ReadDTC"},
        "readdtc_succeeded": {"command": "ReadDTC", "status": "succeeded"},
    }
    api: dict[str, list[tuple[str, str]]] = {}
    for key, params in filters.items():
        listing = await node.http.get(
            "/api/v1/commands", params=params, headers=await node.headers()
        )
        api[key] = [(c["command"], c["status"]) for c in listing.json()["items"]]
    assert [len(api[key]) for key in filters] == [4, 1, 2, 2]  # the filters do differ
    expected = json.dumps({key: len(items) for key, items in api.items()})

    seen = await _scenario(node, "history", request, USERNAME="engineer", EXPECTED=expected)
    for key in filters:
        shown = [(item["command"], item["status"]) for item in seen[key]["items"]]
        assert (shown, seen[key]["total"]) == (api[key], len(api[key])), key
    assert not _shots(seen, "history", "history-failed", "history-filtered")


async def test_a_revoked_session_returns_to_the_login_page_with_a_message(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    revoked: list[int] = []

    async def answer(question: dict[str, Any]) -> dict[str, Any]:
        assert question["what"] == "revoke", question
        # The browser's own session, logged out from elsewhere (another tab, an admin).
        response = await node.http.post(
            "/api/v1/auth/logout", headers={"Authorization": f"Bearer {question['token']}"}
        )
        revoked.append(response.status_code)
        return {"revoked": response.status_code}

    seen = await _scenario(node, "session_end", request, answer, USERNAME="engineer", VIN=VINS[0])
    assert revoked == [204]
    assert seen["url"] == "/login"
    assert seen["notice"].startswith("Your session ended")
    assert "revoked" in seen["notice"]
    assert seen["session_kept"] is False
    assert not _shots(seen, "fleet", "login-session-ended")


async def test_a_wrong_password_shows_the_hubs_message(
    node: Node, request: pytest.FixtureRequest
) -> None:
    seen = await _scenario(node, "login_errors", request, USERNAME="engineer")
    wrong = await node.http.post(
        "/api/v1/auth/login", json={"username": "engineer", "password": "not it"}
    )
    hub_says = wrong.json()["error"]["message"]
    assert (seen["status"], wrong.status_code) == (401, 401)
    assert seen["message"].startswith(hub_says), (seen["message"], hub_says)
    assert seen["stayed"] == "/login"
    assert seen["alerts_after"] == 0
    assert not _shots(seen, "login-error")


async def test_pages_have_no_serious_axe_violations_and_work_by_keyboard(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    await node.wait_final(response.json()["id"])  # a history row, a recent command
    seen = await _scenario(node, "accessibility", request, USERNAME="engineer", VIN=VINS[0])
    grave = [v for v in seen["violations"] if v["impact"] in ("serious", "critical")]
    assert not grave, json.dumps(seen["violations"], indent=1)
    assert set(seen["rules"]) == {"login", "fleet", "vehicle", "history"}
    assert min(seen["rules"].values()) >= 10, seen["rules"]  # axe did run on each page
    presses = seen["presses"]
    assert presses["username_autofocus"] is True and presses["username"] >= 1, presses
    assert presses["password"] == 1 and presses["login_button"] == 1, presses
    assert presses["send"] >= 1
    assert not _shots(seen, "login", "fleet", "vehicle", "history")
