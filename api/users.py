"""Operator accounts (admin): list, create, read, change role or enabled, unlock.

Accounts are never deleted: they are disabled. Disabling or a role change
logs the user out everywhere at once; re-enabling, like `unlock`, lifts the
user's failed-login locks.
"""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from api import ratelimit
from api.access import client_address, current_principal, requires, user_agent
from api.auth import Role
from api.errors import ApiError
from api.openapi import errors, no_content
from api.passwords import WeakPassword, check_new_password
from api.schemas import NewUserIn, UserList, UserOut, UserPage, UserPatch
from api.state import state
from hub import JSON
from storage import LastAdminError, UnknownUserError, User, UserExistsError

users = Blueprint("users", __name__, url_prefix="/api/v1")

#: bcrypt hashes at most this many bytes of a password.
MAX_PASSWORD_BYTES = 72
#: Largest user id in a path (the column is a 32-bit integer); larger ones are 404.
_USER_ID = "<int(max=2147483647):user_id>"


@users.get("/users")
@requires(Role.ADMIN)
@validate_querystring(UserPage)
@validate_response(UserList)
async def list_users(query_args: UserPage) -> UserList:
    """Operator accounts ordered by id, a page at a time (`limit` 1-500, `offset`)."""
    users, total = await state().db.accounts.list_users(
        limit=query_args.limit, offset=query_args.offset
    )
    return UserList(
        items=[user_out(u) for u in users],
        total=total,
        limit=query_args.limit,
        offset=query_args.offset,
    )


@users.post("/users")
@errors(409)
@requires(Role.ADMIN)
@validate_request(NewUserIn)
@validate_response(UserOut, 201)
async def create_user(data: NewUserIn) -> tuple[UserOut, int, dict[str, str]]:
    """Create an operator account (409 `user_exists` if the name is taken); audited."""
    check_password_field("password", data.password, data.username)
    by = current_principal().username
    try:
        user = await state().db.accounts.add_user(data.username, data.password, data.role, by=by)
    except UserExistsError:
        raise ApiError(409, "user_exists", f"user {data.username} already exists") from None
    return user_out(user), 201, {"Location": f"/api/v1/users/{user.id}"}


@users.get(f"/users/{_USER_ID}")
@requires(Role.ADMIN)
@validate_response(UserOut)
async def get_user(user_id: int) -> UserOut:
    """One operator account."""
    user = await state().db.accounts.get_user_by_id(user_id)
    if user is None:
        raise _unknown_user(user_id)
    return user_out(user)


@users.patch(f"/users/{_USER_ID}")
@requires(Role.ADMIN)
@validate_request(UserPatch)
@validate_response(UserOut)
async def update_user(user_id: int, data: UserPatch) -> UserOut:
    """Change a user's `role` and/or `enabled`; audited `user.updated` with before and after.

    A role change or disabling logs the user out everywhere at once. 409
    `last_admin` for a change that would leave no enabled admin. Accounts
    are never deleted: disable them.
    """
    if data.role is None and data.enabled is None:
        message = "send role and/or enabled to change"
        raise ApiError(422, "validation_failed", message, details=[detail("body", message)])
    s = state()
    try:
        change = await s.db.accounts.update_user(
            user_id, role=data.role, enabled=data.enabled, by=current_principal().username
        )
    except UnknownUserError:
        raise _unknown_user(user_id) from None
    except LastAdminError as exc:
        raise ApiError(409, "last_admin", str(exc)) from None
    s.tokens.revocations.revoke_all(change.revoked_sessions)
    if change.after.enabled and not change.before.enabled:
        await ratelimit.unlock(change.after.username)  # a fresh start, as an unlock
    return user_out(change.after)


@users.post(f"/users/{_USER_ID}/unlock")
@no_content(204)
@requires(Role.ADMIN)
async def unlock_user(user_id: int) -> tuple[str, int]:
    """Lift every failed-login lock of a user (from every address); audited `user.unlocked`.

    204 with no body, also when nothing was locked; 404 `unknown_user`. Locks
    of an address (failures for many usernames) are not the user's: they stay.
    """
    s = state()
    user = await s.db.accounts.get_user_by_id(user_id)
    if user is None:
        raise _unknown_user(user_id)
    addresses = await ratelimit.unlock(user.username)
    details: dict[str, JSON] = {
        "addresses": addresses,
        "address": client_address(),
        "user_agent": user_agent(),
    }
    await s.db.audit.append_audit(
        actor=current_principal().username,
        action="user.unlocked",
        target=f"user:{user.username}",
        details=details,
    )
    return "", 204


def user_out(user: User) -> UserOut:
    """The API's view of an operator account."""
    return UserOut(
        id=user.id,
        username=user.username,
        role=Role(user.role).value,
        enabled=user.enabled,
        created_at=user.created_at,
    )


def _unknown_user(user_id: int) -> ApiError:
    return ApiError(404, "unknown_user", f"no user with id {user_id}")


def check_password_field(field: str, password: str, username: str) -> None:
    """Raise a 422 `ApiError` naming `field` unless `password` may be set for `username`:
    bcrypt's size (`validation_failed`), then the rules of `api.passwords` (`weak_password`)."""
    size = len(password.encode())
    if size > MAX_PASSWORD_BYTES:
        message = (
            f"{field} is {size} bytes of UTF-8; at most {MAX_PASSWORD_BYTES} are allowed: "
            "choose a shorter one"
        )
        raise ApiError(422, "validation_failed", message, details=[detail(field, message)])
    try:
        check_new_password(password, username, field)
    except WeakPassword as exc:
        raise ApiError(
            422, "weak_password", str(exc), details=[detail(field, str(exc), exc.rule)]
        ) from None


def detail(field: str, message: str, rule: str = "value_error") -> dict[str, JSON]:
    """One entry of an error's `details`."""
    return {"field": field, "rule": rule, "message": message}
