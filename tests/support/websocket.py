"""WebSocket clients of a test node: sockets we close ourselves, JSON frames, subscriptions."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import trio
import trio_websocket

from hub import JSON

if TYPE_CHECKING:
    from tests.support.node import Node


@asynccontextmanager
async def open_socket(node: Node) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket to the node whose TCP stream we close ourselves.

    trio-websocket 0.12 never closes the stream when the server closes first
    (`_aclose` returns early), which leaks a socket; owning the stream avoids it.
    """
    url = httpx.URL(node.ws_url)
    stream = await trio.open_tcp_stream(url.host, url.port or 80)
    async with stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, url.host, url.path)
        try:
            yield ws
        finally:
            await ws.aclose()


@asynccontextmanager
async def authenticated_socket(
    node: Node, username: str
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket of `username`, past the auth exchange."""
    async with open_socket(node) as ws:
        await send_json(ws, {"type": "auth", "token": await node.token(username)})
        reply = await receive_json(ws)
        assert reply["type"] == "authenticated", reply
        yield ws


@asynccontextmanager
async def unread_socket(
    node: Node, username: str, *, close_politely: bool = True
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """An authenticated WebSocket with a tiny receive buffer, read only when the test says.

    `close_politely=False` leaves without the close handshake, for a test whose
    socket may be blocked sending (trio-websocket cannot answer a close then).
    """
    url = httpx.URL(node.ws_url)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning to megabytes
    await sock.connect((url.host, url.port))
    async with trio.SocketStream(sock) as stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, url.host, url.path)
        try:
            await send_json(ws, {"type": "auth", "token": await node.token(username)})
            assert (await receive_json(ws))["type"] == "authenticated"
            yield ws
        finally:
            if close_politely:
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def send_json(ws: trio_websocket.WebSocketConnection, message: dict[str, JSON]) -> None:
    """Send one JSON text frame."""
    await ws.send_message(orjson.dumps(message).decode())


async def receive_json(ws: trio_websocket.WebSocketConnection) -> dict[str, JSON]:
    """Receive one JSON frame (fails the test after 10 s of silence)."""
    with trio.fail_after(10):
        message = orjson.loads(await ws.get_message())
    assert isinstance(message, dict)
    return message


async def subscribe(
    ws: trio_websocket.WebSocketConnection, command_id: str, from_seq: int = 0
) -> None:
    """Subscribe to a command and check the acknowledgement."""
    topic = f"command:{command_id}"
    await send_json(ws, {"type": "subscribe", "topic": topic, "from_seq": from_seq})
    reply = await receive_json(ws)
    assert reply == {"type": "subscribed", "topic": topic, "from_seq": from_seq}, reply


async def collect_until_status(ws: trio_websocket.WebSocketConnection) -> list[dict[str, JSON]]:
    """Every frame up to and including the command's `status` frame."""
    frames = []
    while True:
        frame = await receive_json(ws)
        frames.append(frame)
        if frame["type"] in ("status", "error"):
            return frames


def body(frame: dict[str, JSON]) -> dict[str, Any]:
    """The JSON object in an event frame's `body`."""
    value = frame["body"]
    assert isinstance(value, dict), frame
    return value


def new_id() -> str:
    """A random command id (for commands that do not exist)."""
    return str(uuid.uuid4())


Frame = dict[str, JSON]


async def subscribe_vehicle(ws: trio_websocket.WebSocketConnection, vin: str) -> Frame:
    """Subscribe to `vehicle:<vin>`; returns the snapshot frame that follows the acknowledgement."""
    topic = f"vehicle:{vin}"
    await send_json(ws, {"type": "subscribe", "topic": topic})
    assert await receive_json(ws) == {"type": "subscribed", "topic": topic}
    snapshot = await receive_json(ws)
    assert (snapshot["type"], snapshot["topic"], snapshot["vin"]) == ("vehicle", topic, vin)
    return snapshot


async def frames_until(
    ws: trio_websocket.WebSocketConnection, last: Callable[[Frame], bool]
) -> list[Frame]:
    """Every frame up to and including the first for which `last` is true."""
    frames = []
    while True:
        frames.append(await receive_json(ws))
        if last(frames[-1]):
            return frames
