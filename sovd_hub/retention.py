"""The node's retention task: removes old audit rows and finished commands on a schedule.

The work is `storage.AuditStore.sweep_retention` (see `storage.audit_retention`);
this module decides the policy from config and runs it every
`retention_sweep_s` while the node runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
import trio

from api import ApiConfig
from hub import ConfigError, load_config
from storage import (
    Database,
    RetentionPolicy,
    RetentionSummary,
    StorageConfig,
    StorageError,
    signing_key,
)

__all__ = ["audit_signing_secret", "retention_policy", "run_retention", "verify_key"]

log = structlog.get_logger("sovd_hub.retention")


def audit_signing_secret(storage_config: StorageConfig, jwt_secret: str) -> str:
    """The secret retention summaries are signed with: `audit_signing_key`, else `jwt_secret`."""
    return storage_config.audit_signing_key or jwt_secret


def verify_key(
    storage_config: StorageConfig, api_file_values: Mapping[str, object] | None
) -> tuple[bytes | None, str | None]:
    """The key `audit verify` checks summaries with, or None and a note saying why not."""
    if storage_config.audit_signing_key:
        return signing_key(storage_config.audit_signing_key), None
    try:
        api = load_config(ApiConfig, file_values=api_file_values)
    except ConfigError:
        return None, (
            "retention summaries' signatures were not checked: set SOVD_HUB_AUDIT_SIGNING_KEY "
            "(or SOVD_HUB_JWT_SECRET when the hub derives it from that) as the hub has it"
        )
    return signing_key(audit_signing_secret(storage_config, api.jwt_secret)), None


def retention_policy(
    storage_config: StorageConfig, jwt_secret: str, node_id: str
) -> RetentionPolicy | None:
    """The policy the config asks for; None when both windows are 0 (keep everything)."""
    if storage_config.audit_retention_days == 0 and storage_config.command_retention_days == 0:
        return None
    return RetentionPolicy(
        audit_days=storage_config.audit_retention_days,
        command_days=storage_config.command_retention_days,
        key=signing_key(audit_signing_secret(storage_config, jwt_secret)),
        node=node_id,
    )


async def run_retention(
    db: Database,
    policy: RetentionPolicy | None,
    every_s: float,
    *,
    on_sweep: Callable[[list[RetentionSummary]], None] | None = None,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sweep now and then every `every_s` until cancelled; started with the scope that stops it.

    A sweep that fails (database down) is logged and tried again at the next
    period; one that hit the per-sweep bound (`max_rows`) goes on at once.
    `on_sweep` is told what each successful sweep removed.
    """
    with trio.CancelScope() as scope:
        task_status.started(scope)
        if policy is None:
            return
        while True:
            backlog = False
            try:
                summaries = await db.audit.sweep_retention(policy)
                for done in summaries:
                    log.info(
                        "audit.retention",
                        chain=done.chain,
                        audit_rows=done.audit_rows,
                        commands=done.commands,
                        command_events=done.command_events,
                        anchor_seq=done.anchor_seq,
                    )
                    backlog |= max(done.audit_rows, done.commands) >= policy.max_rows
            except StorageError as exc:
                log.warning("audit.retention_failed", error=str(exc))
            else:
                if on_sweep is not None:
                    on_sweep(summaries)
            if backlog:
                await trio.lowlevel.checkpoint()
            else:
                await trio.sleep(every_s)
