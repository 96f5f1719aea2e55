"""The audit trail's store: appending (one event, or a batch of the hub's notes), listing,
keyset pages, verifying the hash chains, and retention.

`AuditStore` implements the hub's `AuditTrail` and `AuditLog` ports. Each
method crosses the bridge once (`storage.engine.Engine.run`) to run one
transaction here or in `audit_queries`, `audit_verify` or `audit_retention`.
Every write goes through `storage.audit_chain.append_audit_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from hub import JSON, AuditNote, AuditRecord
from storage import audit_queries, audit_retention, audit_verify, postgres_direct
from storage.audit_chain import append_audit_row, append_audit_rows
from storage.audit_queries import AuditFilter
from storage.audit_retention import RetentionPolicy, RetentionSummary
from storage.audit_verify import ChainReport
from storage.engine import Store

__all__ = ["AuditStore"]


class AuditStore(Store):
    """The append-only audit trail; implements `hub.ports.AuditTrail` and `hub.AuditLog`
    (errors and cancellation: see `Store`).
    """

    @property
    def chain(self) -> str:
        """The audit hash chain this store appends to (see `storage.audit_chain`)."""
        return self._engine.audit_chain

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        """Append an event, stamped now, to the audit trail; returns once committed."""
        await self._run(_append_audit, self._writer, actor, action, target, details or {})

    async def list_audit(self, *, target: str | None = None) -> list[AuditRecord]:
        """The audit trail, oldest first; only `target`'s events when given."""
        return await self._run(audit_queries.list_audit, self._reader, target)

    async def verify_audit(
        self, *, chain: str | None = None, key: bytes | None = None
    ) -> list[ChainReport]:
        """Verify every audit chain (or `chain`) from its anchor to its head; see `audit_verify`.

        `key`: checks the retention summaries' signatures (`signing_key`).
        """
        return await self._run(audit_verify.verify_chains, self._reader, chain=chain, key=key)

    async def sweep_retention(
        self, policy: RetentionPolicy, now: datetime | None = None
    ) -> list[RetentionSummary]:
        """Remove what is older than the retention windows, leaving signed summaries."""
        at = datetime.now(UTC) if now is None else now
        return await self._run(audit_retention.sweep_retention, self._writer, at, policy)

    async def append_audits(self, notes: Sequence[AuditNote]) -> None:
        """Append `notes` (stamped by their writer), in order, in one transaction."""
        if notes:
            await self._run(_append_audits, self._writer, notes)

    async def audit_page(self, wanted: AuditFilter, *, limit: int) -> list[AuditRecord]:
        """Up to `limit` audit events `wanted` selects, in id order (one keyset page)."""
        return await self._run(audit_queries.audit_page, self._reader, wanted, limit)

    async def last_audit_id(self) -> int:
        """The id of the newest audit event (0: none)."""
        return await self._run(audit_queries.last_audit_id, self._reader)


async def _append_audit(
    writer: AsyncEngine, actor: str, action: str, target: str, details: dict[str, JSON]
) -> None:
    async with writer.begin() as conn:
        await append_audit_row(conn, datetime.now(UTC), actor, action, target, details)


async def _append_audits(writer: AsyncEngine, rows: Sequence[AuditNote]) -> None:
    if writer.dialect.name == "postgresql":
        return await postgres_direct.append_audits(writer, rows)
    async with writer.begin() as conn:
        await append_audit_rows(conn, rows)
