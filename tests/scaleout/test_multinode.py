"""Several hub processes on loopback, one Postgres database, one Redis prefix.

Each test runs `sovd-hub serve` twice (nodes `node-a` and `node-b`) and
simulated vehicles (`bench.simulator`) that fail over between them, then
drives them over HTTP as an operator would:

- a command submitted on B for a vehicle held by A runs on A (and a
  redelivered stream entry does not run it twice); A is SIGKILLed; the
  vehicle lands on B, the command that was running on A ends `interrupted`
  (by B's janitor), and a new command through B runs;
- Redis is cut (a TCP proxy between the nodes and Redis): each node keeps
  serving its own vehicles, a command for the other node's vehicle gets 503
  naming Redis, `/health/ready` names Redis; once restored, everything works
  again by itself;
- a vehicle that connects to node A while node B holds it: B ends its stale
  link (`ABORTED`, "replaced by a connection on node node-a").

Every command answered 202 ends final. Events are followed through
`GET /commands/{id}` and `/events` (stored in Postgres) and, for the routed
command, on a WebSocket of node B (the Redis event bus).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
import redis
import trio
import trio_websocket

from bench.simulator import VehicleSpec
from bench.stack import BENCH_PASSWORD, BENCH_USER, free_port, provision, wait_http
from hub import node_lost_reason
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
    with_database_name,
)
from tests.support.tcp_proxy import Cut, open_tcp_proxy

pytestmark = pytest.mark.slow

FINAL = ("succeeded", "failed", "timed_out", "cancelled", "expired", "interrupted")
READ_DTC = {"command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
#: Short leases so a dead node is noticed in seconds (lease 3 s, then 1 s of grace).
SCALE_OUT = {
    "SOVD_HUB_LEASE_TTL_S": "3",
    "SOVD_HUB_LEASE_REFRESH_S": "1",
    "SOVD_HUB_NODE_DEAD_AFTER_S": "1",
    "SOVD_HUB_JANITOR_INTERVAL_S": "0.5",
    "SOVD_HUB_HEARTBEAT_INTERVAL_S": "1",
}


@pytest.fixture
def cluster_database_url() -> Iterator[str]:
    """A fresh, unmigrated Postgres database of this test's own, dropped afterwards."""
    server_url = postgres_server_url()
    name = f"sovd_scale_{uuid.uuid4().hex[:12]}"
    create_postgres_database(server_url, name)
    try:
        yield with_database_name(server_url, name)
    finally:
        drop_postgres_database(server_url, name)


@dataclass
class Node:
    """A running `sovd-hub serve`."""

    node_id: str
    process: trio.Process
    http: httpx.AsyncClient
    grpc_port: int


