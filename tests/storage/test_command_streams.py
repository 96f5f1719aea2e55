"""A node's command stream on the test Redis: a `dispatch` entry carries its command."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from hub import Command, SovdRequest
from storage import CommandStreams, KeyValue

pytestmark = pytest.mark.usefixtures("aio_loop")

COMMAND = Command(
    id=uuid.uuid4(),
    vin="WVWZZZ1JZXW000001",
    name="ReadDTC",
    params={"ecuAddress": "0x10"},
    sovd=SovdRequest("GET", "/components/engine/faults", {}, None),
    timeout_s=30.0,
    submitted_by="engineer",
    submitted_at=datetime.now(UTC),
)


async def test_a_dispatch_entry_carries_its_command_and_a_cancel_its_id(
    keyvalue: KeyValue,
) -> None:
    streams = CommandStreams(keyvalue, "node-a")
    await streams.send("node-a", "dispatch", COMMAND.vin, by="node-b", command=COMMAND)
    await streams.send("node-a", "cancel", COMMAND.vin, COMMAND.id, "admin")
    dispatch, cancel = await streams.read(
        "node-a", "node-a", pending=False, count=10, block_ms=None
    )
    assert (dispatch.kind, dispatch.vin, dispatch.by) == ("dispatch", COMMAND.vin, "node-b")
    assert dispatch.command_id == COMMAND.id
    assert dispatch.command == COMMAND
    assert (cancel.kind, cancel.command_id, cancel.by, cancel.command) == (
        "cancel",
        COMMAND.id,
        "admin",
        None,
    )


#: A command, but not the one whose id the entry has.
ANOTHER = json.dumps(replace(COMMAND, id=uuid.uuid4()).to_json())


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("[]", "expected a JSON object, got list"),
        ('{"id": "x"}', "'id': expected a UUID, got 'x'"),
        (ANOTHER, "'id': expected the entry's id"),
    ],
)
async def test_a_dispatch_whose_command_does_not_decode_is_read_without_it(
    keyvalue: KeyValue, raw: str, reason: str
) -> None:
    streams = CommandStreams(keyvalue, "node-a")
    fields = {"kind": "dispatch", "vin": COMMAND.vin, "id": str(COMMAND.id), "command": raw}
    await keyvalue.run(_xadd, streams.stream_key("node-a"), fields)
    with capture_logs() as logs:
        [entry] = await streams.read("node-a", "node-a", pending=False, count=1, block_ms=None)
    assert (entry.kind, entry.command_id, entry.command) == ("dispatch", COMMAND.id, None)
    [warning] = [e for e in logs if e["event"] == "routing.entry_command_invalid"]
    assert reason in warning["reason"], warning


async def _xadd(client: Redis, stream: str, fields: dict[str, str]) -> None:
    await client.xadd(stream, fields)  # type: ignore[arg-type]
