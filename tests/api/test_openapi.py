"""The OpenAPI document describes exactly the API that runs, and the API keeps to it.

The schemathesis run sends generated requests (valid and invalid) to a live
node over real HTTP with an admin token, and checks that no answer is a 500
and that every answer's status, content type, headers and body are the ones
the document promises.
"""

from __future__ import annotations

import re
from typing import Any

import hypothesis
import requests
import schemathesis
import trio
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.app import SQLITE, app_rules
from tests.support.node import Node
from tests.support.websocket import new_id

#: Generated requests per operation and mode (valid / invalid): bounded, so the run stays short.
EXAMPLES = 12


async def _document(node: Node) -> dict[str, Any]:
    response = await node.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@SQLITE
async def test_document_is_openapi_3_1_with_every_route_and_nothing_else(node: Node) -> None:
    document = await _document(node)
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == app_rules()
    assert "/metrics" not in document["paths"]
    assert not any(path.startswith("/docs") for path in document["paths"])
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))


@SQLITE
async def test_document_says_which_operations_need_the_bearer_token(node: Node) -> None:
    document = await _document(node)
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    operations = {
        (path, method): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert operations[("/api/v1/auth/login", "post")]["security"] == []
    assert operations[("/health/ready", "get")]["security"] == []
    submit = operations[("/api/v1/commands", "post")]
    assert submit["security"] == [{"bearer": []}]
    assert submit["requestBody"]["required"] is True
    for status in ("401", "403", "413", "415", "422"):
        schema = submit["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    parameter = operations[("/api/v1/commands/{command_id}", "get")]["parameters"][0]
    assert parameter["schema"] == {"type": "string", "format": "uuid"}
    # What the document promises, the API does: no token, 401 in the envelope.
    response = await node.http.get(f"/api/v1/commands/{new_id()}")
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"code", "message", "correlation_id"}


@SQLITE
async def test_docs_are_served_by_the_app_itself(node: Node) -> None:
    page = await node.http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 3
    assert not any("//" in asset or asset.startswith("/") for asset in assets), assets
    kinds = set()
    for asset in assets:
        response = await node.http.get(f"/{asset}")
        assert response.status_code == 200, asset
        assert response.content, asset
        kinds.add(response.headers["content-type"].split(";")[0])
    assert {"text/javascript", "text/css"} <= kinds
    bundle = await node.http.get("/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    init = await node.http.get("/docs/init.js")
    assert '"openapi.json"' in init.text
    missing = await node.http.get("/docs/../pyproject.toml")
    assert missing.status_code == 404


def _fuzz(base_url: str, document: dict[str, Any], token: str) -> list[str]:
    """Run schemathesis over every operation; the failures found, as text."""
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {token}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the document is not usable: {result}"
            operation = result.ok()
            if operation.method.upper() == "POST" and operation.path == "/api/v1/auth/logout":
                continue  # it would end the admin's session for the rest of the run
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @hypothesis.settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: schemathesis.Case[Any]) -> None:
                    case.call_and_validate(
                        base_url=base_url,
                        session=session,
                        headers=headers,
                        checks=checks,
                        timeout=10,
                    )

                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE, operation.path  # no input to break
                except (FailureGroup, AssertionError) as exc:
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    return failures


@SQLITE
async def test_schemathesis_finds_no_error_and_no_answer_off_the_document(node: Node) -> None:
    document = await _document(node)
    token = await node.token("admin")
    base_url = str(node.http.base_url).rstrip("/")
    with trio.fail_after(120):
        failures = await trio.to_thread.run_sync(_fuzz, base_url, document, token)
    assert not failures, "\n\n".join(failures)
