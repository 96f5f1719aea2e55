"""Scale-out on Redis: vehicle leases, node liveness, the known nodes and the janitors' locks.

Keys, under the node's key prefix (`KeyValue.key`):

```
lease:vehicle:<vin>     node_id holding the vehicle's link       PX lease_ttl_s
node:<id>               the node is alive                         PX lease_ttl_s
nodes                   set of every node id seen (for the janitor)
janitor:<id>            lock of the node cleaning up after dead <id>
```

`RedisLeases` implements `hub.ports.RoutingLeases`: claims and releases are
queued (never blocking the gateway or an actor) and written by one task, in
one Lua call per batch, together with the node's liveness key; every
`lease_refresh_s` the same task refreshes every lease of the node in one
batch (not a timer per vehicle). A refresh that finds a lease taken by
another node reports it (`on_lost`), and the node ends that stale link.
When Redis comes back after an outage, every lease of the node is taken
again. A claim that replaces another node's lease sends that node a `taken`
notice on its stream (`storage.command_streams`), so it ends its stale link
at once rather than at its next refresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence

import structlog
import trio
from redis.asyncio import Redis

from hub import StorageUnavailable
from storage.keyvalue import KeyValue, KeyValueError, RedisUnavailable

__all__ = ["RedisLeases"]

log = structlog.get_logger("storage.cluster")

#: VINs per Lua call: keeps each call short (Redis runs one script at a time).
BATCH_VINS = 2000
#: How long a failed lease write waits before it is tried again.
RETRY_S = 1.0

# KEYS[1] = node liveness key, KEYS[2] = set of nodes. ARGV: node_id, ttl ms, lease key
# prefix, count of claims, claims..., count of releases, releases..., refreshes...
# Returns {taken: vin, old holder, ...} and {lost: vin, holder, ...}.
_FLUSH = """
local me, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call('SET', KEYS[1], '1', 'PX', ttl)
redis.call('SADD', KEYS[2], me)
local taken, lost = {}, {}
local i = 4
local claims = tonumber(ARGV[i]); i = i + 1
for j = 1, claims do
  local vin = ARGV[i]; i = i + 1
  local old = redis.call('SET', prefix .. vin, me, 'PX', ttl, 'GET')
  if old and old ~= me then taken[#taken + 1] = vin; taken[#taken + 1] = old end
end
local releases = tonumber(ARGV[i]); i = i + 1
for j = 1, releases do
  local key = prefix .. ARGV[i]; i = i + 1
  if redis.call('GET', key) == me then redis.call('DEL', key) end
end
for j = i, #ARGV do
  local key = prefix .. ARGV[j]
  local holder = redis.call('GET', key)
  if holder == me then
    redis.call('PEXPIRE', key, ttl)
  elseif not holder then
    redis.call('SET', key, me, 'PX', ttl)
  else
    lost[#lost + 1] = ARGV[j]; lost[#lost + 1] = holder
  end
end
return {taken, lost}
"""

# ARGV: lease key prefix, node key prefix, vins... Returns {vin, holder, ...} of live holders.
_HOLDERS = """
local found = {}
for j = 3, #ARGV do
  local holder = redis.call('GET', ARGV[1] .. ARGV[j])
  if holder and redis.call('EXISTS', ARGV[2] .. holder) == 1 then
    found[#found + 1] = ARGV[j]; found[#found + 1] = holder
  end
end
return found
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: object) -> list[tuple[str, str]]:
    items = [_text(item) for item in flat] if isinstance(flat, list) else []
    return list(zip(items[::2], items[1::2], strict=True))


class RedisLeases:
    """This node's vehicle leases and liveness key; see the module docstring.

    Run `run` in a task; `close` releases what is left and deletes the
    liveness key (a polite stop: other nodes need not wait for the TTL).
    """

    def __init__(
        self, keyvalue: KeyValue, node_id: str, *, lease_ttl_s: float, lease_refresh_s: float
    ) -> None:
        self._kv = keyvalue
        self.node_id = node_id
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._refresh_s = lease_refresh_s
        self._flush = keyvalue.script(_FLUSH)
        self._holders = keyvalue.script(_HOLDERS)
        self._held: set[str] = set()
        self._claims: set[str] = set()
        self._releases: set[str] = set()
        self._wake = trio.Event()
        #: False after a failed write until one succeeds again (then every lease is re-taken).
        self.available = True
        #: Called with (vin, holder) when another node now holds a vehicle linked here.
        self.on_lost: Callable[[str, str], None] | None = None
        #: Called with (old holder, vin) when a claim took a lease from another node.
        self.on_taken: Callable[[str, str], Awaitable[None]] | None = None

    @property
    def lease_prefix(self) -> str:
        """The key prefix of the vehicles' leases."""
        return self._kv.key("lease", "vehicle", "")

    def node_key(self, node_id: str) -> str:
        """The liveness key of `node_id`."""
        return self._kv.key("node", node_id)

    def claim(self, vin: str) -> None:
        """See `hub.ports.VehicleLeases.claim`; written at once by the running task."""
        self._held.add(vin)
        self._claims.add(vin)
        self._releases.discard(vin)
        self._wake.set()

    def release(self, vin: str) -> None:
        """See `hub.ports.VehicleLeases.release`; deleted only if the lease is still ours."""
        self._held.discard(vin)
        self._claims.discard(vin)
        self._releases.add(vin)
        self._wake.set()

    async def leased(self, vins: Collection[str]) -> set[str]:
        """Those of `vins` leased by a live node. Raises `StorageUnavailable` (Redis down)."""
        try:
            return set((await self.holders(vins)).keys())
        except RedisUnavailable as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def holders(self, vins: Collection[str]) -> dict[str, str]:
        """VIN -> live node holding it, for those of `vins` held. Raises `RedisUnavailable`."""
        found: dict[str, str] = {}
        ordered = list(vins)
        for start in range(0, len(ordered), BATCH_VINS):
            chunk = ordered[start : start + BATCH_VINS]
            reply = await self._holders((), [self.lease_prefix, self._kv.key("node", ""), *chunk])
            found.update(_pairs(reply))
        return found

    async def all_holders(self) -> dict[str, str]:
        """VIN -> live node holding it, for every leased VIN. Raises `RedisUnavailable`.

        Costly: a SCAN over every lease key (O(keys in Redis)), then `holders`.
        """
        prefix = self.lease_prefix
        keys = await self._kv.run(_scan_keys, prefix + "*")
        return await self.holders([_text(key)[len(prefix) :] for key in keys])

    async def holder(self, vin: str) -> str | None:
        """The live node holding `vin`, or None. Raises `RedisUnavailable`."""
        return (await self.holders([vin])).get(vin)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write claims and releases as they come, and refresh every lease each interval."""
        task_status.started()
        next_refresh = trio.current_time()
        while True:
            if self.available:
                with trio.move_on_at(next_refresh):
                    await self._wake.wait()
            else:  # claims wait for the next try: a fleet reconnecting must not spin on it
                await trio.sleep_until(next_refresh)
            self._wake = trio.Event()
            refresh = trio.current_time() >= next_refresh
            if await self.flush(refresh=refresh):
                if refresh:
                    next_refresh = trio.current_time() + self._refresh_s
            else:
                next_refresh = trio.current_time() + min(RETRY_S, self._refresh_s)

    async def flush(self, *, refresh: bool) -> bool:
        """Write queued claims and releases (and refresh every lease); False if Redis failed."""
        claims, releases = self._claims, self._releases
        self._claims, self._releases = set(), set()
        if not self.available:  # back after an outage: take every lease again
            claims, refresh = claims | self._held, True
        refreshes = sorted(self._held - claims) if refresh else []
        try:
            taken, lost = await self._write(sorted(claims), sorted(releases), refreshes)
        except KeyValueError as exc:
            if self.available:
                log.warning("leases.unavailable", reason=str(exc))
            self.available = False
            self._claims |= claims & self._held
            self._releases |= releases - self._held
            return False
        if not self.available:
            log.info("leases.restored", vehicles=len(self._held))
        self.available = True
        for vin, old in taken:
            if self.on_taken is not None:
                try:
                    await self.on_taken(old, vin)
                except KeyValueError:
                    log.warning("leases.takeover_notice_failed", vin=vin, node=old)
        for vin, holder in lost:
            # Not if the vehicle connected here again while this batch was written.
            if vin in self._held and vin not in self._claims and self.on_lost is not None:
                self._held.discard(vin)
                self.on_lost(vin, holder)
        return True

    async def _write(
        self, claims: Sequence[str], releases: Sequence[str], refreshes: Sequence[str]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        taken: list[tuple[str, str]] = []
        lost: list[tuple[str, str]] = []
        keys = [self.node_key(self.node_id), self._kv.key("nodes")]
        head: list[str | int | float] = [self.node_id, self._ttl_ms, self.lease_prefix]
        first = True
        while first or claims or releases or refreshes:
            first = False
            c, claims = claims[:BATCH_VINS], claims[BATCH_VINS:]
            r, releases = releases[:BATCH_VINS], releases[BATCH_VINS:]
            f, refreshes = refreshes[:BATCH_VINS], refreshes[BATCH_VINS:]
            reply = await self._flush(keys, [*head, len(c), *c, len(r), *r, *f])
            if isinstance(reply, list) and len(reply) == 2:
                taken += _pairs(reply[0])
                lost += _pairs(reply[1])
        return taken, lost

    async def close(self) -> None:
        """Release every lease still held and delete the liveness key (best effort)."""
        for vin in list(self._held):
            self.release(vin)
        with trio.move_on_after(2), trio.CancelScope(shield=True):
            try:
                if self._releases:
                    await self._write([], sorted(self._releases), [])
                await self._kv.delete(self.node_key(self.node_id))
            except KeyValueError as exc:
                log.warning("leases.close_failed", reason=str(exc))

    async def nodes_alive(self, node_ids: Collection[str]) -> set[str]:
        """Those of `node_ids` whose liveness key exists. Raises `RedisUnavailable`."""
        ids = sorted(node_ids)
        keys = [self.node_key(node) for node in ids]
        found = await self._kv.run(_exists_each, keys)
        return {node for node, alive in zip(ids, found, strict=True) if alive}

    async def known_nodes(self) -> set[str]:
        """Every node id that ever wrote a lease batch here. Raises `RedisUnavailable`."""
        members = await self._kv.run(_smembers, self._kv.key("nodes"))
        return {_text(m) for m in members}

    async def forget_node(self, node_id: str) -> None:
        """Drop a dead node, cleaned up, from the known nodes (and its empty stream)."""
        await self._kv.run(_forget, self._kv.key("nodes"), node_id, self.stream_key(node_id))

    def stream_key(self, node_id: str) -> str:
        """The key of `node_id`'s command stream."""
        return self._kv.key("node", node_id, "commands")

    async def lock_janitor(self, dead: str, ttl_s: float) -> bool:
        """Take the lock of cleaning up after `dead` (False: another node has it)."""
        key = self._kv.key("janitor", dead)
        return bool(await self._kv.run(_set_nx, key, self.node_id, int(ttl_s * 1000)))

    async def unlock_janitor(self, dead: str) -> None:
        """Give up the lock taken by `lock_janitor` (work on `dead` is left for a next round)."""
        await self._kv.run(_delete, self._kv.key("janitor", dead))


async def _exists_each(client: Redis, keys: Sequence[str]) -> list[bool]:
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        return [bool(n) for n in await pipe.execute()]


async def _scan_keys(client: Redis, pattern: str) -> list[bytes | str]:
    return [key async for key in client.scan_iter(match=pattern, count=1000)]


async def _smembers(client: Redis, key: str) -> set[bytes | str]:
    members: set[bytes | str] = await client.smembers(key)
    return members


async def _forget(client: Redis, nodes_key: str, node_id: str, stream: str) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.srem(nodes_key, node_id)
        pipe.delete(stream)
        await pipe.execute()


async def _delete(client: Redis, key: str) -> None:
    await client.delete(key)


async def _set_nx(client: Redis, key: str, value: str, ttl_ms: int) -> bool:
    return bool(await client.set(key, value, nx=True, px=ttl_ms))
