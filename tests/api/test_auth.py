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


def test_bad_issuer_audience_and_recheck_settings_are_refused_naming_them() -> None:
    from api.config import ApiConfig
    from hub import ConfigError, load_config

    environ = {"SOVD_HUB_JWT_SECRET": SECRET, "SOVD_HUB_JWT_ISSUER": " sovd-hub"}
    with pytest.raises(ConfigError) as caught:
        load_config(ApiConfig, environ=environ)
    assert str(caught.value) == (
        "jwt_issuer (SOVD_HUB_JWT_ISSUER) must be 1-200 printable characters without leading "
        "or trailing spaces, such as 'sovd-hub', got ' sovd-hub'"
    )
    with pytest.raises(ConfigError, match=r"jwt_audience \(SOVD_HUB_JWT_AUDIENCE\) must be"):
        ApiConfig(jwt_secret=SECRET, jwt_audience="")
    with pytest.raises(ConfigError, match="session_recheck_s must be a finite number greater"):
        ApiConfig(jwt_secret=SECRET, session_recheck_s=0)
