"""Is the session of a verified access token live, and its user the token's? (cached)

A token signed with the real key proves that someone with the key minted it,
not that its session or user exist: `ActiveSessions.check` reads the session
and its user once (one query), remembers what it read for `recheck_s`, and
refuses the token unless the session exists and is not revoked, and its user
is the token's `sub`, enabled, and of the token's role. Revocations (logout,
password or role change, disabling: `SessionRevocations.forget`) drop the
entry at once; the re-read every `recheck_s` also catches a revocation this
node missed (a lost bus message). The command path pays a dictionary lookup.

If the database cannot answer, a session read before keeps its last answer
(logged) rather than every request failing with the outage; a session never
read is refused with the storage error (503).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from api.auth import InvalidToken, Principal
from storage import StorageError

log = structlog.get_logger("api.session_check")

#: Sessions remembered (least recently checked forgotten first).
MAX_SESSIONS = 4096


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the database says about a session and its user."""

    username: str
    role: str
    user_enabled: bool
    revoked: bool


#: Reads a session and its user (one query), or None when there is no such session.
Lookup = Callable[[uuid.UUID], Awaitable[SessionFacts | None]]


class ActiveSessions:
    """The `SessionCheck` of a node: sessions and users as last read, for `recheck_s`."""

    def __init__(
        self,
        lookup: Lookup,
        recheck_s: float,
        *,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self.recheck_s = recheck_s
        self._max_sessions = max_sessions
        self._clock = clock
        self._known: OrderedDict[uuid.UUID, tuple[SessionFacts | None, float]] = OrderedDict()
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._known)

    def forget(self, session_id: uuid.UUID) -> None:
        """Read `session_id` again on its next use (it was revoked, or its user changed)."""
        self._known.pop(session_id, None)

    async def check(self, principal: Principal) -> None:
        """Raise `InvalidToken` unless `principal`'s session is live and its user theirs.

        Cancellation: cancelled while reading the database, nothing is remembered.
        """
        session_id = principal.session_id
        if session_id is None:
            raise InvalidToken(
                "the access token names no session: log in again", code="token_without_session"
            )
        facts = await self._facts(session_id)
        if facts is None:
            raise InvalidToken(
                "the session of this access token does not exist on this hub: log in again",
                code="unknown_session",
            )
        if facts.username != principal.username:
            raise InvalidToken(
                f"the access token names user {principal.username!r}, but its session is "
                "another user's: log in again",
                code="unknown_session",
            )
        if facts.revoked:
            raise InvalidToken(
                "the session of this access token was revoked (logout, password or role "
                "change, disabled account, or a reused refresh token): log in again",
                code="session_revoked",
            )
        if not facts.user_enabled:
            raise InvalidToken(
                f"user {principal.username!r} is disabled: ask an admin", code="user_disabled"
            )
        if facts.role != principal.role.value:
            raise InvalidToken(
                f"the access token claims role {principal.role.value}, but user "
                f"{principal.username!r} is {facts.role}: log in again",
                code="role_mismatch",
            )

    async def _facts(self, session_id: uuid.UUID) -> SessionFacts | None:
        now = self._clock()
        known = self._known.get(session_id)
        if known is not None and known[1] > now:
            self._known.move_to_end(session_id)
            return known[0]
        try:
            self.lookups += 1
            facts = await self._lookup(session_id)
        except StorageError as exc:
            if known is None:
                raise
            log.warning("sessions.check_stale", session_id=str(session_id), error=str(exc))
            return known[0]
        self._known.pop(session_id, None)
        self._known[session_id] = (facts, now + self.recheck_s)
        while len(self._known) > self._max_sessions:
            self._known.popitem(last=False)
        return facts
