"""Operator authentication: access tokens (HS256 JWT), refresh tokens, revoked sessions, roles.

joserfc's `jwt.decode` checks the signature only; expiry and the required
claims are checked by a `JWTClaimsRegistry` as a second step. The algorithm is
pinned, so `alg: none` and other algorithms are refused.

An access token must carry our issuer (`iss`, `jwt_issuer`) and audience
(`aud`, `jwt_audience`), live no longer than `access_token_ttl_s` (plus
`CLOCK_SKEW_S`) from its `iat`, and name its session (`sid`), so a token
signed with the real key but minted elsewhere (a 100-year expiry, no session,
another service's audience) is refused. `authenticate` also checks, through
`api.session_check.ActiveSessions`, that the session exists, is not revoked,
and belongs to the token's user, enabled and still of the token's role: one
database read per session per `session_recheck_s`, not per request.

A session is revoked in the database (logout, a reused refresh token, a
disabled user...) and, at once, in this node's `SessionRevocations`, which
every verification consults, cached or not: a dictionary lookup, so the
command hot path stays cheap.

A refresh token is opaque: `<session id>.<generation>.<nonce>.<mac>`. The
MAC (HMAC-SHA256 under a key derived from the JWT secret) proves we issued
it, so an old generation presented again is known to be a real, reused
token (revoke the session), not a guess at a session id (ignore it).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from api.errors import EdgeError

ALGORITHM = "HS256"
#: Verified tokens remembered (oldest forgotten first).
VERIFIED_CACHE_SIZE = 4096
#: Operators' passwords set over the API are at least this long.
MIN_PASSWORD_LENGTH = 12
#: Revocations are kept this much longer than an access token lives (clock skew).
REVOCATION_MARGIN_S = 60.0
#: Clocks of the nodes may differ by this much: an `iat` this far ahead, and an access token
#: living this much longer than `access_token_ttl_s`, are still accepted.
CLOCK_SKEW_S = 60
_REFRESH_KEY_LABEL = b"sovd-hub refresh token v1"


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
    """The authenticated operator behind a request, and the session of their token."""

    username: str
    role: Role
    session_id: uuid.UUID | None = None


class InvalidToken(EdgeError):
    """The token is missing, malformed, forged, expired or revoked; the text says which.

    `code` is the error code the API answers with.
    """

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


class SessionRevocations:
    """The sessions revoked recently, as this node knows them.

    A session id is kept `retention_s` after its revocation (an access
    token's lifetime plus a margin): by then every access token naming it
    has expired. Seeded from the database at start (`load`), updated on
    every revocation made on this node (`revoke`, which also tells `announce`,
    set by the node to publish it on the bus) and every one other nodes
    announce (`learn`, fed by `follow_revocations`).
    """

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self._revoked: dict[uuid.UUID, float] = {}  # oldest revocation first
        #: Called with each revocation made here (the node publishes it to the other nodes).
        self.announce: Callable[[uuid.UUID, float], None] | None = None
        #: Called with each session revoked, here or elsewhere (drops cached session checks).
        self.forget: Callable[[uuid.UUID], None] | None = None

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._revoked

    def __len__(self) -> int:
        return len(self._revoked)

    def revoke(self, session_id: uuid.UUID, at: float | None = None) -> None:
        """Refuse access tokens of `session_id` from now on (`at`: epoch seconds, default now)."""
        now = time.time()
        self._revoked.pop(session_id, None)
        self._revoked[session_id] = now if at is None else at
        self._forget_before(now - self.retention_s)
        if self.forget is not None:
            self.forget(session_id)
        if self.announce is not None:
            self.announce(session_id, self._revoked.get(session_id, now))

    def learn(self, session_id: uuid.UUID, at: float) -> None:
        """Add a revocation another node made (`at`: epoch seconds); not announced again."""
        if session_id not in self._revoked:
            self.load([(session_id, at)])
            if self.forget is not None:
                self.forget(session_id)

    def revoke_all(self, session_ids: Iterable[uuid.UUID]) -> None:
        """`revoke` each of `session_ids`, now."""
        for session_id in session_ids:
            self.revoke(session_id)

    def load(self, revoked: Iterable[tuple[uuid.UUID, float]]) -> None:
        """Add revocations read from the database, `(session id, epoch seconds)`."""
        for session_id, at in sorted(revoked, key=lambda item: item[1]):
            self._revoked.setdefault(session_id, at)
        self._forget_before(time.time() - self.retention_s)

    def _forget_before(self, horizon: float) -> None:
        while self._revoked:
            oldest, at = next(iter(self._revoked.items()))
            if at >= horizon:
                return
            del self._revoked[oldest]


class _Claims(jwt.JWTClaimsRegistry):
    """joserfc's checks, but `iat` is checked by `TokenIssuer` (with clock skew, a message)."""

    def validate_iat(self, value: object) -> None:
        """Checked by `TokenIssuer._verify`."""


class SessionCheck(Protocol):
    """Checks that a verified token's session and user are live (`api.session_check`)."""

    def check(self, principal: Principal) -> Awaitable[None]:
        """Raise `InvalidToken` unless `principal`'s session exists and is active."""


class TokenIssuer:
    """Issues and verifies access tokens with one HS256 key, and refresh tokens with another.

    With `sessions` set (the node sets it), `authenticate` also checks the
    token's session and user in the database (cached).
    """

    def __init__(
        self,
        secret: str,
        ttl_s: int,
        *,
        issuer: str = "sovd-hub",
        audience: str = "sovd-hub-api",
    ) -> None:
        self._key = OctKey.import_key(secret.encode())
        self._refresh_key = hmac.new(secret.encode(), _REFRESH_KEY_LABEL, hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self.issuer = issuer
        self.audience = audience
        self.revocations = SessionRevocations(ttl_s + REVOCATION_MARGIN_S)
        self.sessions: SessionCheck | None = None
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._claims = _Claims(
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            role={"essential": True, "values": [r.value for r in Role]},
        )

    def issue(self, principal: Principal) -> str:
        """A signed access token for `principal` (and its session), valid for `ttl_s` seconds."""
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.username,
            "role": principal.role.value,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        if principal.session_id is not None:
            claims["sid"] = str(principal.session_id)
        return jwt.encode({"alg": ALGORITHM}, claims, self._key)

    async def authenticate(self, token: str) -> Principal:
        """`verify`, then (with `sessions` set) check the session and its user; raises
        `InvalidToken` saying what is wrong.

        Cancellation: only a session not checked within `session_recheck_s` waits (for one
        database read); cancelling it leaves nothing behind.
        """
        principal = self.verify(token)
        if self.sessions is not None:
            await self.sessions.check(principal)
        return principal

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises `InvalidToken` saying what is wrong.

        Verified tokens are remembered until they expire, so a script sending
        many requests with one token pays for the signature check once; the
        revocation of its session is checked every time.
        """
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            principal = cached[0]
        else:
            principal, expires_at = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))  # the oldest entry
            self._verified[token] = (principal, expires_at)
        if principal.session_id is not None and principal.session_id in self.revocations:
            raise InvalidToken(
                "the session of this access token was revoked (logout, password or role "
                "change, or a reused refresh token): log in again",
                code="session_revoked",
            )
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
        self._check_origin(claims)
        self._check_lifetime(claims)
        sid = claims.get("sid")
        try:
            session_id = uuid.UUID(sid) if isinstance(sid, str) else None
        except ValueError:
            session_id = None
        if session_id is None:
            raise InvalidToken(
                f"the access token names no session (sid is {sid!r}), so it could never be "
                "revoked: log in for a token this hub issued",
                code="token_without_session",
            )
        principal = Principal(str(claims["sub"]), Role(claims["role"]), session_id)
        return principal, float(claims["exp"])

    def _check_origin(self, claims: dict[str, object]) -> None:
        issuer, audience = claims.get("iss"), claims.get("aud")
        if issuer != self.issuer:
            raise InvalidToken(
                f"the access token's issuer (iss) is {issuer!r}, expected {self.issuer!r} "
                "(jwt_issuer): use a token this hub issued (log in again)",
                code="invalid_token_issuer",
            )
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise InvalidToken(
                f"the access token's audience (aud) is {audience!r}, expected "
                f"{self.audience!r} (jwt_audience): it was issued for another service; log "
                "in to this hub for a token of its own",
                code="invalid_token_audience",
            )

    def _check_lifetime(self, claims: dict[str, object]) -> None:
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not (
            isinstance(issued_at, int | float)
            and not isinstance(issued_at, bool)
            and math.isfinite(issued_at)
        ):
            raise InvalidToken(
                f"invalid access token: iat must be a NumericDate, got {issued_at!r}"
            )
        if issued_at > time.time() + CLOCK_SKEW_S:
            raise InvalidToken(
                "invalid access token: it was issued (iat) in the future; check the clocks "
                "of the hub's nodes"
            )
        assert isinstance(expires_at, int | float)  # checked by the claims registry
        if expires_at - issued_at > self.ttl_s + CLOCK_SKEW_S:
            raise InvalidToken(
                f"the access token lives {expires_at - issued_at:.0f} s from iat to exp; this "
                f"hub issues them for {self.ttl_s} s (access_token_ttl_s): log in for a token "
                "this hub issued",
                code="token_lifetime_too_long",
            )

    def issue_refresh(self, session_id: uuid.UUID, generation: int) -> str:
        """A new refresh token of `session_id` at `generation` (random: never issued twice)."""
        body = f"{session_id.hex}.{generation}.{secrets.token_urlsafe(24)}"
        return f"{body}.{self._mac(body)}"

    def parse_refresh(self, token: str) -> tuple[uuid.UUID, int]:
        """The session and generation of a refresh token we issued; else `InvalidToken`."""
        body, _, mac = token.rpartition(".")
        parts = body.split(".")
        if len(parts) == 3 and hmac.compare_digest(mac, self._mac(body)):
            try:
                session_id, generation = uuid.UUID(hex=parts[0]), int(parts[1])
            except ValueError:
                pass
            else:
                if generation >= 0:
                    return session_id, generation
        raise InvalidToken(
            "the refresh token is not one this hub issued (or is damaged): log in again",
            code="invalid_refresh_token",
        )

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._refresh_key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def refresh_hash(token: str) -> str:
    """What the database keeps of a refresh token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises `InvalidToken`."""
    if not header:
        raise InvalidToken("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization header must be 'Bearer <token>'")
    return token.strip()
