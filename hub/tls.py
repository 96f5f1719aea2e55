"""Optional TLS on the vehicle gateway, and mutual TLS binding a client certificate to a VIN."""

from __future__ import annotations

import ssl
from typing import Any

from hub.config import HubConfig
from hub.errors import ConfigError


def server_context(config: HubConfig) -> ssl.SSLContext | None:
    """The gateway's TLS context from `tls_*` settings (None: plain TCP).

    With `tls_client_ca_file`, every vehicle must present a certificate that
    CA signed (mutual TLS). Raises `ConfigError` naming the setting whose
    file cannot be used.
    """
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])  # gRPC is HTTP/2
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use tls_cert_file {config.tls_cert_file!r} with tls_key_file "
            f"{config.tls_key_file!r}: {exc}"
        ) from exc
    if config.tls_client_ca_file is not None:
        try:
            context.load_verify_locations(config.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot use tls_client_ca_file {config.tls_client_ca_file!r}: {exc}"
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def certificate_identity(certificate: dict[str, Any] | None) -> str | None:
    """The common name (CN) of a peer certificate as `ssl` decodes it, or None."""
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
