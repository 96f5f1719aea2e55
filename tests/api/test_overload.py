"""Admission control: past max_open_commands (per user first) a new command is 503 overloaded,
with Retry-After, before anything is written; an ended command makes room again."""

from __future__ import annotations

import httpx
import pytest

from bench.simulator import Behaviour
from tests.support.node import VINS, Node, NodeSettings


@pytest.fixture
def node_settings() -> NodeSettings:
    return NodeSettings(hub={"max_open_commands": 3, "max_open_commands_per_user": 2})


async def _submit(node: Node, vin: str, username: str = "engineer") -> httpx.Response:
    body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
    return await node.http.post("/api/v1/commands", json=body, headers=await node.headers(username))


async def _stored(node: Node) -> int:
    listing = await node.http.get("/api/v1/commands", headers=await node.headers("admin"))
    total: int = listing.json()["total"]
    return total


async def test_past_the_bounds_new_commands_are_refused_before_anything_is_written(
    node: Node,
) -> None:
    for vin in VINS[:2]:
        await node.connect_vehicle(vin, Behaviour(silent=True))  # commands stay open
    first = await _submit(node, VINS[0])
    assert first.status_code == 202 and (await _submit(node, VINS[1])).status_code == 202

    refused = await _submit(node, VINS[0])
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "overloaded"
    assert error["message"] == (
        "engineer has 2 unfinished commands on this hub node (max_open_commands_per_user); "
        "retry when some have ended"
    )
    assert refused.headers["Retry-After"] == "1"
    assert await _stored(node) == 2  # nothing written

    assert (await _submit(node, VINS[0], "other")).status_code == 202  # their own bound
    full = await _submit(node, VINS[1], "other")
    assert full.status_code == 503
    assert full.json()["error"]["message"].startswith("this hub node has 3 unfinished commands")
    assert await _stored(node) == 3

    cancel = await node.http.post(
        f"/api/v1/commands/{first.json()['id']}/cancel", headers=await node.headers()
    )
    assert cancel.status_code == 202
    assert (await node.wait_final(first.json()["id"]))["status"] == "cancelled"
    assert (await _submit(node, VINS[1])).status_code == 202  # room again
    metrics = (await node.http.get("/metrics")).text
    assert "sovd_hub_commands_refused_overloaded_total 2.0" in metrics
    assert "sovd_hub_open_commands 3.0" in metrics
