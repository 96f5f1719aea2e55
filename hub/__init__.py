"""The hub core: vehicle gateway, actors, registry, command state machine, event bus.

Other packages use only the names exported here. `hub` imports neither
`storage` nor `api`; they plug in through the Protocols of `hub.ports`.
"""

from hub.auditing import AuditBatcher, AuditLog, AuditNote
from hub.batching import IdempotencyKeyTaken, JournalWriteFailed
from hub.bus import InProcessBus
from hub.catalog import CATALOG, CommandSpec, build_request
from hub.config import HubConfig, load_config, parse_bind, read_config_file
from hub.credentials import hash_vehicle_token, new_vehicle_token, verify_vehicle_token
from hub.errors import (
    CatalogError,
    ConfigError,
    DispatchError,
    HubError,
    MailboxFull,
    VehicleNotConnected,
    VehicleRefused,
)
from hub.link_protocol import LinkVerdict
from hub.listener import raise_open_file_limit
from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    Disconnect,
    DisconnectReason,
    EventKind,
    SessionRevoked,
    SovdRequest,
    StatusChange,
    VehicleCredentials,
    VehicleStatus,
)
from hub.node import Connection, Hub, open_hub
from hub.ports import (
    FLEET_TOPIC,
    SESSIONS_TOPIC,
    AuditTrail,
    BusMessage,
    CommandJournal,
    EventBus,
    StorageUnavailable,
    VehicleDirectory,
    VehicleLeases,
    command_topic,
    vehicle_topic,
)
from hub.submission import StoredCommand, Submissions

__all__ = [
    "CATALOG",
    "FLEET_TOPIC",
    "JSON",
    "SESSIONS_TOPIC",
    "AuditBatcher",
    "AuditLog",
    "AuditNote",
    "AuditTrail",
    "BusMessage",
    "CatalogError",
    "Command",
    "CommandEventRecord",
    "CommandJournal",
    "CommandSpec",
    "CommandStatus",
    "CommandUpdate",
    "ConfigError",
    "Connection",
    "Disconnect",
    "DisconnectReason",
    "DispatchError",
    "EventBus",
    "EventKind",
    "Hub",
    "HubConfig",
    "HubError",
    "IdempotencyKeyTaken",
    "InProcessBus",
    "JournalWriteFailed",
    "LinkVerdict",
    "MailboxFull",
    "SessionRevoked",
    "SovdRequest",
    "StatusChange",
    "StorageUnavailable",
    "StoredCommand",
    "Submissions",
    "VehicleCredentials",
    "VehicleDirectory",
    "VehicleLeases",
    "VehicleNotConnected",
    "VehicleRefused",
    "VehicleStatus",
    "build_request",
    "command_topic",
    "hash_vehicle_token",
    "load_config",
    "new_vehicle_token",
    "open_hub",
    "parse_bind",
    "raise_open_file_limit",
    "read_config_file",
    "vehicle_topic",
    "verify_vehicle_token",
]
