"""The HTTP edge: the Quart app (REST, WebSocket, OpenAPI) over a running hub and its storage.

`create_app` builds the app; the composition root (`sovd_hub`) serves it
with Hypercorn beside the hub. Besides the app and its settings, this names
what the composition root wires around it: the password rules the CLI applies
to new passwords and the session revocations the node shares over the bus;
and the WebSocket's event and status frames, which the bench's no-op server
must send alike.
"""

from api.app import create_app
from api.auth import SessionRevocations
from api.config import ApiConfig
from api.errors import ApiError, EdgeError
from api.passwords import WeakPassword, check_new_password
from api.state import app_state
from api.ws_frames import event_frame, status_frame

__all__ = [
    "ApiConfig",
    "ApiError",
    "EdgeError",
    "SessionRevocations",
    "WeakPassword",
    "app_state",
    "check_new_password",
    "create_app",
    "event_frame",
    "status_frame",
]
