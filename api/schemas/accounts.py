"""REST bodies of logins, sessions and users (`api.accounts`, `api.users`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from api.auth import MIN_PASSWORD_LENGTH
from api.schemas.common import Strict


class LoginRequest(Strict):
    # No control characters: Postgres refuses NUL in text, and they are nobody's name.
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str = Field(description="send as 'Authorization: Bearer <access_token>'")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(
        description="POST it to /api/v1/auth/refresh for new tokens; each works once"
    )
    refresh_expires_in: int = Field(description="seconds the refresh token is valid if unused")
    session_id: uuid.UUID


#: Usernames given over the API: letters, digits and . _ @ -, starting with a letter or digit.
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
RoleName = Literal["viewer", "engineer", "admin"]


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=256,
        description=f"at least {MIN_PASSWORD_LENGTH} characters, at most 72 bytes of UTF-8",
    )


class PasswordChanged(BaseModel):
    sessions_revoked: int = Field(description="your other sessions, now logged out")


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime = Field(description="when the refresh token expires if unused")
    address: str | None
    user_agent: str | None


class UserOut(BaseModel):
    id: int
    username: str
    role: RoleName
    enabled: bool
    created_at: datetime


class MeOut(UserOut):
    session: SessionOut


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserPage(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class NewUserIn(Strict):
    username: str = Field(
        pattern=USERNAME_PATTERN,
        description="1-64 letters, digits and . _ @ -, starting with a letter or digit",
    )
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=256,
        description=f"at least {MIN_PASSWORD_LENGTH} characters, at most 72 bytes of UTF-8",
    )
    role: RoleName


class UserPatch(Strict):
    role: RoleName | None = None
    enabled: bool | None = Field(
        default=None, description="false logs the user out everywhere and refuses their logins"
    )
