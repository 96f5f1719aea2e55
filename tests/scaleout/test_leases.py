"""Vehicle leases and node liveness on a real Redis (`storage.RedisLeases`), and the
scale-out queries the janitor and the expiry sweeper rely on (both databases)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis
import trio

from hub import (
    CommandStatus,
    ConfigError,
    HubConfig,
    InProcessBus,
    StatusChange,
    load_config,
    open_hub,
)
from storage import Database, KeyValue, RedisLeases, open_database, open_keyvalue
from tests.support.commands import VIN, make_command
from tests.support.tcp_proxy import Cut, open_tcp_proxy


def leases(keyvalue: KeyValue, node: str, ttl_s: float = 10) -> RedisLeases:
    return RedisLeases(keyvalue, node, lease_ttl_s=ttl_s, lease_refresh_s=ttl_s / 3)


async def test_a_vehicle_moves_to_the_node_that_claims_it_last(keyvalue: KeyValue) -> None:
    a, b = leases(keyvalue, "node-a"), leases(keyvalue, "node-b")
    a.claim(VIN)
    assert await a.flush(refresh=False)
    assert await b.holder(VIN) == "node-a"

    notices: list[tuple[str, str]] = []

    async def taken(old: str, vin: str) -> None:
        notices.append((old, vin))

    b.on_taken = taken
    b.claim(VIN)  # the vehicle reconnected to B
    assert await b.flush(refresh=False)
    assert notices == [("node-a", VIN)]
    assert await a.holder(VIN) == "node-b"

    lost: list[tuple[str, str]] = []
    a.on_lost = lambda vin, holder: lost.append((vin, holder))
    assert await a.flush(refresh=True)  # A's refresh notices, and does not take it back
    assert lost == [(VIN, "node-b")]
    assert await a.holder(VIN) == "node-b"

    a.release(VIN)  # A's stale link ends: the lease is B's, so it stays
    assert await a.flush(refresh=False)
    assert await a.holder(VIN) == "node-b"
    b.release(VIN)
    assert await b.flush(refresh=False)
    assert await a.holder(VIN) is None


async def test_a_node_without_its_liveness_key_holds_nothing(keyvalue: KeyValue) -> None:
    a = leases(keyvalue, "node-a")
    a.claim(VIN)
    assert await a.flush(refresh=False)
    assert await a.nodes_alive(["node-a", "node-b"]) == {"node-a"}
    assert await a.known_nodes() == {"node-a"}
    await keyvalue.delete(a.node_key("node-a"))  # as when its TTL runs out
    assert await a.holder(VIN) is None
    assert await a.leased([VIN]) == set()
    assert await a.nodes_alive(["node-a"]) == set()


async def test_one_refresh_keeps_every_lease_of_a_node_alive(
    keyvalue: KeyValue, redis_url: str, redis_key_prefix: str
) -> None:
    a = leases(keyvalue, "node-a", ttl_s=30)
    vins = [f"VIN{n:014d}" for n in range(5000)]
    for vin in vins:
        a.claim(vin)
    assert await a.flush(refresh=False)
    with redis.Redis.from_url(redis_url) as r:
        r.delete(f"{redis_key_prefix}lease:vehicle:{vins[7]}")  # lost (a Redis restart)
        r.pexpire(f"{redis_key_prefix}lease:vehicle:{vins[8]}", 50)
        assert await a.flush(refresh=True)
        assert r.pttl(f"{redis_key_prefix}lease:vehicle:{vins[8]}") > 20_000
    assert set((await a.holders(vins)).values()) == {"node-a"}
    assert len(await a.holders(vins)) == len(vins)


async def test_leases_are_taken_again_when_redis_comes_back(
    aio_loop: object, redis_url: str, redis_key_prefix: str
) -> None:
    host, _, port = redis_url.removeprefix("redis://").partition("/")[0].partition(":")
    async with open_tcp_proxy(host, int(port or 6379)) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/{redis_url.rsplit('/', 1)[-1]}"
        async with open_keyvalue(url, key_prefix=redis_key_prefix, timeout_s=0.5) as kv:
            a = leases(kv, "node-a")
            a.claim("VIN-ONE")
            assert await a.flush(refresh=False)
            proxy.cut(Cut.REFUSE)
            a.claim("VIN-TWO")
            assert not await a.flush(refresh=False)
            assert not a.available
            proxy.restore()
            with redis.Redis.from_url(redis_url) as r:  # both expired during the outage
                r.delete(f"{redis_key_prefix}lease:vehicle:VIN-ONE", a.node_key("node-a"))
            assert await a.flush(refresh=False)
            assert a.available
            assert await a.holders(["VIN-ONE", "VIN-TWO"]) == {
                "VIN-ONE": "node-a",
                "VIN-TWO": "node-a",
            }


async def test_the_sweeper_spares_waiting_commands_of_vehicles_held_elsewhere(
    database: Database, keyvalue: KeyValue
) -> None:
    await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    due = datetime.now(UTC) - timedelta(seconds=1)
    waiting = replace(make_command(at=due - timedelta(minutes=1)), expires_at=due)
    await database.commands.record([], [], [waiting])
    other = leases(keyvalue, "node-a")
    other.claim(VIN)  # the vehicle is connected to node A, which is delivering it
    assert await other.flush(refresh=False)
    mine = leases(keyvalue, "node-b")
    config = HubConfig(grpc_port=0, expiry_sweep_s=0.05, node_id="node-b")
    async with open_hub(
        config,
        directory=database.vehicles,
        journal=database.commands,
        backlog=database.commands,
        audit=database.audit,
        bus=InProcessBus(),
        leases=mine,
    ):
        await trio.sleep(0.3)  # several sweeps
        row = await database.commands.get_command(waiting.id)
        assert row is not None and row.status is CommandStatus.PENDING
        other.release(VIN)  # the vehicle left A: now it may expire
        assert await other.flush(refresh=False)
        with trio.fail_after(5):
            while True:
                row = await database.commands.get_command(waiting.id)
                assert row is not None
                if row.status is CommandStatus.EXPIRED:
                    break
                await trio.sleep(0.05)


async def test_a_dead_nodes_commands_are_interrupted_once(
    aio_loop: object, database_url: str
) -> None:
    async with open_database(database_url, bcrypt_rounds=4, node_id="node-x") as database:
        await _interrupt_once(database)


async def _interrupt_once(database: Database) -> None:
    await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    running, waiting = make_command(), replace(make_command(), expires_at=datetime.now(UTC))
    await database.commands.record([], [], [running, waiting])
    dispatched = StatusChange(running.id, CommandStatus.DISPATCHED, datetime.now(UTC))
    await database.commands.record([], [dispatched])  # stamped with this handle's node id
    node = "node-x"
    assert await database.commands.active_nodes() == {node}
    [(vin, update)] = await database.commands.interrupt_node(node, datetime.now(UTC), "node gone")
    assert (vin, update.update.command_id) == (VIN, running.id)
    assert await database.commands.interrupt_node(node, datetime.now(UTC), "node gone") == []
    actions = [a.action for a in await database.audit.list_audit(target=f"command:{running.id}")]
    assert actions.count("command.interrupted") == 1
    row = await database.commands.get_command(waiting.id)
    assert row is not None and row.status is CommandStatus.PENDING  # waiting ones keep waiting
    assert await database.commands.active_nodes() == set()


async def test_a_dead_nodes_pending_commands_are_kept_for_their_vehicles_next_node(
    aio_loop: object, database_url: str
) -> None:
    async with open_database(database_url, bcrypt_rounds=4, node_id="node-x") as database:
        await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
        start = datetime.now(UTC)
        running, first, second, routed = (
            make_command(at=start + timedelta(seconds=i)) for i in range(4)
        )
        waiting = replace(make_command(), expires_at=datetime.now(UTC) + timedelta(hours=1))
        await database.commands.record([], [], [running, first, second, routed, waiting])
        at = datetime.now(UTC)
        await database.commands.record([], [StatusChange(running.id, CommandStatus.DISPATCHED, at)])
        assert await database.commands.take_pending(routed.id, "node-y")  # node-y's actor
        assert not await database.commands.take_pending(running.id, "node-y")  # not pending
        assert await database.commands.take_pending(first.id, None)  # a check, no stamp
        assert not await database.commands.take_pending(running.id, None)
        [(_, update)] = await database.commands.interrupt_node("node-x", at, "gone", pending=False)
        assert update.update.command_id == running.id
        assert await _pending_of_node(database, "node-x") == [
            (first.id, VIN),
            (second.id, VIN),
        ]
        assert await _pending_of_node(database, "node-y") == [(routed.id, VIN)]
        ended = await database.commands.interrupt_node("node-x", at, "no vehicle")
        assert [u.update.command_id for _, u in ended] == [first.id, second.id]
        assert await database.commands.pending_of_node("node-x") == []
        row = await database.commands.get_command(waiting.id)
        assert row is not None and row.status is CommandStatus.PENDING


def test_lease_settings_are_checked_and_read_from_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"lease_refresh_s \(2\) must be at most half of"):
        HubConfig(lease_ttl_s=3, lease_refresh_s=2)
    with pytest.raises(ConfigError, match="node_dead_after_s must be"):
        HubConfig(node_dead_after_s=-1)
    with pytest.raises(ConfigError, match="janitor_interval_s must be"):
        HubConfig(janitor_interval_s=0)
    config = load_config(
        HubConfig, environ={"SOVD_HUB_LEASE_TTL_S": "30", "SOVD_HUB_LEASE_REFRESH_S": "10"}
    )
    assert (config.lease_ttl_s, config.lease_refresh_s) == (30, 10)


async def _pending_of_node(database: Database, node_id: str) -> list[tuple[uuid.UUID, str]]:
    return [(c.id, c.vin) for c in await database.commands.pending_of_node(node_id)]
