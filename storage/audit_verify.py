"""`sovd-hub audit verify`: check every audit chain from its anchor to its head.

Rows are read page by page (keyset on `(chain, seq)`) inside one read
transaction (REPEATABLE READ on Postgres, a WAL snapshot on SQLite), so the
check sees one consistent state while the hub keeps appending, and never
holds more than a page in memory. The first broken row of each chain is
named; what is wrong is one of `BreakKind`.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON
from storage.audit_chain import (
    CHAINS,
    RETENTION_ACTION,
    ChainHead,
    key_id,
    row_hash,
    sign_row,
)
from storage.models import AuditEventModel

__all__ = ["BreakKind", "ChainBreak", "ChainReport", "verify_chains"]

_EVENTS = cast(Table, AuditEventModel.__table__)
_PAGE = 1000


class BreakKind(enum.StrEnum):
    """What is wrong with the first broken row of a chain."""

    HASH_MISMATCH = "hash mismatch"  # the row's content was altered
    PREV_HASH_MISMATCH = "prev_hash mismatch"  # the row before it was replaced
    MISSING_SEQ = "missing seq"  # rows were deleted
    HEAD_MISMATCH = "head mismatch"  # rows at the end were deleted, or added past the head
    NO_HEAD = "no head"  # rows of a chain that `audit_chains` does not know
    BAD_SIGNATURE = "bad signature"  # a retention summary not signed with the hub's key
    UNATTESTED_ANCHOR = "unattested anchor"  # no signed summary vouches for the anchor


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken row of a chain: its seq and id (None when the row is absent)."""

    kind: BreakKind
    seq: int | None
    id: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """One chain's verification: rows checked from the anchor, and the first break if any."""

    chain: str
    anchor_seq: int
    last_seq: int
    rows_checked: int
    summaries_checked: int
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        """True when every row from the anchor to the head checks out."""
        return self.broken is None


async def verify_chains(
    reader: AsyncEngine, *, chain: str | None = None, key: bytes | None = None
) -> list[ChainReport]:
    """Verify every chain (or only `chain`), ordered by name; [] if there is none such.

    `key` (`storage.audit_chain.signing_key`) checks the signatures of the
    retention summaries; None checks only that a summary vouches for each
    moved anchor.
    """
    async with reader.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            heads_query = select(*CHAINS.c)
            known_query = select(_EVENTS.c.chain).distinct()
            if chain is not None:
                heads_query = heads_query.where(CHAINS.c.chain == chain)
                known_query = known_query.where(_EVENTS.c.chain == chain)
            heads = {row.chain: ChainHead(*row) for row in await conn.execute(heads_query)}
            names = set(heads) | set((await conn.execute(known_query)).scalars())
            return [await _verify(conn, name, heads.get(name), key) for name in sorted(names)]


async def _verify(
    conn: AsyncConnection, chain: str, head: ChainHead | None, key: bytes | None
) -> ChainReport:
    if head is None:
        first = (
            await conn.execute(
                select(_EVENTS.c.seq, _EVENTS.c.id)
                .where(_EVENTS.c.chain == chain)
                .order_by(_EVENTS.c.seq)
                .limit(1)
            )
        ).one()
        problem = ChainBreak(
            BreakKind.NO_HEAD, first.seq, first.id,
            "audit rows of this chain exist but audit_chains has no head for it "
            "(the head row was deleted)",
        )  # fmt: skip
        return ChainReport(chain, 0, 0, 0, 0, problem)
    check = _ChainCheck(head, key)
    after = head.anchor_seq
    while check.broken is None:
        page = (
            await conn.execute(
                select(*_EVENTS.c)
                .where(_EVENTS.c.chain == chain, _EVENTS.c.seq > after)
                .order_by(_EVENTS.c.seq)
                .limit(_PAGE)
            )
        ).all()
        if not page:
            break
        for row in page:
            check.row(cast(_Row, row))
            if check.broken is not None:
                break
        after = page[-1].seq
    if check.broken is None:
        check.finish()
    return ChainReport(
        chain, head.anchor_seq, head.last_seq, check.checked, check.summaries, check.broken
    )


