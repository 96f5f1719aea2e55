"""Idempotent command submission: the request hash and the per-key locks of this node.

A retried `POST /api/v1/commands` with the same `Idempotency-Key` (per user)
and the same body gets the first command back instead of a second one. Three
layers keep a race from submitting twice or from failing anyone else's write:

1. this node serializes submissions of one (user, key) with `KeyLocks`, so the
   second looks the key up only after the first has committed;
2. the lookup (`CommandStore.find_idempotent`) finds the first command;
3. should another node win the race between lookup and commit, the insert
   skips the row (ON CONFLICT DO NOTHING, so the group commit's other commands
   are stored), the hub raises `IdempotencyKeyTaken` before dispatching, and
   the route looks the key up again.

A retry that finds its command `pending` while nothing holds it (the hand-over
was lost: an older crash, say) does not get it back as if alive: it is handed
to its vehicle now, or ends `failed` (`resume_lost`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import orjson
import structlog
import trio
from pydantic import BaseModel
from quart import current_app

from api.state import state
from hub import Command, CommandStatus, DispatchError

__all__ = ["IdempotencyClaim", "KeyLocks", "key_locks", "request_hash", "resume_lost"]

_EXTENSION = "sovd_hub_idempotency_locks"
log = structlog.get_logger("api.idempotency")


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A submission's `Idempotency-Key` and the hash of the body it came with."""

    key: str
    request_hash: str


def request_hash(body: BaseModel) -> str:
    """SHA-256 (hex) of the validated body as canonical JSON (sorted keys, defaults filled in).

    Two bodies that mean the same request hash the same, whatever their key
    order, spacing, or omitted defaults.
    """
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass
class _Entry:
    lock: trio.Lock = field(default_factory=trio.Lock)
    holders: int = 0


class KeyLocks:
    """One lock per (user, key) in use; an entry lives only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    @asynccontextmanager
    async def hold(self, username: str, key: str) -> AsyncIterator[None]:
        """Hold the lock of (`username`, `key`) for the block; waits while another request does.

        Cancellation while waiting leaves the lock to the others.
        """
        entry = self._entries.setdefault((username, key), _Entry())
        entry.holders += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.holders -= 1
            if entry.holders == 0:
                del self._entries[(username, key)]

    def __len__(self) -> int:
        return len(self._entries)


def key_locks() -> KeyLocks:
    """The running app's `KeyLocks` (created on first use)."""
    locks = current_app.extensions.setdefault(_EXTENSION, KeyLocks())
    assert isinstance(locks, KeyLocks)
    return locks


async def resume_lost(row: Command) -> Command:
    """The command a retry found, handed to its vehicle now if its hand-over was lost.

    A `pending` command without `ttl_s` that this node does not hold (nothing
    will deliver it: its submission was cut short, e.g. by an old crash) runs
    now, as the retry asks: it never reached the vehicle. If it cannot be
    handed over, it ends `failed` with the reason. With Redis, commands pass
    through streams and their owners: left to them.
    """
    s = state()
    if (
        row.status is not CommandStatus.PENDING
        or row.expires_at is not None
        or s.hub.router is not None
        or s.hub.submissions.holds(row.id)
    ):
        return row
    log.warning("command.resumed", command_id=str(row.id), vin=row.vin)
    with suppress(DispatchError):  # recorded as failed, with the reason
        await s.hub.submissions.resume(row)
    return await s.db.commands.get_command(row.id) or row
