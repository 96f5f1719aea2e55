"""Who may do what: the bearer token of a request, its role, ownership of commands, and
where a request came from (client address, user agent)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import structlog
from quart import g, request

from api.auth import InvalidToken, Principal, Role, bearer_token
from api.errors import ApiError
from api.openapi import REQUIRED_ROLE_ATTRIBUTE
from api.state import state
from hub import Command

P = ParamSpec("P")
T = TypeVar("T")


async def authenticate(token: str) -> Principal:
    """The principal of an access token whose session and user are live; raises a 401
    `ApiError` saying what is wrong."""
    try:
        return await state().tokens.authenticate(token)
    except InvalidToken as exc:
        raise ApiError(401, exc.code, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def requires(role: Role) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a route: 401 without a valid token, 403 below `role`; sets `g.principal`.

    Put it above `validate_request` so that authorization is checked first.
    """

    def decorate(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(handler)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                token = bearer_token(request.headers.get("Authorization"))
            except InvalidToken as exc:
                raise ApiError(
                    401, "unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"}
                ) from None
            principal = await authenticate(token)
            if not principal.role.includes(role):
                raise ApiError(
                    403,
                    "forbidden",
                    f"role {role.value} or higher required; you are {principal.role.value}",
                )
            g.principal = principal
            structlog.contextvars.bind_contextvars(user=principal.username)  # on every log line
            return await handler(*args, **kwargs)

        setattr(wrapper, REQUIRED_ROLE_ATTRIBUTE, role)  # the OpenAPI document: bearer, 401/403
        return wrapper

    return decorate


def current_principal() -> Principal:
    """The principal `requires` authenticated for this request."""
    principal = g.principal
    assert isinstance(principal, Principal)
    return principal


def can_read_command(principal: Principal, command: Command) -> bool:
    """Admins read every command; others only the ones they submitted."""
    return principal.role is Role.ADMIN or command.submitted_by == principal.username


#: Longest address and user agent kept (the `sessions` columns' sizes).
_MAX_ADDRESS = 64
_MAX_USER_AGENT = 256


def client_address() -> str:
    """The client's IP address: the peer of the TCP connection.

    Behind reverse proxies (`forwarded_for_hops` > 0), the entry of
    `X-Forwarded-For` that the outermost trusted proxy added, counted from
    the right (the client can forge every entry left of it); when the header
    has fewer entries, the peer. With the default 0 the header is ignored.
    """
    client = request.scope.get("client")
    address = str(client[0]) if client else "unknown"
    hops = state().config.forwarded_for_hops
    if hops:
        forwarded = [
            part.strip()
            for header in request.headers.getlist("X-Forwarded-For")
            for part in header.split(",")
        ]
        if len(forwarded) >= hops and forwarded[-hops]:
            address = forwarded[-hops]
    return address[:_MAX_ADDRESS]


def user_agent() -> str | None:
    """The request's `User-Agent` (truncated), or None."""
    agent = request.headers.get("User-Agent")
    return agent[:_MAX_USER_AGENT] if agent else None