@dataclass
class Cluster:
    url: str
    redis_url: str
    prefix: str
    secret: str
    workdir: Path
    accepted: set[str]
    token: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, node_id: str, redis_url: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            **SCALE_OUT,
            **self.extra_env,
            "SOVD_HUB_NODE_ID": node_id,
            "SOVD_HUB_JWT_SECRET": self.secret,
            "SOVD_HUB_BCRYPT_ROUNDS": "4",
            "SOVD_HUB_REDIS_URL": redis_url or self.redis_url,
            "SOVD_HUB_REDIS_KEY_PREFIX": self.prefix,
            "SOVD_HUB_DEFAULT_COMMAND_TIMEOUT_S": "20",
            "SOVD_HUB_SHUTDOWN_GRACE_S": "2",
        }

    @asynccontextmanager
    async def node(
        self, node_id: str, grpc_port: int, redis_url: str | None = None
    ) -> AsyncIterator[Node]:
        """`sovd-hub serve` as `node_id`; SIGTERM (then SIGKILL) on exit, unless killed."""
        http_port = free_port()
        command = [
            sys.executable, "-m", "sovd_hub", "serve", "--database-url", self.url,
            "--http-bind", f"127.0.0.1:{http_port}", "--grpc-bind", f"127.0.0.1:{grpc_port}",
            "--log-level", "WARNING",
        ]  # fmt: skip
        log = (self.workdir / f"{node_id}.log").open("ab")
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                _run, command, self.env(node_id, redis_url), log
            )
            base = f"http://127.0.0.1:{http_port}"
            try:
                await wait_http(base, process, timeout_s=30)
                async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                    yield Node(node_id, process, http, grpc_port)
            finally:
                with trio.CancelScope(shield=True):
                    if process.poll() is None:
                        process.terminate()
                        with trio.move_on_after(10):
                            await process.wait()
                    if process.poll() is None:
                        process.kill()
                        await process.wait()
                    log.close()

    @asynccontextmanager
    async def vehicle(
        self, spec: VehicleSpec, *grpc_ports: int, name: str = ""
    ) -> AsyncIterator[Path]:
        """A simulated vehicle trying `grpc_ports` in order (failing over to the next);
        yields the path of its log."""
        name = name or spec.vin
        fleet = self.workdir / f"fleet-{name}.json"
        fleet.write_text(json.dumps({"vehicles": [{"vin": spec.vin, "token": spec.token}]}))
        hubs = ",".join(f"127.0.0.1:{port}" for port in grpc_ports)
        command = [
            sys.executable, "-m", "bench.simulator", "--hub", hubs, "--fleet-file", str(fleet),
            "--event-latency-ms", "300",
        ]  # fmt: skip
        log_path = self.workdir / f"vehicle-{name}.log"
        log = log_path.open("ab")
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(_run, command, dict(os.environ), log)
            try:
                yield log_path
            finally:
                with trio.CancelScope(shield=True):
                    process.terminate()
                    with trio.move_on_after(5):
                        await process.wait()
                    if process.poll() is None:
                        process.kill()
                        await process.wait()
                    log.close()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def submit(self, node: Node, vin: str, **extra: object) -> httpx.Response:
        response = await node.http.post(
            "/api/v1/commands", json={"vin": vin, **READ_DTC, **extra}, headers=self.headers()
        )
        if response.status_code == 202:
            self.accepted.add(response.json()["id"])
        return response

    async def wait_status(
        self, node: Node, command_id: str, wanted: tuple[str, ...], timeout_s: float = 20
    ) -> dict[str, object]:
        """Poll `GET /commands/{id}` on `node` until its status is one of `wanted`."""
        body: dict[str, object] = {}
        with trio.move_on_after(timeout_s):
            while True:
                response = await node.http.get(
                    f"/api/v1/commands/{command_id}", headers=self.headers()
                )
                body = response.json()
                if body.get("status") in wanted:
                    return body
                await trio.sleep(0.1)
        raise AssertionError(f"command {command_id} not {wanted} after {timeout_s} s: {body}")

    async def assert_all_final(self, node: Node) -> None:
        """Every command answered 202 has ended (nothing accepted is lost)."""
        for command_id in self.accepted:
            await self.wait_status(node, command_id, FINAL)


async def _run(
    command: list[str],
    env: dict[str, str],
    log: BinaryIO,
    *,
    task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED,
) -> None:
    await trio.run_process(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        task_status=task_status,
    )  # fmt: skip


async def wait_connected(node: Node, count: int, timeout_s: float = 20) -> None:
    with trio.fail_after(timeout_s):
        while True:  # polling: the other process has no push for this
            if (await live(node))["connected_vehicles"] == count:
                return
            await trio.sleep(0.1)


async def live(node: Node) -> dict[str, object]:
    body: dict[str, object] = (await node.http.get("/health/live")).json()
    return body


