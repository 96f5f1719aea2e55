"""The audit trail for admins: filtered pages (`GET /api/v1/audit`) and streamed exports.

Pages are keyset pages in id order (the order of the hash chain): `next`
carries `after_id`, so a page costs the same wherever it starts and events
appended meanwhile neither shift nor repeat rows. There is no `total`:
counting the matching rows of a large trail is a scan per page; an export
gives the whole set when that is what is wanted.

An export (`GET /api/v1/audit/export?format=ndjson|csv`) is audited first
(`audit.exported`, by the admin, with the filters and format), then streams
every event that matches and existed once that event was committed, oldest
first, reading `EXPORT_PAGE_ROWS` rows per database transaction, so its size
is not bounded by memory. Each event carries its chain fields (`chain`, `seq`,
`prev_hash`, `hash`) and `at` exactly as the hash covers it, so the file can
be verified offline (`storage.audit_chain.row_hash`). A stream that breaks off
(the database went away) ends without its final chunk: the client sees an
incomplete transfer, never a short file that looks whole; `after_id` resumes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
import structlog
from quart import Blueprint, Response, g
from quart_schema import validate_querystring, validate_response

from api.access import current_principal, requires
from api.auth import Role
from api.openapi import streamed
from api.schemas import AuditEventOut, AuditExportQuery, AuditFilters, AuditPage, AuditQuery
from api.state import state
from hub import JSON, AuditRecord
from storage import AuditFilter, Database

audit = Blueprint("audit", __name__, url_prefix="/api/v1/audit")
log = structlog.get_logger("api.audit")

#: Rows read per database transaction (one bridge crossing) while exporting.
EXPORT_PAGE_ROWS = 1000
#: The columns of an exported event, in order (also the CSV header).
EXPORT_COLUMNS = (
    "id", "at", "actor", "action", "target", "vin", "details", "chain", "seq", "prev_hash", "hash",
)  # fmt: skip
_MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@audit.get("")
@requires(Role.ADMIN)
@validate_querystring(AuditQuery)
@validate_response(AuditPage)
async def list_audit(query_args: AuditQuery) -> AuditPage:
    """A page of the audit trail, oldest first (or newest first with `order=desc`).

    Filters: `since`/`until` (on `at`), `actor`, `vin`, `action` (`auth.login`
    or `auth.*`). `next` is the following page, null when there is none now.
    """
    wanted = replace(
        _filter(query_args), after_id=query_args.after_id, newest_first=query_args.order == "desc"
    )
    rows = await state().db.audit.audit_page(wanted, limit=query_args.limit + 1)
    items = rows[: query_args.limit]
    more = len(rows) > query_args.limit
    return AuditPage(
        items=[_event_out(row) for row in items],
        limit=query_args.limit,
        next=_next_page(query_args, items[-1].id) if more else None,
    )


@audit.get("/export")
@streamed(
    "every matching event, oldest first: one JSON object a line (ndjson), or CSV with a header "
    f"row ({', '.join(EXPORT_COLUMNS)}; details as JSON); sent as an attachment",
    "application/x-ndjson",
    "text/csv",
)
@requires(Role.ADMIN)
@validate_querystring(AuditExportQuery)
async def export_audit(query_args: AuditExportQuery) -> Response:
    """Stream the audit trail (filtered like `GET /api/v1/audit`) as NDJSON or CSV.

    The export is audited (`audit.exported`) before it starts and covers the
    events committed up to then, its own included when the filters take it.
    """
    db = state().db
    details: dict[str, JSON] = query_args.model_dump(mode="json", exclude_none=True)
    details["format"] = query_args.format
    await db.audit.append_audit(
        actor=current_principal().username, action="audit.exported", target="audit", details=details
    )
    wanted = replace(
        _filter(query_args), after_id=query_args.after_id, up_to_id=await db.audit.last_audit_id()
    )
    now = datetime.now(UTC)
    response = Response(
        _export(db, wanted, query_args.format, g.get("correlation_id")),
        content_type=_MEDIA_TYPES[query_args.format],
        headers={
            "Content-Disposition": (
                f'attachment; filename="audit-{now:%Y%m%dT%H%M%SZ}.{query_args.format}"'
            ),
            "Cache-Control": "no-store",
        },
    )
    response.timeout = None  # as long as it takes: Quart's RESPONSE_TIMEOUT would cut it short
    return response


async def _export(
    db: Database, wanted: AuditFilter, form: str, correlation_id: str | None
) -> AsyncIterator[bytes]:
    """The export's body: one chunk per page of rows."""
    encode = _csv_rows if form == "csv" else _ndjson_rows
    rows_sent = 0
    try:
        if form == "csv":
            yield _csv_line(EXPORT_COLUMNS)
        while True:
            rows = await db.audit.audit_page(wanted, limit=EXPORT_PAGE_ROWS)
            if rows:
                yield encode(rows)
                rows_sent += len(rows)
            if len(rows) < EXPORT_PAGE_ROWS:
                break
            wanted = replace(wanted, after_id=rows[-1].id)
    except Exception:
        # Raised on: the transfer ends without its last chunk, so the client knows.
        log.exception("audit.export_failed", rows=rows_sent, correlation_id=correlation_id)
        raise
    log.info("audit.exported", rows=rows_sent, correlation_id=correlation_id)


def _filter(query: AuditFilters) -> AuditFilter:
    action = query.action
    prefix = action[:-1] if action is not None and action.endswith(".*") else None
    return AuditFilter(
        since=query.since,
        until=query.until,
        actor=query.actor,
        vin=query.vin,
        action=action if prefix is None else None,
        action_prefix=prefix,
    )


def _next_page(query: AuditQuery, last_id: int) -> str:
    params = query.model_dump(mode="json", exclude_none=True)
    params["after_id"] = last_id
    return f"/api/v1/audit?{urlencode(params)}"


def _event_out(row: AuditRecord) -> AuditEventOut:
    return AuditEventOut(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        vin=row.vin,
        details=row.details,
        chain=row.chain,
        seq=row.seq,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _instant(at: datetime) -> str:
    """`at` as the hash chain writes it: UTC, microseconds, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _exported(row: AuditRecord) -> dict[str, JSON]:
    return {
        "id": row.id,
        "at": _instant(row.at),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "vin": row.vin,
        "details": row.details,
        "chain": row.chain,
        "seq": row.seq,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _ndjson_rows(rows: Sequence[AuditRecord]) -> bytes:
    return b"".join(orjson.dumps(_exported(row)) + b"\n" for row in rows)


def _csv_rows(rows: Sequence[AuditRecord]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)  # quotes what needs it: JSON details are full of quotes and commas
    for row in rows:
        exported = _exported(row)
        exported["details"] = orjson.dumps(row.details, option=orjson.OPT_SORT_KEYS).decode()
        writer.writerow("" if value is None else value for value in exported.values())
    return out.getvalue().encode()


def _csv_line(values: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue().encode()
