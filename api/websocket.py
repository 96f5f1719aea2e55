"""The operator WebSocket, `GET /api/v1/ws`: one connection, many subscriptions.

Every frame is one JSON object in a text frame, with a `type`.

Client to hub:
  {"type": "auth", "token": "<access token>"}   first, within ws_auth_timeout_s, else close 4401.
      The token is checked again every ws_token_check_s: once it has expired or its session
      was revoked (logout...), the connection closes with 4401. Sent again later (same user)
      with a fresh token, `auth` replaces the token and keeps the connection.
  {"type": "subscribe", "topic": "command:<id>", "from_seq": 0}   from_seq optional, default 0
  {"type": "subscribe", "topic": "vehicle:<vin>"}  ·  {"type": "subscribe", "topic": "fleet"}
      (live only: these take no from_seq)
  {"type": "unsubscribe", "topic": "<topic>"}
  {"type": "ping"}
  The hub acts on one socket's messages one at a time, in order; a message arriving while the
  socket's previous subscribe still reads the database waits in the socket's own buffers.

Limits (`api.ws_limits`): at most ws_max_subscriptions topics per socket (a subscribe beyond
gets `too_many_subscriptions`); at most ws_messages_per_s messages a second, ws_message_burst at
once (beyond: `rate_limited`, once per run, and those messages are dropped; a socket that keeps
on is closed with 4429); subscribe-time database reads of all sockets share
ws_max_concurrent_reads slots, so a flood of subscriptions cannot take the database pool that
commands are committed through.

Hub to client:
  {"type": "authenticated", "username", "role"}
  {"type": "subscribed", "topic", "from_seq"?}       from_seq on command topics only
  {"type": "event", "topic", "command_id", "seq", "kind", "status", "body", "final"}
  {"type": "status", "topic", "command_id", "status", "error", "at"}   a command's final status
  {"type": "vehicle", "topic", "vin", "status", "reason", "detail", "at"}   connected/disconnected
  {"type": "unsubscribed", "topic"}                  nothing of that topic follows it
  {"type": "pong"}
  {"type": "error", "code", "message", "topic"?}     the socket stays open; codes in
      `api.ws_frames.ERROR_CODES`, the message says what to change.
      Code `overflow`: that subscription fell more than the bus buffer behind (only possible
      while it replays) and ended; subscribe again (commands: `from_seq` as the message says)
  {"type": "lagged", "message", "queued", "resume"}  the last frame before close 1013

Topics:
  command:<id>   the command's stored events from `from_seq`, then its live ones, then one
                 `status` frame when it ends (after which the subscription ends). Readable by
                 admins and by the engineer who submitted it; others get `unknown_command`.
  vehicle:<vin>  a `vehicle` frame with the state now, then each connection change, and the
                 `event` and final `status` frames of every command of that vehicle: admins
                 see all commands, others only the ones they submitted. Any role; an
                 unregistered VIN gets `unknown_vehicle`.
  fleet          `vehicle` frames of every vehicle's connects and disconnects. Any role.

A command subscription joins the bus before it reads the journal, and the
actors record before they publish, so stored and live events meet without a
gap; duplicates are dropped by `seq`.

Back-pressure: each connection has one send queue of `ws_buffer_messages`
frames. Live frames and replies are queued without waiting; when the queue
is full the client is reading too slowly: its subscriptions end at once, the
frames already queued are sent, then a `lagged` frame (`resume` maps each
topic it followed to the `from_seq` to subscribe again from, null for live
topics) and the close 1013. The hub never waits for a slow reader. Replayed
(stored) events are paced instead: a replay waits while the queue is half
full, so a long replay neither lags a client that reads nor crowds out live
frames. A client that stops reading altogether gets `lagged` and 1013 once it
reads again, or loses the TCP connection; meanwhile it holds one writer task
and its TCP buffers, nothing else (`api.ws_outbox`).

Close codes (the hub's; 1006 at the client means the TCP connection dropped, which
is also what a client sees when the node stops, after shutdown_grace_s):
  1000  the client closed (the hub answers with the client's own code)
  1009  a client message over hypercorn's websocket_max_message_size (16 MiB)
  1011  the hub failed while serving the connection (a bug, logged); reconnect
  1013  lagged: the client did not read fast enough (see above); reconnect
  4401  no or bad `auth` message in time, or the token expired or was revoked
  4429  the client kept sending more than ws_messages_per_s messages a second (see Limits)
WebSocket-level pings are answered by hypercorn with pongs; `{"type": "ping"}` is for
clients (browsers) that cannot send control frames.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeAlias

import structlog
import trio
from quart import Blueprint, websocket

from api.auth import InvalidToken, Principal
from api.metrics import metrics
from api.state import AppState, state
from api.ws_frames import ClientError, Message, command_request, parse_message
from api.ws_limits import CLOSE_FLOODING, MessageBudget, Verdict, check_subscription_room
from api.ws_outbox import Outbox, Subscription, close_reason
from api.ws_topics import stream_command, stream_vehicles
from hub import FLEET_TOPIC, StorageUnavailable

log = structlog.get_logger("api.websocket")
ws = Blueprint("ws", __name__)

#: A subscription's stream: it calls `ready()` once it has read what it needs.
_Stream: TypeAlias = Callable[[Subscription, Callable[[], None]], Awaitable[None]]

CLOSE_INTERNAL_ERROR = 1011
#: No valid authentication, or it expired (4000-4999 are the application's).
CLOSE_UNAUTHENTICATED = 4401


@ws.websocket("/api/v1/ws")
async def operator_socket() -> None:
    """Serve one operator's WebSocket until it closes."""
    s = state()
    authenticated = await _authenticate(s)
    if authenticated is None:
        return
    session = _Session(s, *authenticated)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.write_frames, nursery.cancel_scope)
            nursery.start_soon(session.watch_token)
            session.nursery = nursery
            await session.read_messages()
    except* Exception as group:  # a bug: say so rather than quart's default close 1000
        log.error("websocket.failed", user=session.principal.username, exc_info=group)
        await websocket.close(CLOSE_INTERNAL_ERROR, "the hub failed; reconnect")


