"""The vehicle link protocol (`vehicle_link.proto`) and its generated stubs.

Regenerate with `make proto`; `tests/proto/test_stubs.py` fails when the
committed stubs drift from the `.proto`.
"""

from proto.vehicle_link_grpc import VehicleLinkBase, VehicleLinkStub
from proto.vehicle_link_pb2 import (
    CancelCommand,
    CommandEvent,
    CommandRequest,
    Heartbeat,
    Hello,
    HubMessage,
    SovdRequest,
    VehicleMessage,
    Welcome,
)

__all__ = [
    "CancelCommand",
    "CommandEvent",
    "CommandRequest",
    "Heartbeat",
    "Hello",
    "HubMessage",
    "SovdRequest",
    "VehicleLinkBase",
    "VehicleLinkStub",
    "VehicleMessage",
    "Welcome",
]
