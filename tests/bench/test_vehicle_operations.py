"""Sans-IO tests of the simulated vehicle's operations: start, status, stop."""

from __future__ import annotations

import orjson
import pytest

from bench.vehicle_model import Answer, EventKind, EventSpec, Stopped, VehicleModel
from hub import JSON
from proto import SovdRequest

VIN = "WVWZZZ1KZ8W000001"
START = "/components/engine/operations/selftest/executions"
RUN_ID = "6f1c2a9e-5b3d-4e8f-a1c7-0d9b8e7f6a52"
STOP_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def send(
    model: VehicleModel, method: str, path: str, body: JSON = None, command_id: str = ""
) -> Answer:
    raw = b"" if body is None else orjson.dumps(body)
    answer = model.answer(SovdRequest(method=method, path=path), body=raw, command_id=command_id)
    assert [e.final for e in answer.events] == [False] * (len(answer.events) - 1) + [True]
    return answer


def test_selftest_is_accepted_streams_progress_then_completes() -> None:
    events = send(
        VehicleModel(VIN), "POST", START, {"parameters": {"durationMs": 400}}, RUN_ID
    ).events

    ident = {"id": RUN_ID, "component": "engine", "operation": "selftest"}
    assert events[0] == EventSpec(
        EventKind.ACCEPTED, 202, {**ident, "status": "running", "href": f"{START}/{RUN_ID}"}, False
    )
    assert [(e.kind, e.body["progress"], e.body["step"], e.delay_s) for e in events[1:-1]] == [
        (EventKind.PROGRESS, 0, "sensors", 0.0),
        (EventKind.PROGRESS, 25, "actuators", 0.1),
        (EventKind.PROGRESS, 50, "wiring", 0.1),
        (EventKind.PROGRESS, 75, "memory", 0.1),
    ]
    assert (events[-1].kind, events[-1].status, events[-1].delay_s) == (EventKind.RESULT, 200, 0.1)
    assert events[-1].body["status"] == "completed"
    assert events[-1].body["result"] == {
        "passed": True,
        "checks": [
            {"name": "sensors", "passed": True},
            {"name": "actuators", "passed": True},
            {"name": "wiring", "passed": True},
            {"name": "memory", "passed": True},
        ],
    }
    # The whole run takes the duration asked for.
    assert sum(e.delay_s for e in events) == pytest.approx(0.4)


def test_selftest_runs_three_seconds_by_default() -> None:
    events = send(VehicleModel(VIN), "POST", START, None, RUN_ID).events

    assert sum(e.delay_s for e in events) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"parameters": {"durationMs": 50}},
            "parameters.durationMs must be an integer from 100 to 20000, got 50",
        ),
        (
            {"parameters": {"durationMs": "1000"}},
            "parameters.durationMs must be an integer from 100 to 20000, got '1000'",
        ),
        (
            {"parameters": {"durationMs": True}},
            "parameters.durationMs must be an integer from 100 to 20000, got True",
        ),
        (
            {"parameters": {"speed": 3}},
            'expected a body {"parameters": {"durationMs": n}} (durationMs optional), '
            'got {"parameters":{"speed":3}}',
        ),
        (
            ["x"],
            'expected a body {"parameters": {"durationMs": n}} (durationMs optional), got ["x"]',
        ),
    ],
)
def test_a_bad_start_body_is_a_400(body: JSON, message: str) -> None:
    model = VehicleModel(VIN)

    [event] = send(model, "POST", START, body, RUN_ID).events

    assert (event.kind, event.status) == (EventKind.ERROR, 400)
    assert event.body == {"error_code": "invalid-body", "message": message}
    assert model.operations.executions == {}


def test_a_start_body_that_is_not_json_is_a_400() -> None:
    answer = VehicleModel(VIN).answer(SovdRequest(method="POST", path=START), body=b"{nope")

    assert answer.events[0].body == {
        "error_code": "invalid-body",
        "message": "the request body is not JSON",
    }


