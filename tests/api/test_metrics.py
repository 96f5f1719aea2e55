"""`/metrics`: what a Prometheus scrape of a working node shows."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.support.app import build_app
from tests.support.node import VINS, Node
from tests.support.websocket import collect_until_status, open_socket, subscribe

#: These tests need no second database backend: metrics do not depend on it.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _scrape(node: Node) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of `/metrics`, by name and labels."""
    response = await node.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@SQLITE
async def test_a_finished_command_is_counted_timed_and_its_route_is_the_url_rule(
    node: Node,
) -> None:
    await node.connect_vehicle(VINS[0])
    submitted = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    assert submitted.status_code == 202
    command_id = submitted.json()["id"]
    final = await node.wait_final(command_id)
    assert final["status"] == "succeeded"
    await node.http.get("/no/such/route/42")

    samples = await _scrape(node)

    assert _value(samples, "sovd_hub_commands_submitted_total", command="ReadDTC") == 1
    assert (
        _value(samples, "sovd_hub_commands_finished_total", command="ReadDTC", status="succeeded")
        == 1
    )
    assert (
        _value(
            samples,
            "sovd_hub_command_duration_seconds_count",
            command="ReadDTC",
            status="succeeded",
        )
        == 1
    )
    http = "sovd_hub_http_request_duration_seconds_count"
    assert _value(samples, http, route="/api/v1/commands", method="POST", status="202") == 1
    rule = "/api/v1/commands/<uuid:command_id>"
    assert _value(samples, http, route=rule, method="GET", status="200") >= 1
    assert _value(samples, http, route="unmatched", method="GET", status="404") == 1
    assert not any(command_id in str(labels) for _, labels in samples), "raw paths as labels"
    assert _value(samples, "sovd_hub_connected_vehicles") == 1
    assert _value(samples, "sovd_hub_mailbox_messages") == 0
    assert _value(samples, "sovd_hub_journal_batch_records_count") >= 1
    assert _value(samples, "sovd_hub_journal_commit_seconds_count") >= 1


@SQLITE
async def test_open_websockets_are_counted(node: Node) -> None:
    async with open_socket(node):  # the handshake is answered after the socket is counted
        assert _value(await _scrape(node), "sovd_hub_websocket_connections") == 1
    for _ in range(500):  # the server notices the close on its own time
        if _value(await _scrape(node), "sovd_hub_websocket_connections") == 0:
            break
        await trio.sleep(0.01)
    assert _value(await _scrape(node), "sovd_hub_websocket_connections") == 0


@SQLITE
async def test_metrics_are_not_in_the_openapi_document(node: Node) -> None:
    document = (await node.http.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]


def test_metrics_can_be_turned_off() -> None:
    assert "/metrics" in {rule.rule for rule in build_app().url_map.iter_rules()}
    off = build_app(metrics_enabled=False)
    assert "/metrics" not in {rule.rule for rule in off.url_map.iter_rules()}


async def test_the_work_behind_a_command_is_counted(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    before = await _scrape(node)
    command_id = (await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    async with node.websocket("engineer") as ws:
        await subscribe(ws, command_id)
        frames = await collect_until_status(ws)
    after = await _scrape(node)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("sovd_hub_db_transactions_total") >= 3  # submitted, dispatched, ended
    assert grew("sovd_hub_db_statements_total") > grew("sovd_hub_db_transactions_total")
    assert grew("sovd_hub_db_checkouts_total") >= 3
    assert _value(after, "sovd_hub_db_connections_opened_total") >= 1
    assert grew("sovd_hub_bridge_crossings_total", to="asyncio") >= 3
    # the acknowledgement, the events and the status (the login's frame came before)
    assert grew("sovd_hub_websocket_frames_sent_total") >= len(frames) + 1
