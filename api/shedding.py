"""Load shedding: a node answers at most `max_concurrent_requests` HTTP requests at once.

A request beyond the bound is answered at once with 503 `overloaded` and
`Retry-After`, before Quart sees it: no route runs, nothing is written, and
it costs the node little more than hypercorn's parsing of it. Without it, a
node offered more than it can do keeps every request (each a trio task
waiting for the CPU), answers all of them late, and the clients' timeouts
fire on commands it did accept (`python -m bench overload`, issue 13). With
it, what the node admits waits behind at most the bound (Little's law: the
bound over the node's rate), and a client told 503 may try another node.

The bound counts HTTP requests between their arrival in the application and
their answer; WebSockets (they have limits of their own), `/health/...` and
`/metrics` (a probe must answer under load) are not counted and never shed.
A refused request's body is read and dropped first (a command's arrives with
its headers) so that the connection stays usable; one still arriving after
`drain_timeout_s`, or larger than `max_drain_bytes`, gets `Connection: close`.
"""

from __future__ import annotations

import uuid

import orjson
import structlog
import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope
from werkzeug.datastructures import Headers

from api.security_headers import add_security_headers

log = structlog.get_logger("api.shedding")

#: Paths never counted nor shed (prefixes).
UNBOUNDED_PATHS = ("/health/", "/metrics")
#: A shed request is told to come back after this many seconds.
SHED_RETRY_AFTER_S = 1


class RequestShedding:
    """An ASGI wrapper that answers 503 beyond `limit` HTTP requests in flight."""

    def __init__(
        self, app: ASGIFramework, limit: int, max_drain_bytes: int, drain_timeout_s: float
    ) -> None:
        self._app = app
        self.limit = limit
        self._max_drain_bytes = max_drain_bytes
        self._drain_timeout_s = drain_timeout_s
        #: HTTP requests being answered now (of those counted).
        self.in_flight = 0
        #: Requests answered 503 because `limit` were in flight.
        self.shed = 0

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNBOUNDED_PATHS):
            await self._app(scope, receive, send)
        elif self.in_flight >= self.limit:
            self.shed += 1
            await self._refuse(scope["path"], receive, send)
        else:
            self.in_flight += 1
            try:
                await self._app(scope, receive, send)
            finally:
                self.in_flight -= 1

    async def _refuse(
        self, path: str, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        correlation_id = str(uuid.uuid4())
        message = (
            f"the node is answering {self.limit} requests (max_concurrent_requests): "
            f"nothing was done; try again in {SHED_RETRY_AFTER_S} s"
        )
        body = orjson.dumps(
            {"error": {"code": "overloaded", "message": message, "correlation_id": correlation_id}}
        )
        headers = Headers(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "Retry-After": str(SHED_RETRY_AFTER_S),
                "X-Request-ID": correlation_id,
            }
        )
        add_security_headers(headers, path)
        if not await self._drained(receive):
            headers["Connection"] = "close"
        log.debug("http.shed", path=path, in_flight=self.in_flight)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send(
            {"type": "http.response.start", "status": 503, "headers": raw, "trailers": False}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _drained(self, receive: ASGIReceiveCallable) -> bool:
        """Read and drop the request's body; whether it ended within the drain limits."""
        left = self._max_drain_bytes
        with trio.move_on_after(self._drain_timeout_s):
            while left >= 0:
                event = await receive()
                if event["type"] != "http.request":
                    return False  # the client went away
                left -= len(event.get("body", b""))
                if not event.get("more_body", False):
                    return left >= 0
        return False
