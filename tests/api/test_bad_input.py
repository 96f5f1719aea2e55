"""Every bad input gets its status, a message naming the problem, and changes nothing."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.support.node import JWT_SECRET, VINS, Node

GOOD = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}


async def _nothing_written(node: Node) -> None:
    # Every stored command has its "command.submitted" audit event, in the same transaction.
    written = [
        a.action for a in await node.db.audit.list_audit() if a.action.startswith("command.")
    ]
    assert written == []


@pytest.mark.parametrize(
    ("body", "field", "rule", "message"),
    [
        ({**GOOD, "command": "Reboot"}, "command", "enum", "unknown command 'Reboot'"),
        (
            {**GOOD, "params": {"ecuAddress": "0x1"}},
            "params.ecuAddress",
            "pattern",
            "params.ecuAddress must match ^0x[0-9A-Fa-f]{2}$, got '0x1'",
        ),
        (
            {**GOOD, "params": {"ecuAddress": "0x10", "extra": 1}},
            "params.extra",
            "additionalProperties",
            "ReadDTC takes no parameter 'extra'",
        ),
        (
            {**GOOD, "params": {}},
            "params.ecuAddress",
            "required",
            "ReadDTC requires params.ecuAddress",
        ),
        (
            {**GOOD, "command": "ClearDTC", "params": {"ecuAddress": "0x10", "dtcCode": "p0420"}},
            "params.dtcCode",
            "pattern",
            "params.dtcCode must match ^P[0-9A-F]{4}$",
        ),
        (
            {**GOOD, "command": "ReadDataByID", "params": {"ecuAddress": "0x10", "dataId": "0x01"}},
            "params.dataId",
            "pattern",
            "params.dataId must match ^0x[0-9A-Fa-f]{4}$",
        ),
        (
            {**GOOD, "params": {"ecuAddress": "0x99"}},
            "params.ecuAddress",
            "enum",
            "params.ecuAddress 0x99 is not a known ECU",
        ),
        (
            {**GOOD, "vin": "TOO-SHORT"},
            "vin",
            "string_pattern_mismatch",
            "vin: String should match",
        ),
        ({**GOOD, "surprise": True}, "surprise", "extra_forbidden", "surprise: Extra inputs"),
        ({"vin": VINS[0], "params": {}}, "command", "missing", "command: Field required"),
        ({**GOOD, "timeout_s": 9999}, "timeout_s", "maximum", "timeout_s must be at most 600"),
        (
            {**GOOD, "timeout_s": -1},
            "timeout_s",
            "greater_than",
            "timeout_s: Input should be greater",
        ),
    ],
)
async def test_bad_command_is_422_naming_field_and_rule(
    node: Node, body: dict[str, object], field: str, rule: str, message: str
) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.http.post("/api/v1/commands", json=body, headers=await node.headers())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert message in error["message"]
    assert {"field": field, "rule": rule} == {k: error["details"][0][k] for k in ("field", "rule")}
    assert error["correlation_id"] == response.headers["X-Request-ID"]
    await _nothing_written(node)


async def test_malformed_json_is_400(node: Node) -> None:
    response = await node.http.post(
        "/api/v1/commands",
        content=b"{not json",
        headers={**await node.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("malformed_request", "validation_failed")
    await _nothing_written(node)


async def test_unknown_vin_is_404(node: Node) -> None:
    response = await node.submit("WVWZZZ1JZXW999999", "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "unknown_vehicle",
        "message": "no vehicle with VIN WVWZZZ1JZXW999999 is registered",
        "correlation_id": response.headers["X-Request-ID"],
    }
    await _nothing_written(node)


async def test_offline_vehicle_is_409(node: Node) -> None:
    response = await node.submit(VINS[2], "ReadDTC", {"ecuAddress": "0x10"})
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"vehicle {VINS[2]} is not connected; send ttl_s to let the command wait for it"
    )
    await _nothing_written(node)


def _token(claims: dict[str, object], key: str = JWT_SECRET) -> str:
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(key.encode()))


def _unsigned(claims: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(orjson.dumps({'alg': 'none', 'typ': 'JWT'}))}.{b64(orjson.dumps(claims))}."


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "engineer", "role": "engineer", "iat": now, "exp": now + 60, **changes}


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing Authorization header"),
        ("Basic abc", "Authorization header must be 'Bearer <token>'"),
        ("Bearer not-a-jwt", "invalid access token"),
        (f"Bearer {_token(_claims(exp=int(time.time()) - 10))}", "expired"),
        (f"Bearer {_token(_claims(), key='another-key-' + 'y' * 40)}", "bad_signature"),
        (f"Bearer {_unsigned(_claims())}", "'none' is not allowed"),
    ],
    ids=["missing", "not-bearer", "garbage", "expired", "wrong-key", "alg-none"],
)
async def test_bad_token_is_401(node: Node, authorization: str | None, message: str) -> None:
    await node.connect_vehicle(VINS[0])
    headers = {"Authorization": authorization} if authorization else {}
    response = await node.http.post("/api/v1/commands", json=GOOD, headers=headers)
    assert response.status_code == 401, response.text
    assert message in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    await _nothing_written(node)


async def test_viewer_cannot_submit_403(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.http.post(
        "/api/v1/commands", json=GOOD, headers=await node.headers("viewer")
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "role engineer or higher required; you are viewer"
    await _nothing_written(node)


async def test_wrong_password_is_401(node: Node) -> None:
    response = await node.http.post(
        "/api/v1/auth/login", json={"username": "engineer", "password": "nope-nope"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_request_id_is_echoed_and_generated(node: Node) -> None:
    given = await node.http.get("/api/v1/vehicles", headers={"X-Request-ID": "trace-42"})
    assert given.status_code == 401
    assert given.headers["X-Request-ID"] == "trace-42"
    assert given.json()["error"]["correlation_id"] == "trace-42"
    generated = await node.http.get("/health/live")
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_another_engineers_command_is_invisible(node: Node) -> None:
    await node.connect_vehicle(VINS[0])
    response = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"})
    command_id = response.json()["id"]
    other = await node.http.get(
        f"/api/v1/commands/{command_id}", headers=await node.headers("other")
    )
    assert other.status_code == 404
    admin = await node.http.get(
        f"/api/v1/commands/{command_id}", headers=await node.headers("admin")
    )
    assert admin.status_code == 200