async def _authenticate(s: AppState) -> tuple[Principal, str] | None:
    raw: str | bytes | None = None
    with trio.move_on_after(s.config.ws_auth_timeout_s):
        raw = await websocket.receive()
    if raw is None:
        reason = f"no auth message within {s.config.ws_auth_timeout_s:g} s"
    else:
        try:
            return await _verify(s, parse_message(raw))
        except (ClientError, InvalidToken) as exc:
            reason = str(exc)
    await websocket.close(CLOSE_UNAUTHENTICATED, close_reason(reason))
    return None


async def _verify(s: AppState, message: Message) -> tuple[Principal, str]:
    """The principal of an auth message, and its token; raises `InvalidToken`."""
    token = message.get("token")
    if message.get("type") != "auth" or not isinstance(token, str):
        raise InvalidToken('the first message must be {"type": "auth", "token": "..."}')
    return await s.tokens.authenticate(token), token


class _Session:
    """One authenticated socket: its send queue, its subscriptions (each a task), its reader."""

    def __init__(self, s: AppState, principal: Principal, token: str) -> None:
        self.s = s
        self.principal = principal
        self._token = token
        self.subscriptions: dict[str, Subscription] = {}
        self.outbox = Outbox(s.config.ws_buffer_messages, self.subscriptions, principal.username)
        self.nursery: trio.Nursery | None = None
        config = s.config
        self.budget = MessageBudget(
            config.ws_messages_per_s, config.ws_message_burst, trio.current_time()
        )
        self.outbox.put(
            {"type": "authenticated", "username": principal.username, "role": principal.role}
        )

    async def write_frames(self, done: trio.CancelScope) -> None:
        """Write the queued frames until the connection ends; then close it and cancel `done`."""
        sent = metrics().websocket_frames

        async def send(text: str) -> None:
            await websocket.send(text)
            sent.inc()

        await self.outbox.write_frames(send, websocket.close)
        done.cancel()

    async def watch_token(self) -> None:
        """Every `ws_token_check_s`, check the token again: expired or revoked closes with 4401."""
        while True:
            await trio.sleep(self.s.config.ws_token_check_s)
            try:
                await self.s.tokens.authenticate(self._token)
            except InvalidToken as exc:
                self.outbox.end(CLOSE_UNAUTHENTICATED, str(exc))
                return

    # -- client messages -----------------------------------------------------

    async def read_messages(self) -> None:
        """Act on the client's messages, one at a time, until the connection is ending.

        One at a time: a subscribe's database read is done before the next
        message is read, so one socket never has more than one read in flight
        and a flood waits in its own TCP buffers. Messages over the socket's
        rate are dropped unread; a socket that keeps on is closed (4429).
        Once the connection is ending, nothing more is read.
        """
        while self.outbox.ending is None:
            raw = await websocket.receive()
            match self.budget.take(trio.current_time()):
                case Verdict.REFUSE_AND_TELL:
                    self.outbox.put(self.budget.refusal().frame)
                    continue
                case Verdict.REFUSE:
                    continue
                case Verdict.CLOSE:
                    log.warning("websocket.flooding", user=self.principal.username)
                    self.outbox.end(CLOSE_FLOODING, self.budget.close_reason())
                    return
            try:
                reply = await self.handle(parse_message(raw))
            except ClientError as exc:
                reply = exc.frame
            if reply is not None:
                self.outbox.put(reply)

    async def handle(self, message: Message) -> Message | None:
        """Act on one client message; returns the immediate reply, if any.

        A subscribe returns once its subscription has read what it needs
        (`subscribed` or an error is queued by then). Cancellation: a
        subscription being started is ended.
        """
        match message.get("type"):
            case "subscribe":
                await self._subscribe(message)
                return None
            case "unsubscribe":
                topic = str(message.get("topic"))
                if topic not in self.subscriptions:
                    raise ClientError("not_subscribed", f"not subscribed to {topic}", topic)
                self.subscriptions.pop(topic).scope.cancel()
                return {"type": "unsubscribed", "topic": topic}
            case "ping":
                return {"type": "pong"}
            case "auth":
                return await self._reauthenticate(message)
            case other:
                raise ClientError(
                    "unknown_type",
                    f"unknown message type {other!r}; expected subscribe, unsubscribe, ping "
                    "or auth",
                )

    async def _reauthenticate(self, message: Message) -> Message:
        try:
            principal, token = await _verify(self.s, message)
        except InvalidToken as exc:
            raise ClientError("bad_auth", f"{exc}; the connection keeps its token") from None
        if principal.username != self.principal.username:
            raise ClientError(
                "bad_auth",
                f"this connection is {self.principal.username}'s, the token is "
                f"{principal.username}'s: open another connection",
            )
        self.principal, self._token = principal, token
        return {"type": "authenticated", "username": principal.username, "role": principal.role}

    async def _subscribe(self, message: Message) -> None:
        topic = message.get("topic")
        if isinstance(topic, str) and (topic == FLEET_TOPIC or topic.startswith("vehicle:")):
            if "from_seq" in message:
                raise ClientError(
                    "bad_from_seq",
                    f"{topic} is live only; from_seq applies to command:<id> topics: "
                    "subscribe without it",
                    topic,
                )
            vin = None if topic == FLEET_TOPIC else topic.removeprefix("vehicle:")
            stream = partial(stream_vehicles, self, topic=topic, vin=vin)
            await self._start(topic, None, stream)
            return
        command, command_id, from_seq = command_request(message)
        stream = partial(stream_command, self, topic=command, command_id=command_id)
        await self._start(command, from_seq, stream)

    async def _start(self, topic: str, next_seq: int | None, stream: _Stream) -> None:
        if topic in self.subscriptions:
            raise ClientError("already_subscribed", f"already subscribed to {topic}", topic)
        check_subscription_room(len(self.subscriptions), self.s.config.ws_max_subscriptions, topic)
        if self.nursery is None or self.outbox.ending is not None:
            return
        subscription = self.subscriptions[topic] = Subscription(next_seq)
        await self.nursery.start(self._follow, topic, subscription, stream)

    async def _follow(
        self,
        topic: str,
        subscription: Subscription,
        stream: _Stream,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False

        def ready() -> None:  # the reader may go on to the socket's next message
            nonlocal started
            if not started:
                started = True
                task_status.started()

        with subscription.scope:
            try:
                await stream(subscription, ready)
            except ClientError as exc:
                self.outbox.put(exc.frame, subscription)
            except StorageUnavailable as exc:
                message = f"the database does not answer ({exc}); subscribe again in a few seconds"
                error = ClientError("storage_unavailable", message, topic)
                self.outbox.put(error.frame, subscription)
            finally:
                if self.subscriptions.get(topic) is subscription:
                    del self.subscriptions[topic]
        ready()