@pytest.fixture
async def cluster(
    aio_loop: object,
    cluster_database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[Cluster, list[VehicleSpec]]]:
    """A migrated database with the bench user and three vehicles; nothing running yet."""
    migrated = await trio.run_process(
        [sys.executable, "-m", "sovd_hub", "migrate", "--database-url", cluster_database_url],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    specs = await provision(cluster_database_url, 3)
    yield (
        Cluster(
            cluster_database_url,
            redis_url,
            redis_key_prefix,
            secrets.token_urlsafe(48),
            tmp_path,
            set(),
        ),
        specs,
    )


async def login(cluster: Cluster, node: Node) -> None:
    response = await node.http.post(
        "/api/v1/auth/login", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
    )
    assert response.status_code == 200, response.text
    cluster.token = response.json()["access_token"]


async def follow_on_websocket(
    node: Node, token: str, command_id: str, seen: list[dict[str, object]], done: trio.Event
) -> None:
    """Subscribe to `command:<id>` on `node` and collect frames until its final status."""
    url = node.http.base_url.copy_with(scheme="ws", path="/api/v1/ws")
    async with trio_websocket.open_websocket_url(str(url)) as ws:
        await ws.send_message(json.dumps({"type": "auth", "token": token}))
        await ws.send_message(
            json.dumps({"type": "subscribe", "topic": f"command:{command_id}", "from_seq": 0})
        )
        while True:
            frame = json.loads(await ws.get_message())
            seen.append(frame)
            if frame.get("type") == "status" and frame.get("status") in FINAL:
                done.set()
                return


def redis_client(cluster: Cluster) -> redis.Redis:
    return redis.Redis.from_url(cluster.redis_url, socket_timeout=5)


async def test_a_command_reaches_the_vehicle_through_its_node_and_survives_that_node_dying(
    cluster: tuple[Cluster, list[VehicleSpec]],
) -> None:
    c, specs = cluster
    on_a, on_b = specs[0], specs[1]
    port_a, port_b = free_port(), free_port()
    async with (
        c.node("node-b", port_b) as b,
        c.node("node-a", port_a) as a,
        c.vehicle(on_a, port_a, port_b),
        c.vehicle(on_b, port_b, port_a),
    ):
        await wait_connected(a, 1)
        await wait_connected(b, 1)
        await login(c, b)

        # Submitted on B, run on A: stored events, final status, and live on B's socket.
        seen: list[dict[str, object]] = []
        done = trio.Event()
        response = await c.submit(b, on_a.vin)
        assert response.status_code == 202, response.text
        routed = response.json()["id"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_on_websocket, b, c.token, routed, seen, done)
            final = await c.wait_status(b, routed, FINAL)
            with trio.fail_after(10):
                await done.wait()
        assert final["status"] == "succeeded", final
        events = (await b.http.get(f"/api/v1/commands/{routed}/events", headers=c.headers())).json()
        assert events["total"] >= 1 and events["items"][-1]["final"], events
        assert any(f.get("type") == "event" for f in seen), seen

        # The same stream entry delivered twice more: dropped, never run again.
        with redis_client(c) as r:
            stream = f"{c.prefix}node:node-a:commands"
            fields = {"kind": "dispatch", "vin": on_a.vin, "id": routed, "by": ""}
            r.xadd(stream, fields)
            r.xadd(stream, fields)
        with trio.fail_after(10):
            while True:
                if (await live(a))["duplicate_dispatches"] == 2:
                    break
                await trio.sleep(0.1)
        again = await c.wait_status(b, routed, FINAL)
        assert again["finished_at"] == final["finished_at"], (final, again)

        # A command running on A when A is SIGKILLed.
        params = {"ecuAddress": "0x10", "dataId": "0x010D"}
        response = await c.submit(b, on_a.vin, command="ReadDataByID", params=params)
        assert response.status_code == 202, response.text
        running = response.json()["id"]
        await c.wait_status(b, running, ("dispatched", "running"))
        a.process.kill()
        await a.process.wait()

        await wait_connected(b, 2, timeout_s=30)  # the vehicle failed over to B
        ended = await c.wait_status(b, running, FINAL, timeout_s=30)
        assert ended["status"] == "interrupted", ended
        assert ended["error"] == node_lost_reason("node-a"), ended

        after = await c.submit(b, on_a.vin)  # now local on B
        assert after.status_code == 202, after.text
        assert (await c.wait_status(b, after.json()["id"], FINAL))["status"] == "succeeded"
        await c.assert_all_final(b)

        history = (await b.http.get(f"/api/v1/commands?vin={on_a.vin}", headers=c.headers())).json()
        assert {item["id"] for item in history["items"]} == {
            routed,
            running,
            after.json()["id"],
        }


async def test_a_redis_outage_keeps_local_commands_and_refuses_routed_ones_with_503(
    cluster: tuple[Cluster, list[VehicleSpec]],
) -> None:
    c, specs = cluster
    on_a, on_b = specs[0], specs[1]
    port_a, port_b = free_port(), free_port()
    host, _, port = c.redis_url.removeprefix("redis://").partition("/")[0].partition(":")
    async with open_tcp_proxy(host, int(port or 6379)) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}/{c.redis_url.rsplit('/', 1)[-1]}"
        async with (
            c.node("node-a", port_a, proxied) as a,
            c.node("node-b", port_b, proxied) as b,
            c.vehicle(on_a, port_a),
            c.vehicle(on_b, port_b),
        ):
            await wait_connected(a, 1)
            await wait_connected(b, 1)
            await login(c, a)
            before = await c.submit(b, on_a.vin)  # routed B -> A
            assert before.status_code == 202, before.text
            assert (await c.wait_status(b, before.json()["id"], FINAL))["status"] == "succeeded"

            proxy.cut(Cut.REFUSE)
            for node, vin in ((a, on_a.vin), (b, on_b.vin)):  # each node serves its own
                local = await c.submit(node, vin)
                assert local.status_code == 202, local.text
                done = await c.wait_status(node, local.json()["id"], FINAL)
                assert done["status"] == "succeeded", done
            refused = await c.submit(b, on_a.vin)
            assert refused.status_code == 503, refused.text
            message = refused.json()["error"]["message"]
            assert refused.json()["error"]["code"] == "redis_unavailable", message
            assert f"cannot reach the node holding vehicle {on_a.vin}" in message, message
            ready = await b.http.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["redis"] != "ok", ready.text

            await trio.sleep(3.5)  # longer than the leases live: they must be taken again
            proxy.restore()
            with trio.fail_after(20):
                while True:
                    response = await c.submit(b, on_a.vin)
                    if response.status_code == 202:
                        break
                    assert response.status_code in (409, 503), response.text
                    await trio.sleep(0.2)
            assert (await c.wait_status(b, response.json()["id"], FINAL))["status"] == "succeeded"
            for node in (a, b):
                assert (await node.http.get("/health/ready")).status_code == 200
            await c.assert_all_final(a)


