"""Oversized request bodies: answer 413, and leave the connection in a state the client expects.

Quart stops storing a body once it is over `max_body_bytes` and the 413 can
be sent while the client is still sending the rest. hypercorn (h11) then
finds the request unfinished when the answer is done and closes the
connection, without having said `Connection: close`: a client that reuses
it (keep-alive, as every HTTP client does) fails its next request.

So `DiscardingBody` keeps counting what arrives past the limit (storing
none of it) and knows when the request really ended; before the 413 goes
out, `finish_oversized_body` waits for that end, discarding up to
`max_drain_bytes` more for up to `drain_timeout_s`. If the end came, the
connection stays usable; if not, the 413 says `Connection: close` and
hypercorn closes it after the answer.

That close used to be lost: hypercorn closes the socket from inside the
application's last `send`, and Quart-Trio cancels the application as soon
as hypercorn reports the stream closed, which happens in that same call,
before the socket is. `ShieldedEndConnection` shields that last send (the
socket writes in it are shielded by hypercorn already), so the close happens
and a client reading to the end of the stream is not left waiting.
"""

from __future__ import annotations

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart import Response
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest


class DiscardingBody(TrioBody):
    """Quart-Trio's body, which past its limit drops data but still sees the request's end."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        #: Bytes received and dropped because the body was over the limit.
        self.discarded_bytes = 0
        #: The client finished sending the request (its end of message arrived).
        self.ended = False
        self._appending = False
        self._max_discard_bytes: int | None = None
        self._changed = trio.Event()

    @property
    def oversized(self) -> bool:
        """The body is over `max_content_length` (declared or received): reading it is a 413."""
        return self._must_raise is not None

    def append(self, data: bytes) -> None:
        """Store `data`, or count and drop it once the body is over the limit."""
        if self._must_raise is not None:
            self.discarded_bytes += len(data)
            self._wake()
            return
        self._appending = True
        try:
            super().append(data)  # over the limit: sets _must_raise and calls set_complete()
        finally:
            self._appending = False
        if self._must_raise is not None:
            self.discarded_bytes += len(self._data)
            self._data.clear()

    def set_complete(self) -> None:
        """The body is complete (for readers); the request's end when the ASGI layer says so."""
        super().set_complete()
        if not self._appending:
            self.ended = True
            self._wake()

    async def wait_ended(self, max_discard_bytes: int) -> bool:
        """Wait for the request's end, dropping what comes; False once more than
        `max_discard_bytes` were dropped first. Cancellation: stops waiting, nothing else."""
        self._max_discard_bytes = max_discard_bytes
        while not self.ended and self.discarded_bytes <= max_discard_bytes:
            await self._changed.wait()
            self._changed = trio.Event()
        return self.ended

    def _wake(self) -> None:
        if self.ended or (
            self._max_discard_bytes is not None and self.discarded_bytes > self._max_discard_bytes
        ):
            self._changed.set()


class DiscardingRequest(TrioRequest):
    """Quart-Trio's request with a `DiscardingBody`."""

    body_class = DiscardingBody


async def finish_oversized_body(
    body: object, response: Response, max_drain_bytes: int, drain_timeout_s: float
) -> None:
    """Before answering a request whose body was over the limit, let the client finish it.

    Waits (at most `drain_timeout_s`, dropping at most `max_drain_bytes`) for
    the rest of the body, so the connection can carry the client's next
    request; otherwise sets `Connection: close` on `response`.
    """
    if not isinstance(body, DiscardingBody) or not body.oversized or body.ended:
        return
    ended = False
    with trio.move_on_after(drain_timeout_s):
        ended = await body.wait_ended(max_drain_bytes)
    if not ended:
        response.headers["Connection"] = "close"


class ShieldedEndConnection(TrioASGIHTTPConnection):
    """Quart-Trio's HTTP connection whose last `send` (the end of the answer) is shielded."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Serve one request; cancellation: as Quart-Trio's, once the answer has ended."""

        async def send_end_shielded(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().__call__(receive, send_end_shielded)
