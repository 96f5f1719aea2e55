"""The sans-IO vehicle-link protocol: decisions from messages and times, without sockets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from grpclib.const import Status

from hub import DisconnectReason, LinkVerdict, VehicleCredentials, VehicleRefused
from hub.gateway import STATUS_OF
from hub.link_protocol import (
    LinkEnd,
    LinkProtocol,
    admit,
    bad_first_message,
    bearer_token,
    check_identity,
    first_message,
    hello_timeout,
    welcome,
)
from proto import CommandEvent, Heartbeat, Hello, HubMessage, VehicleMessage

VIN = "WVWZZZ1JZXW000001"
ROOT = Path(__file__).resolve().parents[2]


def _refusal(exc: pytest.ExceptionInfo[VehicleRefused]) -> tuple[LinkVerdict, str]:
    return exc.value.verdict, exc.value.message


@pytest.mark.parametrize("value", [None, 42, "", "Basic abc", "Bearer ", "bearer"])
def test_a_missing_or_malformed_token_is_refused_unauthenticated(value: object) -> None:
    with pytest.raises(VehicleRefused) as exc:
        bearer_token(value)
    assert _refusal(exc) == (
        LinkVerdict.UNAUTHENTICATED,
        "missing vehicle token: send metadata 'authorization: Bearer <vehicle token>'",
    )


def test_the_token_is_read_after_bearer_in_any_case() -> None:
    assert bearer_token("Bearer tok-1") == "tok-1"
    assert bearer_token("bearer  tok-2 ") == "tok-2"


def test_the_first_message_must_be_hello() -> None:
    hello = Hello(vin=VIN, agent_version="1.0")
    assert first_message(VehicleMessage(hello=hello)) == hello
    for first in (None, VehicleMessage(heartbeat=Heartbeat(sent_at_ms=1))):
        with pytest.raises(VehicleRefused) as exc:
            first_message(first)
        assert _refusal(exc) == (LinkVerdict.PROTOCOL_ERROR, "the first message must be Hello")


def test_an_unreadable_or_late_first_message_is_refused() -> None:
    too_large = VehicleRefused(LinkVerdict.TOO_LARGE, "a message of 9000 bytes, more than x")
    assert (bad_first_message(too_large).verdict, bad_first_message(too_large).message) == (
        LinkVerdict.TOO_LARGE,
        "a message of 9000 bytes, more than x; the first message must be Hello",
    )
    late = hello_timeout(0.5)
    assert (late.verdict, late.message) == (
        LinkVerdict.TIMED_OUT,
        "no Hello within 0.5 s (hello_timeout_s)",
    )


def test_a_client_certificate_must_name_the_hellos_vin() -> None:
    check_identity(VIN, VIN)
    with pytest.raises(VehicleRefused) as exc:
        check_identity("WVWZZZ1JZXW000002", VIN)
    assert _refusal(exc) == (
        LinkVerdict.PERMISSION_DENIED,
        f"the client certificate is for 'WVWZZZ1JZXW000002', not VIN {VIN}",
    )
    with pytest.raises(VehicleRefused) as exc:
        check_identity(None, "x" * 100)
    assert exc.value.message == (
        f"the client certificate is for '', not VIN {'x' * 64!r}… (100 characters)"
    )


def test_admit_finds_the_hellos_vehicle_among_the_tokens_candidates() -> None:
    mine = VehicleCredentials(VIN, "hash-1", True)
    other = VehicleCredentials("WVWZZZ1JZXW000002", "hash-2", True)
    assert admit(Hello(vin=VIN), [other, mine]) is mine


@pytest.mark.parametrize(
    ("vin", "candidates", "verdict", "message"),
    [
        (
            "A" * 4000,
            [],
            LinkVerdict.PROTOCOL_ERROR,
            f"the Hello's vin {'A' * 64!r}… (4000 characters) is not a VIN: expected 17 "
            "capital letters and digits",
        ),
        (
            VIN,
            [VehicleCredentials("WVWZZZ1JZXW000002", "h", True)],
            LinkVerdict.UNAUTHENTICATED,
            f"wrong token for VIN {VIN}",
        ),
        (
            VIN,
            [VehicleCredentials(VIN, "h", False)],
            LinkVerdict.PERMISSION_DENIED,
            f"vehicle {VIN} is disabled",
        ),
    ],
)
def test_admit_refuses_and_says_why(
    vin: str, candidates: list[VehicleCredentials], verdict: LinkVerdict, message: str
) -> None:
    with pytest.raises(VehicleRefused) as exc:
        admit(Hello(vin=vin), candidates)
    assert _refusal(exc) == (verdict, message)


def test_welcome_names_the_session_and_the_heartbeat_interval() -> None:
    message = welcome("s-1", 2.5)
    assert message.WhichOneof("kind") == "welcome"
    assert (message.welcome.session_id, message.welcome.heartbeat_interval_ms) == ("s-1", 2500)


def _protocol(max_per_s: float = 5, heartbeat_s: float = 10, now: float = 100.0) -> LinkProtocol:
    return LinkProtocol(max_messages_per_s=max_per_s, heartbeat_interval_s=heartbeat_s, now=now)


def test_heartbeats_are_answered_and_events_go_to_the_actor() -> None:
    protocol = _protocol()
    beat = VehicleMessage(heartbeat=Heartbeat(sent_at_ms=7))
    assert protocol.received(beat, 100.0) == HubMessage(heartbeat=Heartbeat(sent_at_ms=7))
    event = VehicleMessage(event=CommandEvent(command_id="c", seq=0))
    assert protocol.received(event, 100.1) is None
    assert protocol.last_heard == 100.1


def test_more_messages_per_second_than_allowed_end_the_link() -> None:
    protocol = _protocol(max_per_s=5)
    beat = VehicleMessage(heartbeat=Heartbeat())
    for _ in range(5):  # the bucket starts full: a burst of one second's worth passes
        assert isinstance(protocol.received(beat, 100.0), HubMessage)
    assert protocol.received(beat, 100.0) == LinkEnd(
        LinkVerdict.RATE_LIMITED,
        "the vehicle sent more than 5 messages per second (max_vehicle_messages_per_s)",
        DisconnectReason.PROTOCOL_ERROR,
    )


def test_the_rate_limit_refills_at_its_rate() -> None:
    protocol = _protocol(max_per_s=4)
    beat = VehicleMessage(heartbeat=Heartbeat())
    for i in range(40):  # exactly the allowed rate, for ten seconds
        assert isinstance(protocol.received(beat, 100.0 + i * 0.25), HubMessage)
    for _ in range(3):  # what the first message of the burst took is never given back
        assert isinstance(protocol.received(beat, 109.75), HubMessage)
    assert isinstance(protocol.received(beat, 109.75), LinkEnd)


def test_a_link_is_silent_after_three_heartbeat_intervals_without_a_message() -> None:
    protocol = _protocol(heartbeat_s=10, now=100.0)
    assert protocol.silence(129.9) is None
    protocol.received(VehicleMessage(heartbeat=Heartbeat()), 120.0)  # heard: the wait restarts
    assert protocol.silence(149.9) is None
    assert protocol.silence(150.0) == LinkEnd(
        LinkVerdict.UNAVAILABLE,
        "no message from the vehicle for 30 s",
        DisconnectReason.HEARTBEAT_TIMEOUT,
    )


def test_every_verdict_has_the_status_of_the_readmes_table() -> None:
    assert dict(STATUS_OF) == {
        LinkVerdict.UNAUTHENTICATED: Status.UNAUTHENTICATED,
        LinkVerdict.PERMISSION_DENIED: Status.PERMISSION_DENIED,
        LinkVerdict.PROTOCOL_ERROR: Status.INVALID_ARGUMENT,
        LinkVerdict.TOO_LARGE: Status.RESOURCE_EXHAUSTED,
        LinkVerdict.RATE_LIMITED: Status.RESOURCE_EXHAUSTED,
        LinkVerdict.UNAVAILABLE: Status.UNAVAILABLE,
        LinkVerdict.TIMED_OUT: Status.DEADLINE_EXCEEDED,
        LinkVerdict.REPLACED: Status.ABORTED,
        LinkVerdict.INTERNAL: Status.INTERNAL,
    }
    assert set(STATUS_OF) == set(LinkVerdict)


def _imports_grpclib(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [node.module]
        if any(name == "grpclib" or name.startswith("grpclib.") for name in names):
            return True
    return False


def test_only_the_gateway_knows_grpc() -> None:
    """gRPC stays at the edge: no other module of `hub` or `api` imports grpclib."""
    importers = {
        str(path.relative_to(ROOT))
        for package in ("hub", "api")
        for path in (ROOT / package).rglob("*.py")
        if _imports_grpclib(path)
    }
    assert importers == {"hub/gateway.py", "hub/gateway_io.py"}
