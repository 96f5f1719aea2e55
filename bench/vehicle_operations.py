"""The simulated vehicle's operations: start, follow and stop executions of `selftest`.

Sans-IO, part of `bench.vehicle_model` (which routes `/components/{c}/operations...`
here). An execution's id is the id of the command that started it, so an
operator can stop it knowing only the command id. The model never sleeps: the
events it returns carry `delay_s`, and the simulator says when a start command
has ended (`command_ended`), which is how the model knows what still runs.

    POST   .../operations/{op}/executions       ACCEPTED 202 {"id", "status": "running"},
                                                PROGRESS 200 {"progress": 0, 25, 50, 75},
                                                RESULT 200 {"status": "completed", "result"}
    GET    .../operations/{op}/executions/{x}   RESULT {"status": running|completed|stopped|aborted}
    DELETE .../operations/{op}/executions/{x}   RESULT {"status": "stopped"}, and the start
                                                command ends with RESULT 200
                                                {"status": "stopped", "stopped_by": <stop id>};
                                                409 when it no longer runs
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.vehicle_events import (
    Answer,
    EventKind,
    EventSpec,
    JsonValue,
    Stopped,
    error,
    only,
    result,
)

OPERATIONS: Mapping[str, str] = {"selftest": "Run the component's built-in self test"}
#: selftest: its checks, in order, and the bounds and default of its duration.
SELFTEST_CHECKS = ("sensors", "actuators", "wiring", "memory")
DURATION_MS_MIN, DURATION_MS_MAX, DURATION_MS_DEFAULT = 100, 20_000, 3_000
KEPT_EXECUTIONS = 256  # finished executions remembered for status and stop answers


@dataclass(slots=True)
class Execution:
    """One run of an operation; `status` is running, completed, stopped or aborted."""

    id: str
    component: str
    operation: str
    status: str = "running"

    def ident(self) -> dict[str, JsonValue]:
        """The fields naming this execution in every body about it."""
        return {"id": self.id, "component": self.component, "operation": self.operation}


@dataclass
class Operations:
    """The executions of one vehicle, running and recently finished (by id)."""

    executions: dict[str, Execution] = field(default_factory=dict)
    _anonymous: int = 0

    def listing(self, component: str, where: dict[str, JsonValue]) -> EventSpec:
        """The operations `component` can run."""
        items: list[JsonValue] = [
            {"id": op, "description": text, "href": _href(component, op)}
            for op, text in OPERATIONS.items()
        ]
        return result({**where, "items": items})

    def answer(
        self,
        method: str,
        path: str,
        component: str,
        resource: list[str],
        body: bytes,
        command_id: str,
    ) -> Answer | None:
        """Answer `[op, "executions", *rest]`; None when `resource` is not an operation path."""
        if len(resource) not in (2, 3) or resource[1] != "executions":
            return None
        operation, rest = resource[0], resource[2:]
        if operation not in OPERATIONS:
            message = f"unknown operation {operation!r} on component {component}; known: "
            return Answer([error(404, "unknown-operation", message + ", ".join(OPERATIONS))])
        if not rest:
            refused = only(method, path, "POST")
            return Answer(
                [refused] if refused else self._start(component, operation, body, command_id)
            )
        refused = only(method, path, "GET, DELETE")
        if refused is not None:
            return Answer([refused])
        return self._execution(method, component, operation, rest[0], command_id)

    def command_ended(self, command_id: str, *, completed: bool) -> None:
        """The command `command_id` sent its last event (`completed`) or was cut short.

        An execution it started that still runs becomes completed, or aborted
        (cancelled by the hub, link lost).
        """
        execution = self.executions.get(command_id)
        if execution is not None and execution.status == "running":
            execution.status = "completed" if completed else "aborted"

    def _start(
        self, component: str, operation: str, body: bytes, command_id: str
    ) -> list[EventSpec]:
        duration_ms = _duration_ms(body)
        if isinstance(duration_ms, EventSpec):
            return [duration_ms]
        if not command_id:
            self._anonymous += 1
            command_id = f"execution-{self._anonymous}"
        execution = Execution(command_id, component, operation)
        self._remember(execution)
        ident = execution.ident()
        href = f"{_href(component, operation)}/{execution.id}"
        step_s = duration_ms / 1000 / len(SELFTEST_CHECKS)
        events = [
            EventSpec(EventKind.ACCEPTED, 202, {**ident, "status": "running", "href": href}, False)
        ]
        for index, check in enumerate(SELFTEST_CHECKS):
            progress: dict[str, JsonValue] = {
                "id": execution.id,
                "progress": 100 * index // len(SELFTEST_CHECKS),
                "step": check,
            }
            # The first check starts at once; each later one after the previous one's time.
            events.append(
                EventSpec(EventKind.PROGRESS, 200, progress, False, 0.0 if index == 0 else step_s)
            )
        checks: list[JsonValue] = [{"name": c, "passed": True} for c in SELFTEST_CHECKS]
        outcome: dict[str, JsonValue] = {"passed": True, "checks": checks}
        events.append(result({**ident, "status": "completed", "result": outcome}, step_s))
        return events

    def _execution(
        self, method: str, component: str, operation: str, execution_id: str, command_id: str
    ) -> Answer:
        execution = self.executions.get(execution_id.lower())
        if execution is None or (execution.component, execution.operation) != (
            component,
            operation,
        ):
            message = f"no execution {execution_id} of {operation} on component {component}"
            return Answer([error(404, "unknown-execution", message)])
        ident = execution.ident()
        if method == "GET":
            return Answer([result({**ident, "status": execution.status})])
        if execution.status != "running":
            message = (
                f"execution {execution.id} of {operation} on component {component} is "
                f"{execution.status}, not running: there is nothing to stop"
            )
            return Answer([error(409, "execution-not-running", message)])
        execution.status = "stopped"
        stopped_by: JsonValue = command_id or None
        final = result({**ident, "status": "stopped", "stopped_by": stopped_by})
        return Answer([result({**ident, "status": "stopped"})], (Stopped(execution.id, final),))

    def _remember(self, execution: Execution) -> None:
        self.executions[execution.id] = execution
        finished = [x.id for x in self.executions.values() if x.status != "running"]
        for old in finished[: max(0, len(self.executions) - KEPT_EXECUTIONS)]:
            del self.executions[old]


def _href(component: str, operation: str) -> str:
    return f"/components/{component}/operations/{operation}/executions"


def _duration_ms(body: bytes) -> int | EventSpec:
    """The selftest's duration from a start request's body, or the 400 to answer."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:  # UnicodeDecodeError is one
        return error(400, "invalid-body", "the request body is not JSON")
    parameters = data.get("parameters", {}) if isinstance(data, dict) else None
    if not isinstance(parameters, dict) or set(parameters) - {"durationMs"}:
        shown = body[:200].decode(errors="replace")
        return error(
            400,
            "invalid-body",
            f'expected a body {{"parameters": {{"durationMs": n}}}} (durationMs optional), '
            f"got {shown}",
        )
    duration = parameters.get("durationMs", DURATION_MS_DEFAULT)
    if (
        not isinstance(duration, int)
        or isinstance(duration, bool)
        or not DURATION_MS_MIN <= duration <= DURATION_MS_MAX
    ):
        return error(
            400,
            "invalid-body",
            f"parameters.durationMs must be an integer from {DURATION_MS_MIN} to "
            f"{DURATION_MS_MAX}, got {duration!r}",
        )
    return duration
