"""Which passwords an operator may set (NIST SP 800-63B, 3.1.1.2: length, a blocklist).

A new password (an admin creating a user, `sovd-hub user add`, the owner's
own change, the demo's password) is refused, with the rule it breaks, when:

- `password_too_short`: fewer than `MIN_PASSWORD_LENGTH` characters;
- `password_repetitive`: only whitespace, one character or a short group of up
  to 4 repeated (`aaaaaaaaaaaa`, `abababababab`), or a run of the alphabet, the
  digits or a keyboard row (`abcdefghijkl`, `123456789012`, `qwertyuiopas`);
- `password_contains_username`: the username, or containing it (case-insensitive;
  usernames of 3 characters or more, so that `ed` does not rule out `education`);
- `password_common`: one of the common passwords of `common_passwords.txt`,
  compared lowercased, with spaces removed, and also once trailing digits and
  punctuation are stripped (`Password1234!` is `password`).

Only new passwords are checked: existing users' passwords keep working.
"""

from __future__ import annotations

import functools
import string
from importlib import resources

from api.auth import MIN_PASSWORD_LENGTH
from api.errors import EdgeError

__all__ = ["MIN_PASSWORD_LENGTH", "WeakPassword", "check_new_password"]

#: Usernames shorter than this are refused only as the whole password, not as a part of it.
MIN_USERNAME_IN_PASSWORD = 3
_LONGEST_REPEATED_GROUP = 4
_TRAILING = string.digits + string.punctuation + string.whitespace
_RUNS = (
    string.ascii_lowercase,
    string.digits * 4,
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
)


class WeakPassword(EdgeError, ValueError):
    """A new password breaks a rule; `rule` names it, the text says what to change."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@functools.cache
def common_passwords() -> frozenset[str]:
    """The built-in list of common passwords, lowercased (read once)."""
    text = resources.files("api").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_new_password(password: str, username: str, field: str = "password") -> None:
    """Raise `WeakPassword` (naming `field` and the rule) unless `password` may be set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            "password_too_short",
            f"{field} has {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are "
            "required: a few unrelated words make a long one that is easy to remember",
        )
    lowered = password.lower()
    if not password.strip() or _repetitive(lowered):
        raise WeakPassword(
            "password_repetitive",
            f"{field} is only whitespace, repeated characters or a sequence "
            "(like aaaaaaaaaaaa, abcabcabcabc, 123456789012 or qwertyuiopas): choose one "
            "that is not",
        )
    name = username.lower()
    if lowered == name or (len(name) >= MIN_USERNAME_IN_PASSWORD and name in lowered):
        raise WeakPassword(
            "password_contains_username",
            f"{field} contains the username {username!r}: choose one without it",
        )
    if _common(lowered):
        raise WeakPassword(
            "password_common",
            f"{field} is one of the most common passwords (or one followed by digits or "
            "punctuation), which are guessed first: choose another",
        )


def _repetitive(lowered: str) -> bool:
    size = len(lowered)
    for group in range(1, _LONGEST_REPEATED_GROUP + 1):
        if (lowered[:group] * (size // group + 1))[:size] == lowered:
            return True
    return any(lowered in run or lowered in run[::-1] for run in _RUNS)


def _common(lowered: str) -> bool:
    common = common_passwords()
    for candidate in (lowered, "".join(lowered.split())):
        stripped = candidate.rstrip(_TRAILING)
        if candidate in common or stripped in common:
            return True
    return False
