"""The process (composition root): the `sovd-hub` CLI and the wiring of storage, hub and API.

Only this package knows every other one; `api`, `storage` and `hub` know
nothing of it, and it uses each of them only through its `__init__`.

    cli          the `sovd-hub` commands (serve, migrate, user add, vehicle add); `main`
    ├── audit_cli    `audit verify`
    ├── demo         `demo`: SQLite, users, a simulated fleet (`bench.simulator`, as a process)
    ├── node         `open_node`: database, bus, hub (gRPC) and app (HTTP) in one trio process;
    │   │            `recover_commands` after a crash or at a lone node's stop
    │   ├── retention    the retention runner (sweeps old audit rows and commands)
    │   └── revocations  the session-revocation runners (shared over the bus)
    ├── memory       tracemalloc summaries on SIGUSR1 (`SOVD_HUB_TRACEMALLOC_FILE`; the bench)
    ├── profiling    CPU time by component on SIGUSR2 (`SOVD_HUB_PROFILE_FILE`; the bench)
    ├── options      the options every command shares and the settings built from them
    └── runtime      one `trio.run`, the asyncio bridge, signals, JSON logs

(`demo` also uses `node` and `options`; `audit_cli` uses `retention`: the
imports go down this list, never up.)
"""

from sovd_hub.cli import build_parser, main
from sovd_hub.node import RESTART_REASON, STOP_REASON, NodeAddresses, open_node, recover_commands
from sovd_hub.retention import audit_signing_secret, retention_policy, run_retention, verify_key
from sovd_hub.runtime import configure_logging, run

__all__ = [
    "RESTART_REASON",
    "STOP_REASON",
    "NodeAddresses",
    "audit_signing_secret",
    "build_parser",
    "configure_logging",
    "main",
    "open_node",
    "recover_commands",
    "retention_policy",
    "run",
    "run_retention",
    "verify_key",
]
