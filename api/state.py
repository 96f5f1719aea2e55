"""What the API's handlers share: the hub, the database, the token issuer and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
from quart import current_app

from api.auth import TokenIssuer
from api.config import ApiConfig
from hub import Hub, HubConfig
from storage import Database, KeyValue

_KEY = "sovd_hub"


@dataclass(frozen=True, slots=True)
class AppState:
    """The node's services, set once by `create_app`."""

    hub: Hub
    db: Database
    tokens: TokenIssuer
    config: ApiConfig
    hub_config: HubConfig
    #: Redis, when the node is configured with one (`redis_url`); shared with other nodes.
    keyvalue: KeyValue | None = None
    #: Subscribe-time database reads of all WebSockets (`ws_max_concurrent_reads`): a flood of
    #: subscriptions queues here, not in the pool the journal commits through.
    ws_reads: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(4))


def state() -> AppState:
    """The `AppState` of the running app (inside a request or WebSocket)."""
    value = current_app.extensions[_KEY]
    assert isinstance(value, AppState)
    return value


def app_state(extensions: dict[str, object]) -> AppState:
    """The `AppState` stored in an app's `extensions` (outside a request: the node's wiring)."""
    value = extensions[_KEY]
    assert isinstance(value, AppState)
    return value


def attach_state(extensions: dict[str, object], value: AppState) -> None:
    """Store `value` where `state()` finds it."""
    extensions[_KEY] = value
