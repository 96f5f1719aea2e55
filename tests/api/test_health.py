"""`/health/live` and `/health/ready`: which part is not ready, by name."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import cast

import pytest

from api import health
from api.state import AppState
from hub import HubConfig
from tests.support.node import Node

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
async def test_a_working_node_is_ready_with_each_check_named(node: Node) -> None:
    response = await node.http.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "gateway": "ok"}  # no Redis configured
    assert body["connected_vehicles"] == 0
    live = await node.http.get("/health/live")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"


@SQLITE
async def test_a_failing_check_makes_the_node_unavailable_naming_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(s: AppState) -> str | None:
        raise health.NotReady("the flux capacitor does not answer")

    async def not_configured(s: AppState) -> str | None:
        return None

    checks = {**health.READY_CHECKS, "flux": broken, "optional": not_configured}
    monkeypatch.setattr(health, "READY_CHECKS", checks)

    response = await node.http.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {
        "database": "ok",
        "gateway": "ok",
        "flux": "the flux capacitor does not answer",
    }


@dataclass
class _Hub:
    grpc_port: int


async def test_the_gateway_check_fails_when_nothing_listens_on_the_grpc_port() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and now is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = cast(AppState, _State(_Hub(port), HubConfig(grpc_host="0.0.0.0")))
    with pytest.raises(health.NotReady, match=f"does not accept connections on 127.0.0.1:{port}"):
        await health.READY_CHECKS["gateway"](state)


@dataclass
class _State:
    hub: _Hub
    hub_config: HubConfig
