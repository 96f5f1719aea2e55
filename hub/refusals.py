"""Refused vehicle connections, audited as one row per source, claimed vehicle and window.

Anyone who can reach the gRPC port can be refused, without credentials and
as often as they like: a row per refusal would let them fill the audit trail
(500 bogus connections, 500 permanent rows). `RefusalTally` counts refusals
per (source address, audit target) instead and writes one `vehicle.refused`
row per key when its window of `refusal_audit_window_s` (from its first
refusal) ends, with the count, the first and last times, the statuses seen
and the last reason. Unauthenticated refusals have the target `vehicle:?`
(the hub does not read a VIN from a peer without a valid token), so one
source costs one row per window however many connections it opens.

At most `MAX_TALLIED_KEYS` keys are counted at once; refusals past that are
counted under one key (`address` `*`) until windows end. `flush` writes
everything counted so far (the hub calls it as it stops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from hub.auditing import AuditBatcher
from hub.model import JSON

__all__ = ["MAX_TALLIED_KEYS", "RefusalTally"]

#: Distinct (source, target) pairs counted at once; more are counted together (address `*`).
MAX_TALLIED_KEYS = 10_000
_OVERFLOW = ("*", "vehicle:?")


@dataclass
class _Count:
    ends_at: float
    first_at: datetime
    last_at: datetime
    count: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    details: dict[str, JSON] = field(default_factory=dict)


class RefusalTally:
    """Counts refused connections and writes them as aggregated audit notes; run `run`."""

    def __init__(self, notes: AuditBatcher, window_s: float) -> None:
        self._notes = notes
        self._window_s = window_s
        self._counts: dict[tuple[str, str], _Count] = {}
        self._changed = trio.Event()

    def refused(
        self, address: str, target: str, told: str, reason: str, details: dict[str, JSON]
    ) -> None:
        """Count one refusal of a connection from `address`; never blocks.

        `told` names what the peer was told (the gateway's status name, e.g.
        `UNAUTHENTICATED`): the row counts each one under `statuses`.

        `reason` and `details` must already be bounded (see `hub.untrusted`):
        the last ones of a window are kept.
        """
        key = (address, target)
        if key not in self._counts and len(self._counts) >= MAX_TALLIED_KEYS:
            key = _OVERFLOW
        now = datetime.now(UTC)
        count = self._counts.get(key)
        if count is None:
            count = _Count(trio.current_time() + self._window_s, now, now)
            self._counts[key] = count
            self._changed.set()
        count.count += 1
        count.last_at = now
        count.statuses[told] = count.statuses.get(told, 0) + 1
        count.reason = reason
        count.details = details

    def statistics(self) -> dict[str, int]:
        """Keys being counted, and refusals counted in them, now."""
        return {
            "keys": len(self._counts),
            "refusals": sum(c.count for c in self._counts.values()),
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write each key's row as its window ends, until cancelled (then `flush` is due)."""
        task_status.started()
        while True:
            if not self._counts:
                self._changed = trio.Event()
                await self._changed.wait()
                continue
            await trio.sleep_until(min(c.ends_at for c in self._counts.values()))
            now = trio.current_time()
            for key in [k for k, c in self._counts.items() if c.ends_at <= now]:
                self._write(key)

    def flush(self) -> None:
        """Write every count now, windows ended or not (the hub is stopping)."""
        for key in list(self._counts):
            self._write(key)

    def _write(self, key: tuple[str, str]) -> None:
        count = self._counts.pop(key)
        address, target = key
        details: dict[str, JSON] = {
            **count.details,
            "address": address,
            "count": count.count,
            "first_at": count.first_at.isoformat(),
            "last_at": count.last_at.isoformat(),
            "statuses": dict(count.statuses),
            "status": max(count.statuses, key=lambda name: count.statuses[name]),
            "reason": count.reason,
            "window_s": self._window_s,
        }
        self._notes.note("vehicle.refused", actor="hub", target=target, details=details)