async def test_a_vehicle_that_connects_to_another_node_is_ended_on_the_first(
    cluster: tuple[Cluster, list[VehicleSpec]],
) -> None:
    c, specs = cluster
    port_a, port_b = free_port(), free_port()
    async with (
        c.node("node-a", port_a) as a,
        c.node("node-b", port_b) as b,
        c.vehicle(specs[2], port_b, name="first") as first_log,
    ):
        await wait_connected(b, 1)
        async with c.vehicle(specs[2], port_a, name="second"):  # the same VIN, on node A
            await wait_connected(a, 1)
            replaced = "hub ended the link with ABORTED: replaced by a connection on node node-a"
            with trio.fail_after(10):  # B ends its stale link when A takes the lease
                while True:
                    if replaced in first_log.read_text(errors="replace"):
                        break
                    await trio.sleep(0.1)


async def test_commands_queued_on_a_dying_node_are_delivered_by_the_vehicles_new_node(
    cluster: tuple[Cluster, list[VehicleSpec]],
) -> None:
    """One command at a time per vehicle: a selftest runs on A, one command submitted on A
    and one routed from B wait in A's actor; A is SIGKILLed. The selftest ends
    `interrupted`; the vehicle lands on B, which delivers the two others, in order. A
    second vehicle, slower to come back, still gets its waiting command (janitors retry)."""
    c, specs = cluster
    on_a, late = specs[0], specs[1]
    c.extra_env["SOVD_HUB_MAX_IN_FLIGHT_PER_VEHICLE"] = "1"
    port_a, port_b = free_port(), free_port()
    async with (
        c.node("node-b", port_b) as b,
        c.node("node-a", port_a) as a,
        c.vehicle(on_a, port_a, port_b),
        c.vehicle(late, port_a, name="late-on-a"),  # cannot fail over
    ):
        await wait_connected(a, 2)
        await login(c, a)
        selftest = {"component": "engine", "operation": "selftest", "durationMs": 4000}
        started: list[str] = []
        for vin in (on_a.vin, late.vin):
            response = await c.submit(a, vin, command="StartOperation", params=selftest)
            assert response.status_code == 202, response.text
            started.append(response.json()["id"])
            await c.wait_status(a, started[-1], ("dispatched", "running"))
        running, late_running = started
        queued: list[str] = []
        for node in (a, b, b):  # one local to A, two routed from B to A
            response = await c.submit(node, on_a.vin if len(queued) < 2 else late.vin)
            assert response.status_code == 202, response.text
            queued.append(response.json()["id"])
        queued, late_queued = queued[:2], queued[2]
        with redis_client(c) as r, trio.fail_after(10):  # A took the routed one from its stream
            stream = f"{c.prefix}node:node-a:commands"
            while True:
                last = r.xinfo_stream(stream)["last-generated-id"]
                groups = r.xinfo_groups(stream)
                if groups and all(
                    g["pending"] == 0 and g["last-delivered-id"] == last for g in groups
                ):
                    break
                await trio.sleep(0.05)
        for command_id in [*queued, late_queued]:
            assert (await c.wait_status(a, command_id, (*FINAL, "pending")))["status"] == "pending"
        a.process.kill()
        await a.process.wait()

        await wait_connected(b, 1, timeout_s=30)
        ended = await c.wait_status(b, running, FINAL, timeout_s=30)
        assert ended["status"] == "interrupted", ended
        assert ended["error"] == node_lost_reason("node-a"), ended
        first, second = [await c.wait_status(b, i, FINAL, timeout_s=30) for i in queued]
        assert first["status"] == second["status"] == "succeeded", (first, second)
        assert isinstance(first["finished_at"], str) and isinstance(second["started_at"], str)
        assert datetime.fromisoformat(first["finished_at"]) <= datetime.fromisoformat(
            second["started_at"]
        ), (first, second)

        late_ended = await c.wait_status(b, late_running, FINAL)
        assert late_ended["error"] == node_lost_reason("node-a"), late_ended
        assert (await c.wait_status(b, late_queued, (*FINAL, "pending")))["status"] == "pending"
        async with c.vehicle(late, port_b, name="late-on-b"):
            done = await c.wait_status(b, late_queued, FINAL, timeout_s=30)
            assert done["status"] == "succeeded", done
            await c.assert_all_final(b)
