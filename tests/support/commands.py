"""Commands and events built for storage tests (`make_command`, `make_event`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hub import (
    Command,
    CommandEventRecord,
    EventKind,
    SovdRequest,
)

VIN = "WVWZZZ1JZXW000001"
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def make_command(vin: str = VIN, at: datetime = T0) -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest(
            method="GET",
            path="/components/engine/faults",
            query={"status": "active"},
            body=None,
        ),
        timeout_s=30.0,
        submitted_by="alice",
        submitted_at=at,
    )


def make_event(command: Command, seq: int, *, final: bool = False) -> CommandEventRecord:
    return CommandEventRecord(
        command_id=command.id,
        seq=seq,
        kind=EventKind.RESULT if final else EventKind.PROGRESS,
        status=200,
        body={"chunk": seq, "items": [{"code": "P0301"}]},
        final=final,
        received_at=T0 + timedelta(seconds=seq),
    )
