"""UDP GSO on the relay's compiled path (`PARLEY_RELAY_GSO`), end to end, on and off.

A real `parley relay` (one worker, compiled path) and two raw TURN clients bound to each
other's relayed address (in-process delivery). Client A sends each burst as one UDP GSO
send of its own, so the relay's listening socket receives the burst's datagrams at once
and one drain relays them to client B: with GSO on, as UDP_SEGMENT super-datagrams
(`parley_relay_gso_sent_total` counts them). Either way B must receive every datagram on
its own, in order, with its size: no super-datagram reaches a client. Skipped when the
compiled path was not built.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest
from relay_it_support import RawClient, RelayProcess
from test_relay_modes import _talk

from services.relay import fastpath
from services.relay.stun import Attr
from services.relay.turn.channeldata import pack_channel_data

pytestmark = pytest.mark.skipif(fastpath.load() is None, reason="compiled path not built")
SOL_UDP = 17
UDP_SEGMENT = 103  # Linux: the segment size for one send (UDP GSO)
CHANNEL = 0x4001
WAIT = 3.0


def _metric(relay: RelayProcess, name: str) -> float:
    status, text = relay.http("/metrics")
    assert status == 200
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, text[-500:]
    return float(match.group(1))


async def _counters(relay: RelayProcess, delivered: float) -> float:
    """gso_sent, once the workers published `delivered` packets delivered in process (they
    publish every 0.5 s, both counters at once)."""
    deadline = time.monotonic() + 5.0
    while (  # noqa: ASYNC110
        _metric(relay, "parley_relay_local_delivered_total") < delivered
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)
    assert _metric(relay, "parley_relay_local_delivered_total") >= delivered
    return _metric(relay, "parley_relay_gso_sent_total")


def _send(a: RawClient, messages: list[bytes]) -> None:
    """A sends `messages` (equal sizes, the last may be shorter) as one GSO send, or plainly
    when there is one."""
    sock = a.transport.get_extra_info("socket")
    if len(messages) > 1:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, len(messages[0]))
    try:
        a.transport.sendto(b"".join(messages), a.server)
    finally:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)


async def _burst(a: RawClient, b: RawClient, groups: list[list[int]], tag: int) -> int:
    """A sends ChannelData of payload sizes `groups` (one send per group); B gets each one."""
    sent = []
    for g, sizes in enumerate(groups):
        messages = [
            pack_channel_data(CHANNEL, bytes([tag, g, i]) + b"m" * (size - 3))
            for i, size in enumerate(sizes)
        ]
        _send(a, messages)
        sent.extend(messages)
    got = [await asyncio.wait_for(b.data.get(), WAIT) for _ in sent]
    assert [len(m) for m in got] == [len(m) for m in sent]
    assert got == sent
    return len(sent)


@pytest.mark.parametrize("gso", ["on", "off"])
async def test_gso_bursts_reach_the_client_datagram_by_datagram(
    relay_factory: Callable[..., RelayProcess], gso: str
) -> None:
    relay = relay_factory(env={"PARLEY_RELAY_GSO": gso})
    a, b = await RawClient.open(relay.address), await RawClient.open(relay.address)
    try:
        a_relayed = (await a.allocate()).get(Attr.XOR_RELAYED_ADDRESS)
        b_relayed = (await b.allocate()).get(Attr.XOR_RELAYED_ADDRESS)
        await _talk(a, a_relayed, b, b_relayed, CHANNEL)  # 3 packets; the route is cached
        delivered = 3
        # equal sizes; then a shorter last; then mixed: runs, lone packets, a 1500 B one
        delivered += await _burst(a, b, [[1180] * 8], 0)
        delivered += await _burst(a, b, [[1200] * 5 + [700]], 1)
        delivered += await _burst(a, b, [[160] * 3, [90], [1201] * 2, [1500], [300] * 4], 2)
        gso_sent = await _counters(relay, delivered)
        tag = 3
        deadline = time.monotonic() + 5.0
        while gso == "on" and gso_sent == 0 and time.monotonic() < deadline:
            # one drain usually reads a whole burst; when the relay woke mid-burst, again
            delivered += await _burst(a, b, [[1180] * 8], tag)
            gso_sent = await _counters(relay, delivered)
            tag += 1
        if gso == "on":
            assert gso_sent > 0
        else:
            assert gso_sent == 0
        assert _metric(relay, "parley_relay_dropped_total") == 0
        assert b.data.empty()
    finally:
        a.close()
        b.close()
