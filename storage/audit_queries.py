"""Reading the audit trail: filtered pages in id order, for the audit API and its export.

Like `storage.command_queries`, each function is one whole transaction on the
asyncio side of the bridge, called by `storage.audit.AuditStore` with one crossing.

Pages are keyset pages: "the `limit` rows after id N" in id order (or
before it, newest first), so page 1,000 of a filtered listing costs what page
1 does, and rows appended meanwhile neither shift nor repeat rows. Each filter
has an index that walks its rows in id order: `(vin, id)`, `(actor, id)`,
`(action, id)`, and `at`. No page counts the rows that match: on a large trail
that is a scan per page (see `AuditFilter`).

Which vehicle a row concerns is its `vin` column, filled when the row is
written (`audit_vin`): the VIN of a `vehicle:<VIN>` target, or the `vin` in
the details of a command's rows (`command:<id>` targets), which every
command event of the trail carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import JSON, AuditRecord
from storage.models import AuditEventModel

__all__ = [
    "AuditFilter",
    "audit_page",
    "audit_vin",
    "last_audit_id",
    "list_audit",
]

_VEHICLE = "vehicle:"

# The columns of an `AuditRecord`, in its fields' order.
_COLUMNS = (
    AuditEventModel.id, AuditEventModel.at, AuditEventModel.actor, AuditEventModel.action,
    AuditEventModel.target, AuditEventModel.vin, AuditEventModel.details,
    AuditEventModel.chain, AuditEventModel.seq, AuditEventModel.prev_hash, AuditEventModel.hash,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to read (every condition given must hold), and from where.

    `action_prefix` matches actions that start with it (`"auth."` for
    `auth.*`). `after_id` is the keyset position: rows after it in the
    order read (ids above it, or below it when `newest_first`). `up_to_id`
    bounds an export to the rows that existed when it started.
    """

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    vin: str | None = None
    action: str | None = None
    action_prefix: str | None = None
    after_id: int | None = None
    up_to_id: int | None = None
    newest_first: bool = False


def audit_vin(target: str, details: Mapping[str, JSON]) -> str | None:
    """The vehicle an audit row concerns (its `vin` column), or None.

    The VIN of a `vehicle:<VIN>` target, else a 17-character `details["vin"]`.
    """
    if target.startswith(_VEHICLE) and len(target) == len(_VEHICLE) + 17:
        return target[len(_VEHICLE) :]
    vin = details.get("vin")
    return vin if isinstance(vin, str) and len(vin) == 17 else None


async def audit_page(reader: AsyncEngine, wanted: AuditFilter, limit: int) -> list[AuditRecord]:
    """Up to `limit` rows `wanted` selects, in id order (newest first if it says so)."""
    a = AuditEventModel
    query = (
        select(*_COLUMNS)
        .where(*_conditions(wanted))
        .order_by(a.id.desc() if wanted.newest_first else a.id)
        .limit(limit)
    )  # fmt: skip
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditRecord(*row) for row in rows]


async def list_audit(reader: AsyncEngine, target: str | None) -> list[AuditRecord]:
    """The whole trail (or `target`'s rows), oldest first."""
    query = select(*_COLUMNS).order_by(AuditEventModel.id)
    if target is not None:
        query = query.where(AuditEventModel.target == target)
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditRecord(*row) for row in rows]


async def last_audit_id(reader: AsyncEngine) -> int:
    """The highest id in the trail (0 when it is empty)."""
    async with reader.connect() as conn:
        found = (await conn.execute(select(func.max(AuditEventModel.id)))).scalar()
    return int(found or 0)


def _conditions(wanted: AuditFilter) -> list[ColumnElement[bool]]:
    a = AuditEventModel
    conditions: list[ColumnElement[bool]] = []
    if wanted.since is not None:
        conditions.append(a.at >= wanted.since)
    if wanted.until is not None:
        conditions.append(a.at < wanted.until)
    if wanted.actor is not None:
        conditions.append(a.actor == wanted.actor)
    if wanted.vin is not None:
        conditions.append(a.vin == wanted.vin)
    if wanted.action is not None:
        conditions.append(a.action == wanted.action)
    if wanted.action_prefix is not None:
        conditions.append(a.action.startswith(wanted.action_prefix, autoescape=True))
    if wanted.after_id is not None:
        conditions.append(a.id < wanted.after_id if wanted.newest_first else a.id > wanted.after_id)
    if wanted.up_to_id is not None:
        conditions.append(a.id <= wanted.up_to_id)
    return conditions
