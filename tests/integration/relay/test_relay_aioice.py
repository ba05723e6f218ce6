"""Interop with aioice's TURN client over UDP, TCP and TLS through a real `parley relay`."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from aioice import turn
from relay_it_support import SECRET, Inbox, RelayProcess

from services.common.credentials import mint_turn_credential


async def _round_trip(server: tuple[str, int], peer: tuple[str, int], transport: str,
                      ssl_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
    cred = mint_turn_credential(SECRET)
    relay_transport, inbox = await turn.create_turn_endpoint(
        Inbox, server_addr=server, username=cred.username, password=cred.password,
        transport=transport, ssl=ssl_context,
    )  # fmt: skip
    try:
        relayed = relay_transport.get_extra_info("sockname")
        assert relayed[0] == "127.0.0.1"
        for i in range(5):
            payload = f"ping {i}".encode() * (i + 1)
            relay_transport.sendto(payload, peer)
            data, addr = await asyncio.wait_for(inbox.queue.get(), 5)
            assert data == payload and tuple(addr) == peer
    finally:
        relay_transport.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_aioice_round_trip(
    relay: RelayProcess, echo_peer: tuple[str, int], transport: str
) -> None:
    await _round_trip(relay.address, echo_peer, transport)
    status, metrics = relay.http("/metrics")
    assert status == 200 and "parley_relay_allocations" in metrics


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_aioice_round_trip_tls(
    relay_factory: Callable[..., RelayProcess], echo_peer: tuple[str, int], tmp_path: Path
) -> None:
    from relay_it_support import free_port_pair

    cert, key = _self_signed(tmp_path)
    tls_port = free_port_pair()
    relay = relay_factory(
        "--allow-peer", "127.0.0.1/32", "--tls-listen", f"127.0.0.1:{tls_port}",
        "--tls-cert", str(cert), "--tls-key", str(key),
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    await _round_trip(("127.0.0.1", tls_port), echo_peer, "tcp", context)
    assert relay.proc.poll() is None


async def test_aioice_two_workers(
    relay_factory: Callable[..., RelayProcess], echo_peer: tuple[str, int]
) -> None:
    relay = relay_factory("--allow-peer", "127.0.0.1/32", workers=2)
    await asyncio.gather(*(_round_trip(relay.address, echo_peer, "udp") for _ in range(4)))
