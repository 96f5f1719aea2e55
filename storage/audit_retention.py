"""Retention: remove audit rows and finished commands older than their windows.

Each sweep handles every audit chain in its own transaction. For a chain it
removes the longest prefix (from the anchor up) whose rows are all older than
the audit window, at most `max_rows` a sweep (the next sweep goes on), moves
the chain's anchor to the last row removed, and appends one `audit.retention`
summary to that same chain: what was removed (rows, seq and time range), the
new anchor, and an HMAC signature over the summary row (see
`storage.audit_chain.sign_row`), so `verify` starts at the anchor and checks
that the hub vouched for it. The node's own chain's transaction also removes
finished commands (with their events) that ended before the command window;
its summary counts them.

DELETE on `audit_events` is refused by a trigger unless the transaction holds
a row in `audit_retention_unlock`; retention inserts that row and deletes it
before committing, so no other transaction ever sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON, AuditNote, CommandStatus
from storage.audit_chain import (
    CHAINS,
    RETENTION_ACTION,
    ChainHead,
    chain_of,
    insert_rows,
    key_id,
    lock_head,
    sign_row,
)
from storage.models import (
    AuditEventModel,
    AuditRetentionUnlockModel,
    CommandEventModel,
    CommandModel,
)

__all__ = ["RetentionPolicy", "RetentionSummary", "sweep_retention"]

_EVENTS = cast(Table, AuditEventModel.__table__)
_UNLOCK = cast(Table, AuditRetentionUnlockModel.__table__)
_FINAL = [s.value for s in CommandStatus if s.is_final]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How old is too old (days; 0 keeps forever), the signing key, the node running it."""

    audit_days: int
    command_days: int
    key: bytes
    node: str
    #: Audit rows removed per chain, and commands removed, per sweep at most.
    max_rows: int = 50_000


@dataclass(frozen=True, slots=True)
class RetentionSummary:
    """What one chain's sweep removed and the summary event it appended."""

    chain: str
    audit_rows: int
    commands: int
    command_events: int
    anchor_seq: int
    anchor_hash: str
    summary_seq: int


async def sweep_retention(
    writer: AsyncEngine, now: datetime, policy: RetentionPolicy
) -> list[RetentionSummary]:
    """One sweep over every chain (one transaction each); what it removed, chain by chain.

    Chains with nothing to remove get no summary.
    """
    async with writer.connect() as conn:
        own = chain_of(conn)
        chains = set((await conn.execute(select(CHAINS.c.chain))).scalars())
    done = []
    for chain in sorted(chains | {own}):
        async with writer.begin() as conn:
            summary = await _sweep_chain(conn, chain, chain == own, now, policy)
        if summary is not None:
            done.append(summary)
    return done


async def _sweep_chain(
    conn: AsyncConnection, chain: str, own: bool, now: datetime, policy: RetentionPolicy
) -> RetentionSummary | None:
    commands: dict[str, JSON] | None = None
    command_rows = event_rows = 0
    if own and policy.command_days > 0:
        # Before the chain's head is locked: the head is always the last lock taken.
        before = now - timedelta(days=policy.command_days)
        command_rows, event_rows = await _remove_commands(conn, before, policy.max_rows)
        commands = {"rows": command_rows, "events": event_rows, "finished_before": _iso(before)}
    head = await lock_head(conn, chain)
    audit: dict[str, JSON] | None = None
    audit_rows, anchor_seq, anchor_hash = 0, head.anchor_seq, head.anchor_hash
    if policy.audit_days > 0:
        cutoff = now - timedelta(days=policy.audit_days)
        removed = await _remove_audit_prefix(conn, head, cutoff, policy.max_rows)
        if removed is not None:
            audit, anchor_seq, anchor_hash = removed
            audit_rows = anchor_seq - head.anchor_seq
    if audit is None and command_rows == 0:
        return None
    details: dict[str, JSON] = {
        "node": policy.node,
        "audit": audit,
        "commands": commands,
        "anchor_seq": anchor_seq,
        "anchor_hash": anchor_hash,
        "key_id": key_id(policy.key),
    }
    seq, target = head.last_seq + 1, f"audit_chain:{chain}"
    details["signature"] = sign_row(
        policy.key, chain, seq, now, "hub", RETENTION_ACTION, target, details
    )
    await insert_rows(conn, head, [AuditNote(now, "hub", RETENTION_ACTION, target, details)])
    await conn.execute(
        update(CHAINS)
        .where(CHAINS.c.chain == chain)
        .values(anchor_seq=anchor_seq, anchor_hash=anchor_hash)
    )
    return RetentionSummary(
        chain, audit_rows, command_rows, event_rows, anchor_seq, anchor_hash, seq
    )


async def _remove_audit_prefix(
    conn: AsyncConnection, head: ChainHead, cutoff: datetime, max_rows: int
) -> tuple[dict[str, JSON], int, str] | None:
    """Delete the chain's oldest rows older than `cutoff`; their description and new anchor."""
    e = _EVENTS
    in_chain = (e.c.chain == head.chain) & (e.c.seq > head.anchor_seq)
    first_kept = await conn.scalar(select(func.min(e.c.seq)).where(in_chain, e.c.at >= cutoff))
    upper = head.last_seq if first_kept is None else first_kept - 1
    upper = min(upper, head.anchor_seq + max_rows)
    if upper <= head.anchor_seq:
        return None
    prefix = in_chain & (e.c.seq <= upper)
    stats = (
        await conn.execute(select(func.count(), func.min(e.c.at), func.max(e.c.at)).where(prefix))
    ).one()
    anchor_hash = await conn.scalar(
        select(e.c.hash).where(e.c.chain == head.chain, e.c.seq == upper)
    )
    if anchor_hash is None:  # the chain is already broken there; leave it for `verify`
        return None
    await conn.execute(insert(_UNLOCK).values(chain=head.chain))
    await conn.execute(delete(e).where(prefix))
    await conn.execute(delete(_UNLOCK).where(_UNLOCK.c.chain == head.chain))
    described: dict[str, JSON] = {
        "rows": int(stats[0]),
        "seq_from": head.anchor_seq + 1,
        "seq_to": upper,
        "at_from": _iso(stats[1]),
        "at_to": _iso(stats[2]),
        "older_than": _iso(cutoff),
    }
    return described, upper, str(anchor_hash)


async def _remove_commands(
    conn: AsyncConnection, cutoff: datetime, max_rows: int
) -> tuple[int, int]:
    """Delete up to `max_rows` commands that finished before `cutoff`; (commands, events)."""
    c, ev = CommandModel, CommandEventModel
    old = (
        select(c.id)
        .where(c.status.in_(_FINAL), c.finished_at < cutoff)
        .order_by(c.finished_at)
        .limit(max_rows)
    )
    ids = list((await conn.execute(old)).scalars())
    events = commands = 0
    for start in range(0, len(ids), 1000):  # bounded IN lists
        chunk = ids[start : start + 1000]
        events += (await conn.execute(delete(ev).where(ev.command_id.in_(chunk)))).rowcount
        commands += (
            await conn.execute(delete(c).where(c.id.in_(chunk), c.status.in_(_FINAL)))
        ).rowcount
    return commands, events


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()
