"""The hub core: vehicle gateway, actors, registry, command state machine, event bus.

Other packages use only the names exported here. `hub` imports neither
`storage` nor `api`; they plug in through the Protocols of `hub.ports`.
"""

from hub.auditing import AuditBatcher, AuditLog, AuditNote, AuditNoteStatistics, AuditRecord
from hub.batching import IdempotencyKeyTaken, JournalWriteFailed
from hub.bus import BusStatistics, InProcessBus
from hub.catalog import CATALOG, CommandSpec, build_request
from hub.config import HubConfig, load_config, parse_bind, read_config_file
from hub.credentials import hash_vehicle_token, new_vehicle_token, verify_vehicle_token
from hub.ending import end_command, publish_ends, record_and_publish
from hub.errors import (
    CatalogError,
    ConfigError,
    DispatchError,
    HubError,
    MailboxFull,
    RoutingFailed,
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
    StreamEntry,
    VehicleCredentials,
    VehicleStatus,
)
from hub.node import Connection, Hub, HubStatistics
from hub.opening import open_hub
from hub.ports import (
    FLEET_TOPIC,
    SESSIONS_TOPIC,
    AuditTrail,
    BusMessage,
    CommandJournal,
    EventBus,
    RoutingLeases,
    RoutingStore,
    RoutingStreams,
    StorageFailed,
    StorageUnavailable,
    VehicleDirectory,
    VehicleLeases,
    command_topic,
    vehicle_topic,
)
from hub.routing import READ_BLOCK_S as ROUTING_READ_BLOCK_S
from hub.routing import ClusterRouter, node_lost_reason, orphan_reason
from hub.submission import Submissions

__all__ = [
    "CATALOG",
    "FLEET_TOPIC",
    "JSON",
    "ROUTING_READ_BLOCK_S",
    "SESSIONS_TOPIC",
    "AuditBatcher",
    "AuditLog",
    "AuditNote",
    "AuditNoteStatistics",
    "AuditRecord",
    "AuditTrail",
    "BusMessage",
    "BusStatistics",
    "CatalogError",
    "ClusterRouter",
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
    "HubStatistics",
    "IdempotencyKeyTaken",
    "InProcessBus",
    "JournalWriteFailed",
    "LinkVerdict",
    "MailboxFull",
    "RoutingFailed",
    "RoutingLeases",
    "RoutingStore",
    "RoutingStreams",
    "SessionRevoked",
    "SovdRequest",
    "StatusChange",
    "StorageFailed",
    "StorageUnavailable",
    "StreamEntry",
    "Submissions",
    "VehicleCredentials",
    "VehicleDirectory",
    "VehicleLeases",
    "VehicleNotConnected",
    "VehicleRefused",
    "VehicleStatus",
    "build_request",
    "command_topic",
    "end_command",
    "hash_vehicle_token",
    "load_config",
    "new_vehicle_token",
    "node_lost_reason",
    "open_hub",
    "orphan_reason",
    "parse_bind",
    "publish_ends",
    "raise_open_file_limit",
    "read_config_file",
    "record_and_publish",
    "vehicle_topic",
    "verify_vehicle_token",
]
