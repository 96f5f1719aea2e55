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
    return NodeSettings(api={"console_dir": str(CONSOLE / "dist")})


async def _scenario(
    node: Node, name: str, request: pytest.FixtureRequest, **env: str
) -> dict[str, Any]:
    """Run `console/e2e/<name>.mjs` against `node`; what it printed (one JSON line)."""
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
    with trio.fail_after(120):
        done = await trio.run_process(
            ["node", str(CONSOLE / "e2e" / f"{name}.mjs")],
            env=settings,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, f"{output}\n{done.stderr.decode(errors='replace')[-4000:]}"
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


async def test_an_engineer_logs_in_sees_the_fleet_and_runs_readdtc_live(
    node: Node, request: pytest.FixtureRequest
) -> None:
    await node.connect_vehicle(VINS[0])
    seen = await _scenario(node, "command", request, USERNAME="engineer", VIN=VINS[0])
    assert seen["fleet_status"] == "connected"
    assert seen["final_status"] == "succeeded"
    assert seen["events"] >= 1
    stored = await node.http.get(
        f"/api/v1/commands/{seen['command_id']}", headers=await node.headers("engineer")
    )
    assert stored.json()["status"] == "succeeded"  # what the page showed is what happened
    assert (await _all_commands(node)) == 1  # one submission, one command
    shots = set(await trio.to_thread.run_sync(os.listdir, seen["screenshots"]))
    assert {
        f"{page}-{width}.png" for page in ("fleet", "command") for width in (1280, 768)
    } <= shots


async def _all_commands(node: Node) -> int:
    listing = await node.http.get("/api/v1/commands", headers=await node.headers("admin"))
    total: int = listing.json()["total"]
    return total
