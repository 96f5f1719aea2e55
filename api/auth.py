"""Operator authentication: short-lived HS256 access tokens (joserfc) and role checks.

joserfc's `jwt.decode` checks the signature only; expiry and the required
claims are checked by a `JWTClaimsRegistry` as a second step. The algorithm is
pinned, so `alg: none` and other algorithms are refused.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
#: Verified tokens remembered (oldest forgotten first).
VERIFIED_CACHE_SIZE = 4096


class Role(enum.StrEnum):
    """Operator roles, each including the rights of the ones before it."""

    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        """True when this role has at least the rights of `other`."""
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated operator behind a request."""

    username: str
    role: Role


class InvalidToken(Exception):
    """The bearer token is missing, malformed, forged or expired; the text says which."""


class TokenIssuer:
    """Issues and verifies access tokens with one HS256 key."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._key = OctKey.import_key(secret.encode())
        self.ttl_s = ttl_s
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._claims = jwt.JWTClaimsRegistry(
            exp={"essential": True},
            sub={"essential": True},
            role={"essential": True, "values": [r.value for r in Role]},
        )

    def issue(self, principal: Principal) -> str:
        """A signed access token for `principal`, valid for `ttl_s` seconds."""
        now = int(time.time())
        claims = {
            "sub": principal.username,
            "role": principal.role.value,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises `InvalidToken` saying what is wrong.

        Verified tokens are remembered until they expire, so a script sending
        many requests with one token pays for the signature check once.
        """
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        principal, expires_at = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, expires_at)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"invalid access token: {exc.description or exc.error}") from exc
        except ValueError as exc:
            raise InvalidToken(f"invalid access token: {exc}") from exc
        claims = decoded.claims
        return Principal(str(claims["sub"]), Role(claims["role"])), float(claims["exp"])


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises `InvalidToken`."""
    if not header:
        raise InvalidToken("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization header must be 'Bearer <token>'")
    return token.strip()
