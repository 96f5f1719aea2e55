"""JSON logs: a request's lines carry its correlation id, user, VIN and command, and only its."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from sovd_hub import configure_logging
from tests.support.node import VINS, Node

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def json_logs() -> Iterator[None]:
    """The production logging (JSON lines on stdout) at DEBUG, put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG")
    structlog.configure(cache_logger_on_first_use=False)  # later tests get the defaults back
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def _lines(output: str) -> list[dict[str, object]]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            entry = orjson.loads(line)
            assert isinstance(entry, dict)
            lines.append(entry)
    return lines


@SQLITE
async def test_a_request_logs_its_correlation_id_user_vin_and_command(
    node: Node, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await node.connect_vehicle(VINS[0])
    headers = {**await node.headers("engineer"), "X-Request-ID": "trace-log-1"}
    body = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
    response = await node.http.post("/api/v1/commands", json=body, headers=headers)
    assert response.status_code == 202
    command_id = response.json()["id"]
    # The next request on the same connection must not inherit any of it.
    anonymous = await node.http.get("/health/live", headers={"X-Request-ID": "trace-log-2"})
    assert anonymous.status_code == 200

    lines = _lines(capsys.readouterr().out)

    submitted = [line for line in lines if line.get("event") == "command.submitted"]
    assert len(submitted) == 1, lines
    assert submitted[0]["correlation_id"] == "trace-log-1"
    assert submitted[0]["user"] == "engineer"
    assert submitted[0]["vin"] == VINS[0]
    assert submitted[0]["command_id"] == command_id
    assert submitted[0]["level"] == "debug"
    later = [line for line in lines if line.get("correlation_id") == "trace-log-2"]
    assert later, lines
    for line in later:
        assert {"user", "vin", "command_id"}.isdisjoint(line), line


@SQLITE
async def test_a_path_names_the_vehicle_and_the_command_of_its_log_lines(
    node: Node, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    command_id = "0d5cbb0e-05a8-4a4b-9d87-1e1f6a3ba2c1"
    response = await node.http.get(
        f"/api/v1/commands/{command_id}", headers=await node.headers("admin")
    )
    assert response.status_code == 404
    await node.http.get(f"/api/v1/vehicles/{VINS[1]}", headers=await node.headers("admin"))

    requests = [line for line in _lines(capsys.readouterr().out) if line["event"] == "http.request"]

    by_route = {line["route"]: line for line in requests}
    command = by_route["/api/v1/commands/<uuid:command_id>"]
    assert command["command_id"] == command_id
    assert command["user"] == "admin"
    assert command["status"] == 404
    assert by_route["/api/v1/vehicles/<vin>"]["vin"] == VINS[1]