def test_stop_ends_the_running_execution_and_names_who_stopped_it() -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)

    answer = send(model, "DELETE", f"{START}/{RUN_ID}", None, STOP_ID)

    ident = {"id": RUN_ID, "component": "engine", "operation": "selftest"}
    assert answer.events == [EventSpec(EventKind.RESULT, 200, {**ident, "status": "stopped"}, True)]
    assert answer.stopped == (
        Stopped(
            RUN_ID,
            EventSpec(
                EventKind.RESULT, 200, {**ident, "status": "stopped", "stopped_by": STOP_ID}, True
            ),
        ),
    )
    [status] = send(model, "GET", f"{START}/{RUN_ID}").events
    assert status.body == {**ident, "status": "stopped"}


def test_stop_accepts_an_upper_case_execution_id() -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)

    answer = send(model, "DELETE", f"{START}/{RUN_ID.upper()}", None, STOP_ID)

    assert [s.command_id for s in answer.stopped] == [RUN_ID]


@pytest.mark.parametrize(("completed", "status"), [(True, "completed"), (False, "aborted")])
def test_an_ended_execution_cannot_be_stopped(completed: bool, status: str) -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)
    model.command_ended(RUN_ID, completed=completed)

    answer = send(model, "DELETE", f"{START}/{RUN_ID}", None, STOP_ID)

    assert answer.stopped == ()
    assert answer.events[0].status == 409
    assert answer.events[0].body == {
        "error_code": "execution-not-running",
        "message": f"execution {RUN_ID} of selftest on component engine is {status}, "
        "not running: there is nothing to stop",
    }
    assert send(model, "GET", f"{START}/{RUN_ID}").events[0].body["status"] == status


def test_a_stopped_execution_stays_stopped_when_its_command_ends() -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)
    send(model, "DELETE", f"{START}/{RUN_ID}", None, STOP_ID)

    model.command_ended(RUN_ID, completed=False)

    assert send(model, "GET", f"{START}/{RUN_ID}").events[0].body["status"] == "stopped"


@pytest.mark.parametrize(
    "path",
    [
        f"{START}/{STOP_ID}",  # never started
        f"/components/brakes/operations/selftest/executions/{RUN_ID}",  # another component's
    ],
)
def test_an_unknown_execution_is_a_404(path: str) -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)

    answer = send(model, "DELETE", path, None, STOP_ID)

    assert answer.stopped == ()
    assert (answer.events[0].status, answer.events[0].body["error_code"]) == (
        404,
        "unknown-execution",
    )


def test_an_unknown_operation_is_a_404() -> None:
    [event] = send(
        VehicleModel(VIN), "POST", "/components/engine/operations/reset/executions"
    ).events

    assert event.status == 404
    assert event.body == {
        "error_code": "unknown-operation",
        "message": "unknown operation 'reset' on component engine; known: selftest",
    }


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", START, "POST"), ("POST", f"{START}/{RUN_ID}", "GET, DELETE")],
)
def test_wrong_method_on_executions_is_a_405(method: str, path: str, allowed: str) -> None:
    [event] = send(VehicleModel(VIN), method, path).events

    assert (event.status, event.body["error_code"]) == (405, "method-not-allowed")
    assert str(event.body["message"]).endswith(f"allowed: {allowed}")


def test_list_operations() -> None:
    [event] = send(VehicleModel(VIN), "GET", "/components/body/operations").events

    assert event.body == {
        "ecu": "0x40",
        "component": "body",
        "items": [
            {
                "id": "selftest",
                "description": "Run the component's built-in self test",
                "href": "/components/body/operations/selftest/executions",
            }
        ],
    }


def test_executions_without_a_command_id_get_their_own() -> None:
    model = VehicleModel(VIN)

    first = send(model, "POST", START).events[0].body["id"]
    second = send(model, "POST", START).events[0].body["id"]

    assert (first, second) == ("execution-1", "execution-2")


def test_finished_executions_are_forgotten_beyond_a_bound_running_ones_never() -> None:
    model = VehicleModel(VIN)
    send(model, "POST", START, None, RUN_ID)  # keeps running throughout
    for n in range(300):
        send(model, "POST", START, None, f"run-{n}")
        model.command_ended(f"run-{n}", completed=True)

    assert len(model.operations.executions) == 256
    assert RUN_ID in model.operations.executions
    assert "run-299" in model.operations.executions and "run-0" not in model.operations.executions
