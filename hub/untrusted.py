"""Text that came from a vehicle (or anyone on the gRPC port), made safe to echo.

Whatever a peer sends can be large and can hold anything: before it goes into
a gRPC status message, a log line or an audit row it is shortened with
`shorten`, so a 256 KiB "VIN" costs a few dozen bytes wherever it is repeated.
"""

from __future__ import annotations

import string

__all__ = ["ECHO_CHARS", "VIN_LENGTH", "echo_vin", "plausible_vin", "shorten"]

#: The most characters of a peer's text the hub repeats (status messages, logs, audit rows).
ECHO_CHARS = 64
#: A VIN's length (ISO 3779).
VIN_LENGTH = 17
_VIN_CHARS = frozenset(string.ascii_uppercase + string.digits)


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` quoted (repr: control characters escaped), cut to about `limit` characters.

    A cut text ends with a marker of its real length, e.g.
    `'AAAA…' (262144 characters)`, so a reader knows it was cut and by how much.
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def plausible_vin(vin: str) -> bool:
    """True when `vin` can be a VIN: 17 ASCII capital letters and digits.

    Looser than the registry's rule (which also refuses I, O and Q), so that
    no registered vehicle is refused by it; enough to refuse garbage before
    any lookup.
    """
    return len(vin) == VIN_LENGTH and all(c in _VIN_CHARS for c in vin)


def echo_vin(vin: str) -> str:
    """A claimed VIN to repeat: as it is when it can be a VIN, else `shorten`ed (quoted)."""
    return vin if plausible_vin(vin) else shorten(vin)
