"""The committed grpclib/protobuf stubs match `proto/vehicle_link.proto`, and work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proto import (
    CommandEvent,
    HubMessage,
    SovdRequest,
    VehicleLinkBase,
    VehicleMessage,
)

REPO = Path(__file__).resolve().parents[2]
STUBS = ("vehicle_link_pb2.py", "vehicle_link_pb2.pyi", "vehicle_link_grpc.py")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stubs as `make proto` would write them today, in a scratch directory."""
    out = tmp_path_factory.mktemp("stubs")
    # Not resolved: the venv's bin holds protoc-gen-grpclib_python, its python is a symlink.
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpclib_python_out={out}",
            "proto/vehicle_link.proto",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"
    return out / "proto"


def test_protoc_writes_exactly_the_committed_stubs(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == sorted(STUBS)


@pytest.mark.parametrize("name", STUBS)
def test_committed_stub_matches_the_proto(generated: Path, name: str) -> None:
    committed = REPO / "proto" / name
    assert committed.is_file(), f"proto/{name} is missing; run `make proto` and commit it"
    assert committed.read_bytes() == (generated / name).read_bytes(), (
        f"proto/{name} is out of date with proto/vehicle_link.proto; "
        "run `make proto` and commit the result"
    )


def test_vehicle_message_round_trips() -> None:
    message = VehicleMessage(
        event=CommandEvent(
            command_id="6f1c2a8e-3b7d-4c1e-9a55-0d2f4b6e8a10",
            seq=3,
            kind=CommandEvent.Kind.RESULT,
            status=200,
            body=b'{"dtcs": ["P0301"]}',
            final=True,
        )
    )

    decoded = VehicleMessage.FromString(message.SerializeToString())

    assert decoded == message
    assert decoded.WhichOneof("kind") == "event"
    assert decoded.event.seq == 3
    assert decoded.event.kind == CommandEvent.Kind.RESULT
    assert decoded.event.body == b'{"dtcs": ["P0301"]}'
    assert decoded.event.final


def test_hub_message_carries_a_sovd_request() -> None:
    message = HubMessage()
    message.command.command_id = "c1"
    message.command.sovd.CopyFrom(
        SovdRequest(method="GET", path="/components/engine/faults", query={"status": "active"})
    )
    message.command.deadline_ms = 30_000

    decoded = HubMessage.FromString(message.SerializeToString())

    assert decoded.WhichOneof("kind") == "command"
    assert decoded.command.sovd.path == "/components/engine/faults"
    assert dict(decoded.command.sovd.query) == {"status": "active"}
    assert decoded.command.deadline_ms == 30_000


class _Link(VehicleLinkBase):
    async def Connect(self, stream: object) -> None:  # noqa: N802 - the gRPC method name
        raise NotImplementedError


def test_grpclib_service_routes_the_connect_stream() -> None:
    handlers = _Link().__mapping__()

    assert list(handlers) == ["/sovd.link.v1.VehicleLink/Connect"]
    handler = handlers["/sovd.link.v1.VehicleLink/Connect"]
    assert handler.request_type is VehicleMessage
    assert handler.reply_type is HubMessage
