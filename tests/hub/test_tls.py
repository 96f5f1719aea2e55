"""Mutual TLS on the gateway: a vehicle's certificate must be signed by our CA and name its VIN."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpclib.client
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from hub import ConfigError, HubConfig, InProcessBus
from hub.bridge import run_asyncio
from hub.node import Hub
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub
from proto import Hello, VehicleLinkStub, VehicleMessage

VIN, OTHER, TOKEN = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "token-1"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, ca: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0].subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """A CA, the hub's certificate, and client certificates named by VIN."""
    ca = _certificate("sovd-hub test CA", None, ca=True)
    files = {"ca": _write(tmp_path / "ca", *ca)}
    files["hub"] = _write(tmp_path / "hub", *_certificate("127.0.0.1", ca, ca=False))
    for vin in (VIN, OTHER):
        files[vin] = _write(tmp_path / vin, *_certificate(vin, ca, ca=False))
    return files


@pytest.fixture
async def hub(pki: dict[str, tuple[str, str]]) -> AsyncIterator[Hub]:
    directory = MemoryDirectory()
    directory.add(VIN, TOKEN)
    journal = MemoryJournal()
    config = HubConfig(
        grpc_port=0,
        shutdown_grace_s=1,
        tls_cert_file=pki["hub"][0],
        tls_key_file=pki["hub"][1],
        tls_client_ca_file=pki["ca"][0],
    )
    async with open_memory_hub(
        config, directory, journal, audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        yield hub


async def _hello(hub: Hub, ca_file: str, client: tuple[str, str] | None) -> str:
    """Connect over TLS, say Hello as VIN; returns "welcome" or the refusal's status name."""
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["h2"])
    if client is not None:
        context.load_cert_chain(*client)

    async def connect() -> str:
        channel = grpclib.client.Channel("127.0.0.1", hub.grpc_port, ssl=context)
        try:
            async with VehicleLinkStub(channel).Connect.open(
                metadata={"authorization": f"Bearer {TOKEN}"}
            ) as stream:
                await stream.send_message(VehicleMessage(hello=Hello(vin=VIN)))
                reply = await stream.recv_message()
                await stream.cancel()
                return reply.WhichOneof("kind") if reply else "nothing"
        except GRPCError as exc:
            return f"{exc.status.name}: {exc.message}"
        except (StreamTerminatedError, ssl.SSLError, OSError) as exc:
            return f"tls: {type(exc).__name__}"
        finally:
            channel.close()

    with trio.fail_after(5):
        return await run_asyncio(connect)


async def test_a_vehicle_with_its_own_certificate_is_welcomed(
    hub: Hub, pki: dict[str, tuple[str, str]]
) -> None:
    assert await _hello(hub, pki["ca"][0], pki[VIN]) == "welcome"


async def test_a_certificate_for_another_vin_is_refused(
    hub: Hub, pki: dict[str, tuple[str, str]]
) -> None:
    answer = await _hello(hub, pki["ca"][0], pki[OTHER])
    assert answer == (
        f"{Status.PERMISSION_DENIED.name}: the client certificate is for '{OTHER}', not VIN {VIN}"
    )


async def test_no_client_certificate_no_link(hub: Hub, pki: dict[str, tuple[str, str]]) -> None:
    answer = await _hello(hub, pki["ca"][0], None)
    assert answer.startswith("tls: ") and hub.connection(VIN) is None


def test_tls_settings_must_come_together() -> None:
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file go together"):
        HubConfig(tls_cert_file="hub.crt")
    with pytest.raises(ConfigError, match="tls_client_ca_file \\(mutual TLS\\) needs TLS"):
        HubConfig(tls_client_ca_file="ca.crt")
