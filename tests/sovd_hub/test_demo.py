"""`sovd-hub demo` (what `make run` starts) and the README's curl example against it."""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

README = Path(__file__).parents[2] / "README.md"


def readme_script(heading: str = "### Try it") -> str:
    """The first shell block under one of the README's headings."""
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"README has no sh block under {heading!r}"
    return match.group(1)


async def _read_banner(process: trio.Process) -> str:
    assert process.stdout is not None
    output = b""
    with trio.fail_after(60):
        while b"Try it:" not in output or not output.rstrip().endswith(b"'"):
            chunk = await process.stdout.receive_some()
            assert chunk, f"demo exited early: {output.decode()}"
            output += chunk
    return output.decode()


async def _wait_for_fleet(base: str, vehicles: int) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        with trio.fail_after(30):
            for _ in range(300):
                ready = (await http.get("/health/ready")).json()
                if ready.get("connected_vehicles") == vehicles:
                    return
                await trio.sleep(0.1)
    raise AssertionError("the simulated fleet did not connect")


@pytest.mark.slow
async def test_demo_serves_the_readme_example(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    command = [
        sys.executable,
        "-m",
        "sovd_hub",
        "demo",
        "--vehicles",
        "3",
        "--data-dir",
        str(data_dir),
        "--http-bind",
        "127.0.0.1:0",
        "--grpc-bind",
        "127.0.0.1:0",
    ]
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            functools.partial(trio.run_process, command, stdout=subprocess.PIPE, check=False)
        )
        banner = await _read_banner(process)
        base = re.search(r"REST API\s+(http://\S+)/api/v1", banner)
        assert base, banner
        await _wait_for_fleet(base.group(1), 3)

        script = readme_script().replace("http://127.0.0.1:8080", base.group(1))
        script = script.replace(".sovd-hub/", f"{data_dir}/")
        result = await trio.run_process(
            ["bash", "-euo", "pipefail", "-c", script], capture_stdout=True
        )
        lines = [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]
        # The script prints two documents: the events, then the command.
        events, final = lines[0], lines[1]
        assert [e["kind"] for e in events["items"]] == ["progress", "progress", "result"]
        assert [e["body"]["code"] for e in events["items"][:2]] == ["P0420", "P0171"]
        assert final["status"] == "succeeded" and final["vin"] == "1SVDHB00000000001"

        # The lines the demo itself prints work too (login + submit).
        printed = banner[banner.index("Try it:") + len("Try it:") :]
        submitted = await trio.run_process(
            ["bash", "-euo", "pipefail", "-c", printed], capture_stdout=True
        )
        assert json.loads(submitted.stdout)["status"] == "pending"

        await _run_operator_guide(base.group(1), data_dir)

        # hub.db (password hashes, sessions, the audit trail) and its -wal/-shm, written by
        # now, are kept to their owner like the secrets beside them (they were 0644).
        modes = {path.name: path.stat().st_mode & 0o777 for path in data_dir.iterdir()}
        assert {"hub.db", "hub.db-wal", "jwt-secret", "demo-password", "fleet.json"} <= set(modes)
        assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}
        assert data_dir.stat().st_mode & 0o777 == 0o700

        process.send_signal(signal.SIGINT)
        with trio.fail_after(15):
            assert await process.wait() == 0


async def _run_operator_guide(base: str, data_dir: Path) -> None:
    """The README's operator guide, verbatim but for the addresses, prints what it says."""
    script = readme_script("## Operator guide").replace("http://127.0.0.1:8080", base)
    script = script.replace(".sovd-hub/", f"{data_dir}/").replace(
        ".venv/bin/python", sys.executable
    )
    result = await trio.run_process(["bash", "-euo", "pipefail", "-c", script], capture_stdout=True)
    lines = result.stdout.decode().splitlines()
    assert lines[:3] == ["3", "connected", "['component', 'operation']"], lines
    frames = [line.split(" ")[:2] for line in lines[3:-2]]
    assert frames[:3] == [["authenticated", ""], ["subscribed", ""], ["event", "accepted"]]
    assert frames.count(["event", "progress"]) == 4
    assert frames[-2:] == [["event", "result"], ["status", "succeeded"]], lines
    assert lines[-2:] == ["succeeded", "204"], lines