class _ChainCheck:
    """The running state of one chain's check (plain code: rows in, first break out)."""

    def __init__(self, head: ChainHead, key: bytes | None) -> None:
        self.head = head
        self.key = key
        self.expected = head.anchor_seq + 1
        self.prev = head.anchor_hash
        self.checked = 0
        self.summaries = 0
        self.attested = head.anchor_seq == 0
        self.broken: ChainBreak | None = None

    def row(self, values: _Row) -> None:
        seq, row_id = values.seq, values.id
        if seq > self.head.last_seq:
            self._break(
                BreakKind.HEAD_MISMATCH, seq, row_id,
                f"the row is past the chain's head (last_seq {self.head.last_seq}): "
                "rows were added outside the hub, or the head was rewound",
            )  # fmt: skip
            return
        if seq != self.expected:
            self._break(
                BreakKind.MISSING_SEQ, self.expected, None,
                f"seq {self.expected} is missing (the next row is seq {seq}, id {row_id}): "
                "rows were deleted",
            )  # fmt: skip
            return
        if values.prev_hash != self.prev:
            self._break(
                BreakKind.PREV_HASH_MISMATCH, seq, row_id,
                f"prev_hash {values.prev_hash[:16]}... is not the hash of seq {seq - 1} "
                f"({self.prev[:16]}...): the row before it was replaced, or this one was",
            )  # fmt: skip
            return
        digest = row_hash(
            values.prev_hash, values.chain, seq, values.at, values.actor, values.action,
            values.target, values.details,
        )  # fmt: skip
        if not hmac.compare_digest(digest, values.hash):
            self._break(
                BreakKind.HASH_MISMATCH, seq, row_id,
                "the row's content does not match its hash: the row was altered "
                f"(at {values.at.isoformat()}, actor {values.actor!r}, action {values.action!r})",
            )  # fmt: skip
            return
        if values.action == RETENTION_ACTION and not self._summary(row_id, seq, values):
            return
        self.checked += 1
        self.expected += 1
        self.prev = digest

    def _summary(self, row_id: int, seq: int, values: _Row) -> bool:
        """Check a retention summary's signature and whether it vouches for the anchor."""
        self.summaries += 1
        details = values.details
        if self.key is not None:
            wanted = sign_row(
                self.key, values.chain, seq, values.at, values.actor, values.action,
                values.target, details,
            )  # fmt: skip
            signature = details.get("signature")
            if not isinstance(signature, str) or not hmac.compare_digest(wanted, signature):
                signed_with = details.get("key_id")
                self._break(
                    BreakKind.BAD_SIGNATURE, seq, row_id,
                    f"the retention summary's signature does not verify with the configured "
                    f"key (key id {key_id(self.key)}; the summary names key id {signed_with}): "
                    "it was not written by a hub holding this key, or audit_signing_key changed",
                )  # fmt: skip
                return False
        if (
            details.get("anchor_seq") == self.head.anchor_seq
            and details.get("anchor_hash") == self.head.anchor_hash
        ):
            self.attested = True
        return True

    def finish(self) -> None:
        last = self.expected - 1
        if last != self.head.last_seq:
            self._break(
                BreakKind.HEAD_MISMATCH, last + 1, None,
                f"the chain ends at seq {last} but its head says seq {self.head.last_seq}: "
                "rows at the end were deleted",
            )  # fmt: skip
        elif self.prev != self.head.last_hash:
            self._break(
                BreakKind.HEAD_MISMATCH, last, None,
                f"the hash of seq {last} is not the head's last_hash: the head was rewritten",
            )  # fmt: skip
        elif not self.attested:
            self._break(
                BreakKind.UNATTESTED_ANCHOR, self.head.anchor_seq, None,
                f"the chain starts at anchor seq {self.head.anchor_seq} but no retention "
                "summary in it names that anchor: rows were removed outside retention",
            )  # fmt: skip

    def _break(self, kind: BreakKind, seq: int | None, row_id: int | None, message: str) -> None:
        self.broken = ChainBreak(kind, seq, row_id, message)


class _Row(Protocol):
    """The columns of an audit row that the check reads."""

    id: int
    chain: str
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, JSON]
    prev_hash: str
    hash: str
