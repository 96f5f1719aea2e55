"""What one operator WebSocket may ask of the hub: its message rate and its subscriptions (sans-IO).

Every client message (after `auth`) takes a token from the socket's bucket
(`ws_message_burst` tokens, refilled at `ws_messages_per_s`). A message that
finds none is refused without being read further: the first of a run with a
`rate_limited` error frame, the others silently, so a client that does not
read cannot fill its own queue with refusals. Each refusal also counts
against the socket's patience, which forgives one refusal a second: when
`ws_message_burst` refusals are unforgiven, the client keeps flooding and the
socket is closed with `CLOSE_FLOODING` (4429). A flood is therefore closed
after at most twice the burst, before it costs the hub more than the burst's
work. Time is the caller's (`trio.current_time()`), so tests can drive it.
"""

from __future__ import annotations

import enum

from api.ws_frames import ClientError

#: A client that kept sending faster than `ws_messages_per_s` (like HTTP 429; 4401 is like 401).
CLOSE_FLOODING = 4429
#: Refusals forgiven per second (a client that slowed down is not closed for an old burst).
FORGIVEN_PER_S = 1.0


class Verdict(enum.Enum):
    """What to do with one client message."""

    ACT = "act"  # within the rate: act on it
    REFUSE_AND_TELL = "refuse_and_tell"  # the first refusal of a run: answer `rate_limited`
    REFUSE = "refuse"  # refused again: drop it, say nothing (the client was told)
    CLOSE = "close"  # the client keeps flooding: close with CLOSE_FLOODING


class MessageBudget:
    """One socket's token bucket of client messages, and its patience with refusals."""

    __slots__ = ("_at", "_burst", "_rate_per_s", "_refusals", "_tokens")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._tokens = float(burst)
        self._refusals = 0.0
        self._at = now

    def take(self, now: float) -> Verdict:
        """The verdict on a message arriving at `now`; takes its token if it has one."""
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate_per_s)
        self._refusals = max(0.0, self._refusals - elapsed * FORGIVEN_PER_S)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict.ACT
        first = self._refusals == 0.0  # all earlier refusals forgiven: a new run
        self._refusals += 1.0
        if self._refusals >= self._burst:
            return Verdict.CLOSE
        return Verdict.REFUSE_AND_TELL if first else Verdict.REFUSE

    def refusal(self) -> ClientError:
        """The `rate_limited` error of a refused message."""
        return ClientError(
            "rate_limited",
            f"more than {self._rate_per_s:g} messages per second (ws_messages_per_s, "
            f"{self._burst} at once: ws_message_burst): this one and the next are dropped until "
            f"you slow down; keep on and the connection closes with {CLOSE_FLOODING}",
        )

    def close_reason(self) -> str:
        """The reason of the CLOSE_FLOODING close (fits a close frame's 123 bytes)."""
        return f"more than {self._rate_per_s:g} messages per second (ws_messages_per_s): slow down"


def check_subscription_room(subscribed: int, limit: int, topic: str) -> None:
    """Raise `too_many_subscriptions` if a socket following `subscribed` topics is at `limit`."""
    if subscribed >= limit:
        raise ClientError(
            "too_many_subscriptions",
            f"this connection already follows {subscribed} topics, the most allowed "
            f"(ws_max_subscriptions): unsubscribe from one first, or open another connection",
            topic,
        )
