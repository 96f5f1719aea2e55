"""Who may do what: the bearer token of a request, its role, and ownership of commands."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from quart import g, request

from api.auth import InvalidToken, Principal, Role, bearer_token
from api.errors import ApiError
from api.state import state
from storage import CommandRow

P = ParamSpec("P")
T = TypeVar("T")


def authenticate(token: str) -> Principal:
    """The principal of an access token; raises a 401 `ApiError` saying what is wrong."""
    try:
        return state().tokens.verify(token)
    except InvalidToken as exc:
        raise ApiError(
            401, "unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


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
            principal = authenticate(token)
            if not principal.role.includes(role):
                raise ApiError(
                    403,
                    "forbidden",
                    f"role {role.value} or higher required; you are {principal.role.value}",
                )
            g.principal = principal
            return await handler(*args, **kwargs)

        return wrapper

    return decorate


def current_principal() -> Principal:
    """The principal `requires` authenticated for this request."""
    principal = g.principal
    assert isinstance(principal, Principal)
    return principal


def can_read_command(principal: Principal, command: CommandRow) -> bool:
    """Admins read every command; others only the ones they submitted."""
    return principal.role is Role.ADMIN or command.submitted_by == principal.username
