"""Access tokens: issue, verify, the verified-token cache and its expiry."""

from __future__ import annotations

import time
import uuid

import pytest

from api import auth
from api.auth import InvalidToken, Principal, Role, TokenIssuer

SECRET = "s" * 40


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer(SECRET, ttl_s=60)
    eve = Principal("eve", Role.ENGINEER, uuid.uuid4())
    token = issuer.issue(eve)
    assert issuer.verify(token) == eve
    assert issuer.verify(token) == eve  # from the cache
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    issuer = TokenIssuer(SECRET, ttl_s=60)
    tokens = [issuer.issue(Principal(f"user{n}", Role.VIEWER, uuid.uuid4())) for n in range(5)]
    for token in tokens:
        issuer.verify(token)
    assert list(issuer._verified) == tokens[2:]


def test_a_forged_token_is_never_cached() -> None:
    issuer = TokenIssuer(SECRET, ttl_s=60)
    forged = TokenIssuer("f" * 40, ttl_s=60).issue(Principal("mallory", Role.ADMIN, uuid.uuid4()))
    for _ in range(2):
        with pytest.raises(InvalidToken, match="bad_signature"):
            issuer.verify(forged)
    assert issuer._verified == {}
