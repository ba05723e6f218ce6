"""Security over loopback: refused peers, credentials, nonces, quotas, garbage floods."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable

import pytest
from relay_it_support import RawClient, RelayProcess, error_code
from test_relay_aioice import _round_trip

from services.relay.stun import Attr, Class, Message, Method, serialize


async def test_loopback_peer_refused_by_default(
    relay_factory: Callable[..., RelayProcess], echo_peer: tuple[str, int]
) -> None:
    relay = relay_factory()
    client = await RawClient.open(relay.address)
    try:
        assert error_code(await client.allocate()) is None
        # 127.0.0.1 is the relay's own IP: a permission is fine (its relayed ports are
        # reachable), but any other port there is refused for channels and dropped for Send.
        reply = await client.request(
            Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[echo_peer]
        )
        assert error_code(reply) == 403
        assert error_code(await client.request(Method.CREATE_PERMISSION, peers=[echo_peer])) is None
        send = Message(Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: b"x"},
                       peer_addresses=[echo_peer])  # fmt: skip
        client.transport.sendto(serialize(send), relay.address)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.data.get(), 1.0)
    finally:
        client.close()


INTERNAL_PEERS = [
    ("10.0.0.1", 80), ("169.254.169.254", 80), ("192.168.1.1", 22), ("100.64.0.1", 1),
    ("172.16.5.4", 1), ("224.0.0.1", 1), ("0.0.0.0", 1), ("255.255.255.255", 1),
    ("127.0.0.2", 1), ("240.0.0.1", 1),
]  # fmt: skip


async def test_internal_peer_ranges_refused(relay: RelayProcess) -> None:
    client = await RawClient.open(relay.address)
    try:
        assert error_code(await client.allocate()) is None
        for peer in INTERNAL_PEERS:
            assert (
                error_code(await client.request(Method.CREATE_PERMISSION, peers=[peer])) == 403
            ), peer
            bind = await client.request(
                Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[peer]
            )
            assert error_code(bind) == 403, peer
    finally:
        client.close()


async def test_wrong_secret_401(relay: RelayProcess) -> None:
    client = await RawClient.open(relay.address, secret="not-the-secret")
    try:
        assert error_code(await client.allocate()) == 401
    finally:
        client.close()


async def test_expired_username_401(relay: RelayProcess) -> None:
    client = await RawClient.open(relay.address, ttl=-10)
    try:
        assert error_code(await client.allocate()) == 401
    finally:
        client.close()


async def test_stale_nonce_438_then_recovers(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory("--nonce-lifetime", "1")
    client = await RawClient.open(relay.address)
    try:
        assert error_code(await client.allocate()) is None
        await asyncio.sleep(2.2)
        stale = await client.request(Method.REFRESH, {Attr.LIFETIME: 600})
        # RawClient retries once on 438 with the fresh nonce: the retry must succeed
        assert error_code(stale) is None
        client.nonce = client.nonce  # the nonce it now holds is fresh
        await asyncio.sleep(2.2)
        raw = await _single(client, Method.REFRESH, {Attr.LIFETIME: 600})
        assert error_code(raw) == 438 and raw.get(Attr.NONCE) and raw.get(Attr.REALM) == "parley"
    finally:
        client.close()


async def _single(client: RawClient, method: Method, attrs: dict[Attr, int]):  # type: ignore[no-untyped-def]
    """One request with no retry."""
    from services.relay.stun import Class, Message, serialize
    from services.relay.turn.auth import long_term_key

    a = dict(attrs)
    a.update({Attr.USERNAME: client.username, Attr.REALM: client.realm, Attr.NONCE: client.nonce})
    msg = Message(method, Class.REQUEST, os.urandom(12), a)
    fut = asyncio.get_running_loop().create_future()
    client.waiters[msg.transaction_id] = fut
    key = long_term_key(client.username, client.realm, client.password)
    client.transport.sendto(serialize(msg, integrity_key=key), client.server)
    return await asyncio.wait_for(fut, 3)


async def test_user_quota_486(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory("--user-quota", "2")
    clients = [await RawClient.open(relay.address) for _ in range(3)]
    for c in clients[1:]:
        c.username, c.password = clients[0].username, clients[0].password
    try:
        codes = [error_code(await c.allocate()) for c in clients]
        assert codes == [None, None, 486]
    finally:
        for c in clients:
            c.close()


async def test_total_quota_508(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory("--total-quota", "1")
    a, b = await RawClient.open(relay.address), await RawClient.open(relay.address)
    try:
        assert error_code(await a.allocate()) is None
        assert error_code(await b.allocate()) == 508
    finally:
        a.close()
        b.close()


async def test_garbage_flood_then_working_allocation(
    relay: RelayProcess, echo_peer: tuple[str, int]
) -> None:
    rng = random.Random(1234)
    valid = bytes.fromhex("000300082112a442") + os.urandom(12) + bytes.fromhex("0019000411000000")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(10_000):
            if i % 2:
                data = rng.randbytes(rng.randrange(0, 200))
            else:
                data = valid[: rng.randrange(0, len(valid))]
            sock.sendto(data, relay.address)
            if i % 500 == 0:
                await asyncio.sleep(0.01)  # bounded load on a shared machine
    await _round_trip(relay.address, echo_peer, "udp")
    assert relay.proc.poll() is None
    stream = socket.create_connection(relay.address)
    stream.sendall(os.urandom(64) + b"\xff" * 4)
    stream.close()
    await _round_trip(relay.address, echo_peer, "tcp")
