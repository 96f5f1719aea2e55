"""Vehicle tokens: issued once, stored only as a hash, checked in constant time.

Vehicle tokens are 256-bit random secrets, not passwords, so a fast SHA-256
hash is as safe as bcrypt for them and lets a whole fleet reconnect at once
(bcrypt would cost ~0.2 s of CPU per vehicle).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_vehicle_token() -> str:
    """A fresh random vehicle token (shown to the admin once, never stored)."""
    return secrets.token_urlsafe(32)


def hash_vehicle_token(token: str) -> str:
    """The hex SHA-256 of `token`, as stored in `vehicles.token_hash`."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify_vehicle_token(token: str, token_hash: str) -> bool:
    """True when `token` hashes to `token_hash` (constant-time comparison)."""
    return hmac.compare_digest(hash_vehicle_token(token), token_hash)
