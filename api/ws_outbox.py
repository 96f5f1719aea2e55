"""One WebSocket's bounded send queue: live frames never wait, replays are paced, lag ends it.

See `api.websocket` for the protocol. The queue holds `ws_buffer_messages`
frames. `put` queues without waiting, for live frames and replies: when the
queue is full the client is reading too slowly, and the connection ends
(`lagged`, close 1013) instead of anything upstream waiting for it. `put_paced`
waits while the queue is half full, for replays of stored events, so a long
replay neither lags a client that reads nor crowds out live frames.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import structlog
import trio

from api.ws_frames import Message

log = structlog.get_logger("api.websocket")

#: The client read too slowly for its send queue (RFC 6455 "Try Again Later").
CLOSE_LAGGED = 1013


def close_reason(text: str) -> str:
    """`text` cut to the 123 bytes a close frame's reason may hold."""
    return text.encode()[:123].decode(errors="ignore")


class Subscription:
    """One topic followed by a task; `next_seq` is where a command topic would resume."""

    __slots__ = ("next_seq", "scope")

    def __init__(self, next_seq: int | None) -> None:
        self.scope = trio.CancelScope()
        self.next_seq = next_seq


class Outbox:
    """The frames waiting to be written to one WebSocket, and how the connection ends.

    `subscriptions` is the connection's (topic -> Subscription): ending the
    connection cancels them, and `lagged` tells where each would resume.
    """

    def __init__(self, size: int, subscriptions: dict[str, Subscription], user: str) -> None:
        self.size = size
        self.subscriptions = subscriptions
        self.user = user
        self._send, self._queued = trio.open_memory_channel[Message](size)
        #: A replay waits while this many frames are queued (half the queue, at least one).
        self._replay_limit = max(1, size // 2)
        self._room: trio.Event | None = None  # set by the writer when a replay may go on
        #: Set once the connection is ending: close code, reason, last frame (if any).
        self.ending: tuple[int, str, Message | None] | None = None

    def put(self, frame: Message, subscription: Subscription | None = None) -> bool:
        """Queue `frame` without waiting; False if not queued (a full queue ends the socket)."""
        if subscription is not None and subscription.scope.cancel_called:
            return False  # unsubscribed: nothing of that topic after `unsubscribed`
        try:
            self._send.send_nowait(frame)
        except trio.WouldBlock:
            self._lagged()
            return False
        except trio.ClosedResourceError:
            return False  # the connection is ending
        return True

    async def put_paced(self, frame: Message, subscription: Subscription) -> bool:
        """Queue `frame` once the queue is less than half full (replays: the client paces them).

        False if not queued (unsubscribed or ending). Cancellation: nothing is queued.
        """
        while self._queued_count() >= self._replay_limit:
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()
        return self.put(frame, subscription)

    def _queued_count(self) -> int:
        return self._send.statistics().current_buffer_used

    def _lagged(self) -> None:
        resume: Message = {topic: sub.next_seq for topic, sub in self.subscriptions.items()}
        log.warning("websocket.lagged", user=self.user, queued=self.size)
        self.end(
            CLOSE_LAGGED,
            "lagged: read faster, then reconnect",
            {
                "type": "lagged",
                "message": f"you read too slowly: {self.size} frames were waiting "
                "(ws_buffer_messages); reconnect and subscribe again, command topics with "
                "from_seq from `resume`",
                "queued": self.size,
                "resume": resume,
            },
        )

    def end(self, code: int, reason: str, last: Message | None = None) -> None:
        """End the connection: send what is queued, then `last`, then close with `code`."""
        if self.ending is not None:
            return
        self.ending = (code, close_reason(reason), last)
        self._send.close()
        for subscription in self.subscriptions.values():
            subscription.scope.cancel()

    async def write_frames(
        self,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        """`send` the queued frames until the connection ends; then `close` it.

        Returns after `close`; a writer blocked by a client that does not read
        blocks only this connection.
        """
        async for frame in self._queued:
            await send(orjson.dumps(frame).decode())
            if self._room is not None and self._queued_count() < self._replay_limit:
                self._room.set()
                self._room = None
        assert self.ending is not None
        code, reason, last = self.ending
        if last is not None:
            await send(orjson.dumps(last).decode())
        await close(code, reason)
