"""Scale-out on Redis: each node's command stream (`node:<id>:commands`, under the
node's key prefix), work for that node: `dispatch` (with the command), `cancel`, `taken`.

`CommandStreams` implements `hub.ports.RoutingStreams`: at-least-once
delivery, entries acknowledged only after they are handled. A `dispatch`
entry carries its command's JSON form (`Command.to_json`) in its `command`
field, read back strictly (`Command.from_json`): an entry whose command does
not decode is logged with the field at fault and read without its command
(the router then reads it from the database, or skips it if unknown).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from hub import Command, StreamEntry
from storage.keyvalue import KeyValue

__all__ = ["CommandStreams"]

log = structlog.get_logger("storage.cluster")

T = TypeVar("T")

#: The consumer group every node's stream is read with.
GROUP = "hub"
#: A node's stream keeps about this many entries (older ones are trimmed).
STREAM_MAXLEN = 100_000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CommandStreams:
    """The per-node command streams; reads block, so give it a client of its own
    (`open_keyvalue(..., timeout_s=None)` or above `block_s`)."""

    def __init__(self, keyvalue: KeyValue, node_id: str) -> None:
        self._kv = keyvalue
        self.node_id = node_id

    def stream_key(self, node_id: str) -> str:
        """The key of `node_id`'s command stream."""
        return self._kv.key("node", node_id, "commands")

    async def send(
        self,
        node_id: str,
        kind: str,
        vin: str,
        command_id: uuid.UUID | None = None,
        by: str = "",
        *,
        command: Command | None = None,
    ) -> str:
        """Append work for `node_id` (a `dispatch` with its `command`, whose id it is);
        returns the entry id. Raises `RedisUnavailable`."""
        if command is not None:
            command_id = command.id
        fields = {"kind": kind, "vin": vin, "id": str(command_id or ""), "by": by}
        if command is not None:
            fields["command"] = json.dumps(command.to_json(), separators=(",", ":"))
        entry_id = await self._kv.run(_xadd, self.stream_key(node_id), fields)
        return _text(entry_id)

    async def read(
        self, node_id: str, consumer: str, *, pending: bool, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """Entries of `node_id`'s stream for `consumer`: its unacknowledged ones (`pending`),
        else new ones, waiting up to `block_ms` (None: not at all)."""
        stream = self.stream_key(node_id)
        reply = await self._kv.run(
            _xreadgroup, stream, consumer, "0" if pending else ">", count, block_ms
        )
        return [_entry(entry_id, fields) for entry_id, fields in reply]

    async def claim_pending(self, node_id: str, consumer: str, count: int) -> list[StreamEntry]:
        """Take over the entries `node_id`'s own consumer read but never acknowledged."""
        reply = await self._kv.run(_xautoclaim, self.stream_key(node_id), consumer, count)
        return [_entry(entry_id, fields) for entry_id, fields in reply]

    async def ack(self, node_id: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge handled entries of `node_id`'s stream."""
        if entry_ids:
            await self._kv.run(_xack, self.stream_key(node_id), entry_ids)


def _entry(entry_id: object, fields: object) -> StreamEntry:
    values = {_text(k): _text(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
    raw_id = values.get("id", "")
    try:
        command_id = uuid.UUID(raw_id) if raw_id else None
    except ValueError:
        command_id = None
    return StreamEntry(
        _text(entry_id), values.get("kind", ""), values.get("vin", ""), command_id,
        values.get("by", ""), _command(_text(entry_id), values.get("command"), command_id),
    )  # fmt: skip


def _command(entry_id: str, raw: str | None, command_id: uuid.UUID | None) -> Command | None:
    """The command a `dispatch` entry carries (None: none, or one that does not decode)."""
    if raw is None:
        return None
    try:
        loaded = json.loads(raw)
        if not isinstance(loaded, dict):
            raise ValueError(f"expected a JSON object, got {type(loaded).__name__}")
        command = Command.from_json(loaded)
        if command.id != command_id:
            raise ValueError(f"'id': expected the entry's id {command_id}, got {command.id}")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        log.warning("routing.entry_command_invalid", entry=entry_id, reason=str(exc))
        return None
    return command


async def _grouped(read: Callable[[], Awaitable[T]], client: Redis, stream: str) -> T:
    """`read()`, creating the stream's group first if it has none yet (then reading again).

    Writers never create it: an entry added before the group exists is read
    all the same, since the group starts at the stream's first entry ("0").
    So each send and each read is one round trip, not two.
    """
    try:
        return await read()
    except redis_errors.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
    try:
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis_errors.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):  # another reader created it meanwhile
            raise
    return await read()


async def _xadd(client: Redis, stream: str, fields: dict[str, str]) -> object:
    entry_id: object = await client.xadd(
        stream,
        fields,  # type: ignore[arg-type]
        maxlen=STREAM_MAXLEN,
        approximate=True,
    )
    return entry_id


async def _xreadgroup(
    client: Redis, stream: str, consumer: str, start: str, count: int, block_ms: int | None
) -> list[tuple[object, object]]:
    reply: object = await _grouped(
        lambda: client.xreadgroup(GROUP, consumer, {stream: start}, count=count, block=block_ms),
        client,
        stream,
    )
    if isinstance(reply, dict):  # RESP3: {stream: [entries]}
        reply = [[key, value] for key, value in reply.items()]
    if not isinstance(reply, list) or not reply:
        return []
    return _entries(reply[0][1])


async def _xautoclaim(
    client: Redis, stream: str, consumer: str, count: int
) -> list[tuple[object, object]]:
    reply: object = await _grouped(
        lambda: client.xautoclaim(stream, GROUP, consumer, 0, start_id="0-0", count=count),
        client,
        stream,
    )
    return _entries(reply[1]) if isinstance(reply, list) and len(reply) > 1 else []


def _entries(raw: object) -> list[tuple[object, object]]:
    """(entry id, fields) pairs of a stream reply, without entries deleted meanwhile."""
    if not isinstance(raw, list):
        return []
    return [(item[0], item[1]) for item in raw if item[1] is not None]


async def _xack(client: Redis, stream: str, entry_ids: Sequence[str]) -> None:
    await client.xack(stream, GROUP, *entry_ids)
