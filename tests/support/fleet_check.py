"""The check every hostile-input test ends with: an unrelated vehicle's command still succeeds."""

from __future__ import annotations

from tests.support.node import VINS, Node


async def assert_unrelated_command_succeeds(node: Node, vin: str = VINS[2]) -> None:
    """Connect `vin` (unless it is), run a ReadDTC on it through REST and the WebSocket, and
    check that it succeeded."""
    if vin not in node.vehicles:
        await node.connect_vehicle(vin)
    submitted = await node.submit(vin, "ReadDTC", {"ecuAddress": "0x10"})
    assert submitted.status_code == 202, submitted.text
    final = await node.wait_final(str(submitted.json()["id"]))
    assert final["status"] == "succeeded", final
