"""Settings of the operator edge (HTTP + WebSocket) and of storage, for one hub node."""

from __future__ import annotations

import dataclasses

from hub.config import check_port, check_positive
from hub.errors import ConfigError

#: HS256 keys shorter than this are refused (joserfc only warns).
MIN_JWT_SECRET_BYTES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class ApiConfig:
    """The REST and WebSocket API: where it listens and how it authenticates operators."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    jwt_secret: str = ""
    access_token_ttl_s: int = 900
    ws_auth_timeout_s: float = 5.0
    ws_buffer_messages: int = 256

    def __post_init__(self) -> None:
        check_port("http_port", self.http_port)
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes of random data "
                f"(set SOVD_HUB_JWT_SECRET, e.g. to the output of "
                f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                f"got {len(self.jwt_secret.encode())} bytes"
            )
        for name in ("access_token_ttl_s", "ws_auth_timeout_s", "ws_buffer_messages"):
            check_positive(name, getattr(self, name))


@dataclasses.dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where commands, events, users and the audit trail are kept."""

    database_url: str = "sqlite:///sovd-hub.db"
    database_pool_size: int = 10
    bcrypt_rounds: int = 12

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ConfigError("database_url (SOVD_HUB_DATABASE_URL) must not be empty")
        check_positive("database_pool_size", self.database_pool_size)
        if not 4 <= self.bcrypt_rounds <= 31:
            raise ConfigError(f"bcrypt_rounds must be between 4 and 31, got {self.bcrypt_rounds}")
