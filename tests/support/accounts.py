"""Operator accounts over REST: log in, refresh, the bearer header, error codes, audit rows."""

from __future__ import annotations

from typing import Any

import httpx

from hub import AuditRecord
from tests.support.node import PASSWORD, Node


async def login(node: Node, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in (a new session); returns the token response."""
    response = await node.http.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=AGENT
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(node: Node, refresh_token: str) -> httpx.Response:
    return await node.http.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def me(node: Node, tokens: dict[str, Any]) -> httpx.Response:
    return await node.http.get("/api/v1/auth/me", headers=bearer(tokens))


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert "error" in body, f"expected an error, got {response.status_code} {body}"
    code: str = body["error"]["code"]
    return code


async def audit(node: Node, username: str, action: str) -> list[AuditRecord]:
    return [
        e for e in await node.db.audit.list_audit(target=f"user:{username}") if e.action == action
    ]


AGENT = {"User-Agent": "fleet-console/1.0"}
