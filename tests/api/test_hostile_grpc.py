"""Hostile peers on the gRPC port, through real sockets: what they are told, what they cost.

Each test sends its hostile input with a raw grpclib client (any bytes, any
declared length) and checks the hub's answer, what it wrote (audit, logs),
and that an unrelated vehicle's command still succeeds meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import struct

import pytest
import trio
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from hub import AuditRecord, run_asyncio
from proto import Hello, VehicleLinkStub, VehicleMessage
from tests.support.node import VINS, Node, NodeSettings

#: More than the hub will ever buffer; only the prefix and a little of it are sent.
HUGE = 200 << 20


@pytest.fixture
def node_settings() -> NodeSettings:
    """A short Hello deadline (a hub that waits for a body would hit it) and refusal window."""
    return NodeSettings(hub={"hello_timeout_s": 3, "refusal_audit_window_s": 1})


def _framed(body: bytes, declared: int | None = None) -> bytes:
    """A gRPC message: flag, declared length (default: the body's), body."""
    return b"\x00" + struct.pack(">I", len(body) if declared is None else declared) + body


async def _raw(node: Node, token: str, data: bytes) -> GRPCError:
    """Open `VehicleLink.Connect` with `token`, write `data` as it is, return the hub's status."""

    async def connect() -> GRPCError:
        channel = Channel("127.0.0.1", node.grpc_port)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {token}"}
            ) as stream:
                await stream.send_request()
                with contextlib.suppress(StreamTerminatedError):  # refused while we wrote
                    await stream._stream.send_data(data)
                    await stream.end()
                try:
                    while await stream.recv_message() is not None:
                        pass
                    await stream.recv_trailing_metadata()
                except GRPCError as exc:
                    return exc
                raise AssertionError("the hub ended the stream with OK")
        except GRPCError as exc:
            return exc
        finally:
            channel.close()

    with trio.fail_after(10):
        return await run_asyncio(connect)


async def _refusals(node: Node) -> list[AuditRecord]:
    return [
        a
        for a in await node.db.audit.list_audit(target="vehicle:?")
        if a.action == "vehicle.refused"
    ]


async def _other_vehicle_works(node: Node) -> None:
    command_id = (await node.submit(VINS[1], "ReadDTC", {"ecuAddress": "0x10"})).json()["id"]
    assert (await node.wait_final(command_id))["status"] == "succeeded"


async def test_a_huge_hello_is_refused_on_its_declared_length(node: Node) -> None:
    await node.connect_vehicle(VINS[1])
    # A valid token, then a "Hello" declared 200 MiB long, of which 16 KiB are sent.
    refused = await _raw(node, node.vehicle_tokens[VINS[0]], _framed(b"\x0a" * 16384, HUGE))
    # A hub that buffered the message would wait for the rest: DEADLINE_EXCEEDED after 3 s.
    assert (refused.status, refused.message) == (
        Status.RESOURCE_EXHAUSTED,
        f"a message of {HUGE} bytes, more than max_hello_bytes (4096); refused unread; "
        "the first message must be Hello",
    )
    await _other_vehicle_works(node)


async def test_without_a_valid_token_nothing_is_read(node: Node) -> None:
    await node.connect_vehicle(VINS[1])
    refused = await _raw(node, "not-a-token", _framed(b"\x0a" * 16384, HUGE))
    assert refused.status is Status.UNAUTHENTICATED
    assert (refused.message or "").startswith("unknown vehicle token")
    await _other_vehicle_works(node)


async def test_corrupt_protobuf_before_hello_is_invalid_argument_without_traceback(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    await node.connect_vehicle(VINS[1])
    with caplog.at_level(logging.INFO):
        refused = await _raw(
            node, node.vehicle_tokens[VINS[0]], _framed(b"\x0a\xff\xff\xff\xff\x0f")
        )
    assert refused.status is Status.INVALID_ARGUMENT
    assert refused.message == (
        "a message of 6 bytes that is not a protobuf VehicleMessage (it does not decode); check "
        "the agent's proto/vehicle_link.proto; the first message must be Hello"
    )
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    await _other_vehicle_works(node)


@pytest.mark.parametrize(
    ("vin_length", "status"),
    [(4000, Status.INVALID_ARGUMENT), (256 * 1024, Status.RESOURCE_EXHAUSTED)],
)
async def test_a_long_vin_is_not_echoed(
    node: Node, capsys: pytest.CaptureFixture[str], vin_length: int, status: Status
) -> None:
    await node.connect_vehicle(VINS[1])
    hello = VehicleMessage(hello=Hello(vin="A" * vin_length)).SerializeToString()
    # Only the first 16 KiB: the hub refuses a long one on its declared length.
    refused = await _raw(node, node.vehicle_tokens[VINS[0]], _framed(hello)[:16384])
    assert refused.status is status
    assert len(refused.message or "") < 200, refused.message
    if status is Status.INVALID_ARGUMENT:
        assert refused.message == (
            f"the Hello's vin {'A' * 64!r}… ({vin_length} characters) is not a VIN: "
            "expected 17 capital letters and digits"
        )
    await _other_vehicle_works(node)
    logged = capsys.readouterr().out.splitlines()
    assert logged and max(len(line) for line in logged) < 1000


async def test_refusals_from_one_source_are_one_audit_row_with_their_count(node: Node) -> None:
    await node.connect_vehicle(VINS[1])
    hello = _framed(VehicleMessage(hello=Hello(vin=VINS[0])).SerializeToString())
    async with trio.open_nursery() as nursery:
        for n in range(60):
            nursery.start_soon(_raw, node, f"bogus-{n}", hello)
    await _other_vehicle_works(node)
    for _ in range(100):  # the row is written as the window (1 s) ends
        if await _refusals(node):
            break
        await trio.sleep(0.1)
    await trio.sleep(1.5)  # a window later: nothing else came
    rows = await _refusals(node)
    assert len(rows) == 1
    (row,) = rows
    assert row.target == "vehicle:?"
    assert row.details["count"] == 60
    assert row.details["address"] == "127.0.0.1"
    assert row.details["statuses"] == {"UNAUTHENTICATED": 60}
