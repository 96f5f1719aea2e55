"""A minimal HTTP/1.1 client for the load generators: keep-alive connections, requests built
as bytes, answers read by `Content-Length`.

httpx spent about 4.5 ms of CPU per offered command in `bench overload` at
400/s (its pool scans every waiting request whenever a connection frees),
more than the hub it measured, so the generators starved the hub of the
machine's two cores. This client does only what the bench needs: a bounded
pool of connections (`connections`, waiters queued in a trio semaphore), a
request sent whole, the status line and headers parsed, the body read. A
connection the server closes, or a request cut short (a timeout), is
dropped and a new one opened for the next request; so is one idle for
`MAX_IDLE_S`, before the server's keep-alive timeout (hypercorn's: 5 s) can
close it under a request.
"""

from __future__ import annotations

import trio

__all__ = ["HttpPool", "HttpTransportError", "request_bytes"]

#: An idle connection older than this is closed rather than used.
MAX_IDLE_S = 2.0


class HttpTransportError(Exception):
    """The connection failed or closed before a whole answer arrived."""


def request_bytes(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, ready to send."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpPool:
    """At most `connections` keep-alive connections to one server."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self._host = host
        self._port = port
        self._slots = trio.Semaphore(connections)
        self._idle: list[tuple[_Connection, float]] = []  # with when each went idle

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send `raw` (from `request_bytes`); the answer's status and body."""
        async with self._slots:
            connection = await self._take()
            try:
                status, body, keep = await connection.exchange(raw)
            except BaseException:
                await trio.aclose_forcefully(connection.stream)
                raise
            if keep:
                self._idle.append((connection, trio.current_time()))
            else:
                await trio.aclose_forcefully(connection.stream)
            return status, body

    async def aclose(self) -> None:
        """Close the idle connections."""
        for connection, _ in self._idle:
            await trio.aclose_forcefully(connection.stream)
        self._idle.clear()

    async def _take(self) -> _Connection:
        while self._idle:
            connection, since = self._idle.pop()
            if trio.current_time() - since < MAX_IDLE_S:
                return connection
            await trio.aclose_forcefully(connection.stream)
        try:
            return _Connection(await trio.open_tcp_stream(self._host, self._port))
        except OSError as exc:
            raise HttpTransportError(f"cannot connect: {exc}") from exc


class _Connection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send one request; (status, body, whether the connection stays usable)."""
        try:
            await self.stream.send_all(raw)
            head = await self._read_head()
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(_header(line) for line in header_lines)
            if "content-length" not in headers:
                raise HttpTransportError(f"an answer without Content-Length: {status_line}")
            body = await self._read_exactly(int(headers["content-length"]))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise HttpTransportError(str(exc)) from exc
        return int(status_line.split(" ", 2)[1]), body, headers.get("connection") != "close"

    async def _read_head(self) -> bytes:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        return head

    async def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._fill()
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise HttpTransportError("the server closed the connection")
        self._buffer += data


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip().lower()
