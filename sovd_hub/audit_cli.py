"""`sovd-hub audit verify`: check the audit trail's hash chains from the command line.

Exit codes: 0 every chain intact, 1 a chain is broken (its first broken row
is named), 2 bad input or configuration (as every `sovd-hub` command).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sovd_hub.options import add_storage_options, config_file, run_async, storage_config
from sovd_hub.retention import verify_key
from storage import ChainReport, StorageError, check_schema, open_database

__all__ = ["add_audit_parser", "format_report"]


def add_audit_parser(commands: Any) -> None:
    """Add `audit verify` to the CLI's subcommands (`commands`: argparse's subparsers)."""
    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        required=True, metavar="ACTION"
    )
    verify = audit.add_parser(
        "verify",
        help="check the audit hash chains; exit 1 naming the first broken row",
        description=(
            "Check every audit chain (one per hub node) from its anchor to its head: each "
            "row's hash, its link to the row before, no seq missing, the head, and the "
            "signatures of retention summaries (with SOVD_HUB_AUDIT_SIGNING_KEY, else "
            "SOVD_HUB_JWT_SECRET, as the hub has them). Exit 0 when intact, 1 when broken."
        ),
    )
    verify.add_argument("--chain", help="check only this chain (a node_id); default all")
    add_storage_options(verify)
    verify.set_defaults(handler=_verify)


def format_report(report: ChainReport) -> str:
    """One line about one chain."""
    span = (
        f"seq {report.anchor_seq + 1}-{report.last_seq}"
        if report.last_seq > report.anchor_seq
        else "no rows"
    )
    anchored = f", anchored at seq {report.anchor_seq}" if report.anchor_seq else ""
    n = report.summaries_checked
    summaries = f", {n} retention summar{'y' if n == 1 else 'ies'}" if n else ""
    if report.broken is None:
        return (
            f"chain {report.chain}: intact, {report.rows_checked} rows checked "
            f"({span}{anchored}{summaries})"
        )
    b = report.broken
    where = f"seq {b.seq}" + (f" (id {b.id})" if b.id is not None else "")
    return (
        f"chain {report.chain}: BROKEN at {where}: {b.kind}: {b.message} "
        f"({report.rows_checked} rows checked before it)"
    )


def _verify(args: argparse.Namespace) -> int:
    config = storage_config(args)
    key, key_note = verify_key(config, config_file(args).get("api"))
    check_schema(config.database_url)
    reports: list[ChainReport] = []

    async def verify() -> None:
        async with open_database(config.database_url) as db:
            reports.extend(await db.audit.verify_audit(chain=args.chain, key=key))

    run_async(verify)
    if key_note:
        print(f"note: {key_note}", file=sys.stderr)
    if not reports:
        if args.chain is not None:
            raise StorageError(f"no audit chain named {args.chain!r} in the database")
        print("audit trail intact: no audit rows yet")
        return 0
    for report in reports:
        print(format_report(report))
    total = sum(r.rows_checked for r in reports)
    broken = [r for r in reports if r.broken is not None]
    if not broken:
        print(f"audit trail intact: {len(reports)} chain(s), {total} rows checked")
        return 0
    first = broken[0]
    assert first.broken is not None
    print(
        f"audit trail BROKEN: {len(broken)} of {len(reports)} chain(s); first: chain "
        f"{first.chain} at seq {first.broken.seq} ({first.broken.kind})"
    )
    return 1
