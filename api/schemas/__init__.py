"""Request and response bodies of the REST API (pydantic; they also make the OpenAPI spec).

One module per group of routes; this package's surface is every name below,
and api modules import them from here::

    common    the strict body base, the page query, the VIN and text patterns
    accounts  logins, tokens, sessions, users (api.accounts, api.users)
    fleet     the vehicle registry and the fleet view (api.vehicles)
    commands  commands and their events, listings, idempotency (api.routes)
    audit     the audit trail's filters, pages and export (api.audit)
"""

from __future__ import annotations

from api.schemas.accounts import (
    USERNAME_PATTERN,
    LoginRequest,
    MeOut,
    NewUserIn,
    PasswordChange,
    PasswordChanged,
    RefreshRequest,
    RoleName,
    SessionOut,
    TokenResponse,
    UserList,
    UserOut,
    UserPage,
    UserPatch,
)
from api.schemas.audit import (
    AUDIT_ACTION_PATTERN,
    MAX_AUDIT_ID,
    AuditEventOut,
    AuditExportQuery,
    AuditFilters,
    AuditPage,
    AuditQuery,
)
from api.schemas.commands import (
    CommandList,
    CommandOut,
    CommandQuery,
    EventList,
    EventOut,
    IdempotencyHeaders,
    SubmitCommand,
)
from api.schemas.common import (
    NO_CONTROL_CHARACTERS,
    VIN_PATTERN,
    PageQuery,
    Strict,
)
from api.schemas.fleet import (
    ConnectionDetail,
    ConnectionOut,
    NewVehicleIn,
    VehicleCreated,
    VehicleDetail,
    VehicleList,
    VehicleMetadata,
    VehicleName,
    VehicleOut,
    VehiclePatch,
    VehicleQuery,
    VehicleToken,
)

__all__ = [
    "AUDIT_ACTION_PATTERN",
    "MAX_AUDIT_ID",
    "NO_CONTROL_CHARACTERS",
    "USERNAME_PATTERN",
    "VIN_PATTERN",
    "AuditEventOut",
    "AuditExportQuery",
    "AuditFilters",
    "AuditPage",
    "AuditQuery",
    "CommandList",
    "CommandOut",
    "CommandQuery",
    "ConnectionDetail",
    "ConnectionOut",
    "EventList",
    "EventOut",
    "IdempotencyHeaders",
    "LoginRequest",
    "MeOut",
    "NewUserIn",
    "NewVehicleIn",
    "PageQuery",
    "PasswordChange",
    "PasswordChanged",
    "RefreshRequest",
    "RoleName",
    "SessionOut",
    "Strict",
    "SubmitCommand",
    "TokenResponse",
    "UserList",
    "UserOut",
    "UserPage",
    "UserPatch",
    "VehicleCreated",
    "VehicleDetail",
    "VehicleList",
    "VehicleMetadata",
    "VehicleName",
    "VehicleOut",
    "VehiclePatch",
    "VehicleQuery",
    "VehicleToken",
]
