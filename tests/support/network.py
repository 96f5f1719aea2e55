"""Network helpers: a port nothing listens on, the host and port of a Redis URL."""

from __future__ import annotations

import socket

import redis


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def redis_host_port(url: str) -> tuple[str, int]:
    """Host and port of a `redis://host:port/db` URL."""
    client = redis.Redis.from_url(url)
    kwargs = client.connection_pool.connection_kwargs
    client.close()
    return str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379))
