"""The relay never relays to its own listener (issue 15, item 8; cf. coturn CVE-2020-26262).

The listening port is put inside the relayed port range on purpose (the dev stack's old
shape): a channel to it is refused with 403 and a STUN request sent through an allocation
to it is not answered, with or without `--allow-peer` covering the relay's address. The
relay's live relayed sockets stay reachable, also across workers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from relay_it_support import RawClient, RelayProcess, error_code, free_port_pair

from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize


def _around(port: int) -> str:
    low = max(1024, port - 20)
    return f"{low}-{min(65535, low + 40)}"


@pytest.mark.parametrize("extra", [[], ["--allow-peer", "127.0.0.1/32"]],
                         ids=["default-policy", "allow-peer-loopback"])
async def test_stun_through_allocation_to_listener_refused(
    relay_factory: Callable[..., RelayProcess], extra: list[str]
) -> None:
    port = free_port_pair()
    relay = relay_factory(*extra, port=port, ports=_around(port))
    a = await RawClient.open(relay.address)
    b = await RawClient.open(relay.address)
    try:
        assert error_code(await a.allocate()) is None
        reply_b = await b.allocate()
        assert error_code(reply_b) is None
        b_relayed = reply_b.get(Attr.XOR_RELAYED_ADDRESS)
        assert error_code(await b.request(Method.CREATE_PERMISSION, peers=[("127.0.0.1", 0)])) \
            is None
        assert error_code(await a.request(Method.CREATE_PERMISSION, peers=[("127.0.0.1", 0)])) \
            is None
        bind = await a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000},
                               peers=[("127.0.0.1", port)])
        assert error_code(bind) == 403
        # a Binding request through the allocation to the listener: never answered
        binding = serialize(Message(Method.BINDING, Class.REQUEST, os.urandom(12)))
        to_listener = Message(Method.SEND, Class.INDICATION, os.urandom(12),
                              {Attr.DATA: binding}, peer_addresses=[("127.0.0.1", port)])
        a.transport.sendto(serialize(to_listener), relay.address)
        # while another allocation's relayed socket is reachable from the same allocation
        to_b = Message(Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: b"hello"},
                       peer_addresses=[b_relayed])
        a.transport.sendto(serialize(to_b), relay.address)
        got = parse_message(await asyncio.wait_for(b.data.get(), 5.0))
        assert got.get(Attr.DATA) == b"hello"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(a.data.get(), 1.0)
    finally:
        a.close()
        b.close()


async def test_relayed_sockets_reachable_across_workers(
    relay_factory: Callable[..., RelayProcess],
) -> None:
    relay = relay_factory(workers=2)  # no --allow-peer: 127.0.0.1 is only the relay's own
    clients = [await RawClient.open(relay.address) for _ in range(6)]
    try:
        relayed = []
        for c in clients:
            reply = await c.allocate()
            assert error_code(reply) is None
            relayed.append(reply.get(Attr.XOR_RELAYED_ADDRESS))
        for i, c in enumerate(clients):
            peer = relayed[(i + 1) % len(clients)]
            bind = await c.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000},
                                   peers=[peer])
            assert error_code(bind) is None, (i, peer)
    finally:
        for c in clients:
            c.close()
