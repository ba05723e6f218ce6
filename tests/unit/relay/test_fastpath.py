"""The compiled packet path (`services.relay._fastpath`) against the Python one.

Meters: the C `Meter` behaves as `turn.meter.Meter`. Routes: real loopback UDP sockets,
a real `TurnServer` computing the routes (`fast_route`) and `Routes.drain` relaying them;
whatever has no valid route comes back for the Python path. Codec: a hypothesis fuzz of
the C ChannelData parser and packer against the Python ones. Skipped without the build.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_unit_support import NOW, Sim, make_server

from services.relay import fastpath
from services.relay.stun import Attr, Method
from services.relay.turn import Client, TurnServer
from services.relay.turn.channeldata import pack_channel_data, unpack_channel_data
from services.relay.turn.meter import Meter

fast: Any = fastpath.load()
if fast is None and os.environ.get("PARLEY_FASTPATH_REQUIRED"):
    raise RuntimeError("PARLEY_FASTPATH_REQUIRED: services/relay/_fastpath was not built")
pytestmark = pytest.mark.skipif(fast is None, reason="compiled packet path not built")
HOST = "127.0.0.1"


def test_load_off_forces_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fastpath.load("off") is None
    monkeypatch.setenv("PARLEY_RELAY_FASTPATH", "off")
    assert fastpath.load("auto") is None


@pytest.mark.parametrize("rate", [0.0, 1000.0])
def test_meter_matches_python(rate: float) -> None:
    c, py = fast.Meter(rate, NOW), Meter(rate, NOW)
    for i, size in enumerate([100, 500, 600, 10, 2000, 300, 0, 999]):
        now = NOW + i * 0.1
        assert c.spend(size, now) == py.spend(size, now)
        assert c.tokens == pytest.approx(py.tokens) and c.stamp == py.stamp
    c.packets_in += 3
    assert (c.packets_in, c.bytes_out, c.rate) == (3, 0, rate)


@settings(max_examples=400)
@given(st.binary(max_size=80), st.sampled_from([0x4FFF, 0x7FFF]))
def test_parse_matches_python_on_random_input(data: bytes, channel_max: int) -> None:
    expected = unpack_channel_data(data)
    if expected is not None and expected[0] > channel_max:
        expected = None
    if channel_max == 0x7FFF and len(data) >= 4:  # the Python codec is RFC 8656's range
        channel, length = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        if 0x5000 <= channel <= 0x7FFF and 4 + length <= len(data):
            expected = (channel, data[4 : 4 + length])
    assert fast.parse_channel_data(data, channel_max) == expected


@settings(max_examples=300)
@given(st.integers(0x4000, 0x4FFF), st.binary(max_size=300), st.booleans(), st.data())
def test_pack_and_truncated_parse_match_python(
    channel: int, payload: bytes, pad: bool, data: st.DataObject
) -> None:
    packed = fast.pack_channel_data(channel, payload, pad=pad)
    assert packed == pack_channel_data(channel, payload, pad=pad)
    cut = data.draw(st.integers(0, len(packed)))
    assert fast.parse_channel_data(packed[:cut]) == unpack_channel_data(packed[:cut])


class Net:
    """A relay listening socket, two client sockets and a peer socket on loopback."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self.listen = self.udp()
        self.relayed = self.udp()
        self.a, self.b, self.peer = self.udp(), self.udp(), self.udp()

    def udp(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.settimeout(2)
        self.socks.append(s)
        return s

    def addr(self, s: socket.socket) -> tuple[str, int]:
        return s.getsockname()[:2]  # type: ignore[no-any-return]

    def close(self) -> None:
        for s in self.socks:
            s.close()


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net()
    yield n
    n.close()


def drain_all(routes: Any, fd: int, now: float) -> list[tuple[bytes, tuple[str, int]]]:
    """Drain until the socket is empty (datagrams on loopback are queued at once)."""
    slow: list[tuple[bytes, tuple[str, int]]] = []
    while True:
        got = routes.drain(fd, now)
        slow.extend(got)
        if routes.last == 0:
            return slow


def two_allocations(net: Net, server: TurnServer) -> tuple[Sim, Sim, Any, Any]:
    a = Sim(server, Client("udp", net.addr(net.a)))
    b = Sim(server, Client("udp", net.addr(net.b)))
    b.next_port = 50100
    a.allocate()
    b.allocate()
    b_relayed = ("198.51.100.1", 50100)
    a_relayed = ("198.51.100.1", 50000)
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[b_relayed])
    b.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4321}, peers=[a_relayed])
    return a, b, a_relayed, b_relayed


def add(routes: Any, client: Client, channel: int, route: Any, fd: int = -1) -> None:
    routes.add(client.address, channel, route.local, fd, route.dest, route.channel,
               route.valid_until, route.src, route.dst)  # fmt: skip


def test_local_route_rewrites_header_and_charges_both(net: Net) -> None:
    server = make_server(bandwidth=100_000.0)
    server.meter_factory = fast.Meter
    a, b, _, _ = two_allocations(net, server)
    route = server.fast_route(a.client, 0x4000, NOW)
    assert route is not None and route.local and route.channel == 0x4321
    assert route.dest == a.client.address[:0] + net.addr(net.b)
    routes = fast.Routes()
    add(routes, a.client, 0x4000, route)
    net.a.sendto(pack_channel_data(0x4000, b"media") + b"\0\0\0", net.addr(net.listen))
    assert drain_all(routes, net.listen.fileno(), NOW) == []
    data, src = net.b.recvfrom(2048)
    assert data == pack_channel_data(0x4321, b"media") and src == net.addr(net.listen)
    alloc_a, alloc_b = server.allocation_for(a.client), server.allocation_for(b.client)
    assert alloc_a is not None and alloc_b is not None
    assert (alloc_a.meter.packets_out, alloc_a.meter.bytes_out) == (1, 5)
    assert (alloc_b.meter.packets_in, alloc_b.meter.bytes_in) == (1, 5)
    assert alloc_b.meter.tokens == pytest.approx(100_000 - 5)
    assert routes.local_delivered == 1


def test_kernel_route_sends_payload_from_relayed_socket(net: Net) -> None:
    server = make_server(allow_peer=["127.0.0.0/8"])
    server.meter_factory = fast.Meter
    a = Sim(server, Client("udp", net.addr(net.a)))
    a.allocate()
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4001}, peers=[net.addr(net.peer)])
    route = server.fast_route(a.client, 0x4001, NOW)
    assert route is not None and not route.local and route.dest == net.addr(net.peer)
    routes = fast.Routes()
    add(routes, a.client, 0x4001, route, fd=net.relayed.fileno())
    net.a.sendto(pack_channel_data(0x4001, b"out"), net.addr(net.listen))
    assert drain_all(routes, net.listen.fileno(), NOW) == []
    data, src = net.peer.recvfrom(2048)
    assert (data, src) == (b"out", net.addr(net.relayed))
    assert routes.forwarded == 1


def test_everything_else_comes_back_for_python(net: Net) -> None:
    server = make_server()
    server.meter_factory = fast.Meter
    a, _, _, _ = two_allocations(net, server)
    route = server.fast_route(a.client, 0x4000, NOW)
    routes = fast.Routes()
    add(routes, a.client, 0x4000, route)
    listen = net.addr(net.listen)
    stun = bytes.fromhex("000100002112a442") + b"t" * 12
    short = pack_channel_data(0x4000, b"abcdef")[:6]  # length says more than there is
    other = pack_channel_data(0x4001, b"x")  # no route for that channel
    for data in (stun, short, other, b"", b"\x40"):
        net.a.sendto(data, listen)
    net.b.sendto(pack_channel_data(0x4000, b"y"), listen)  # route is A's, not B's
    slow = drain_all(routes, net.listen.fileno(), NOW)
    assert [d for d, _ in slow] == [stun, short, other, b"", b"\x40",
                                    pack_channel_data(0x4000, b"y")]  # fmt: skip
    assert slow[0][1] == net.addr(net.a) and slow[-1][1] == net.addr(net.b)


def test_expired_route_and_empty_bucket_fall_back_or_drop(net: Net) -> None:
    server = make_server(bandwidth=10.0)
    server.meter_factory = fast.Meter
    a, _, _, _ = two_allocations(net, server)
    route = server.fast_route(a.client, 0x4000, NOW)
    assert route is not None and route.valid_until == NOW + 300  # B's permission first
    routes = fast.Routes()
    add(routes, a.client, 0x4000, route)
    listen, fd = net.addr(net.listen), net.listen.fileno()
    net.a.sendto(pack_channel_data(0x4000, b"z" * 50), listen)  # over A's 10 B bucket
    assert drain_all(routes, fd, NOW) == [] and routes.dropped == 1
    net.a.sendto(pack_channel_data(0x4000, b"z"), listen)
    slow = drain_all(routes, fd, NOW + 300)  # past valid_until: the core decides
    assert [d for d, _ in slow] == [pack_channel_data(0x4000, b"z")]
    assert server.channel_to_peer(a.client, slow[0][0], NOW + 300) is None
    routes.clear()
    assert routes.size() == 0


def test_routes_grow_and_replace() -> None:
    meter = fast.Meter(0.0, NOW)
    routes = fast.Routes()
    for i in range(3000):
        routes.add((HOST, 1000 + i % 60000), 0x4000 + i % 3, False, -1, (HOST, 9), 0, NOW, meter,
                   None)  # fmt: skip
    assert routes.size() == 3000
    routes.add((HOST, 1000), 0x4000, False, -1, (HOST, 10), 0, NOW, meter, None)
    assert routes.size() == 3000
    with pytest.raises(ValueError):
        routes.add(("not-ip", 1), 0x4000, False, -1, (HOST, 10), 0, NOW, meter, None)
    with pytest.raises(ValueError):
        routes.add((HOST, 1), 0x4000, True, -1, (HOST, 10), 0, NOW, meter, None)
    with pytest.raises(TypeError):
        routes.add((HOST, 1), 0x4000, False, -1, (HOST, 10), 0, NOW, object(), None)


def test_fast_route_only_for_the_common_case() -> None:
    server = make_server()
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    t = Sim(server, Client("tcp", ("203.0.113.6", 1), conn=2))
    t.next_port = 50100
    a.allocate()
    t.allocate()
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[("198.51.100.1", 50100)])
    t.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[("198.51.100.1", 50000)])
    assert server.fast_route(a.client, 0x4000, NOW) is None  # B is a stream client
    assert server.fast_route(t.client, 0x4000, NOW) is None  # A is a stream client
    assert server.fast_route(a.client, 0x4001, NOW) is None  # no such channel
    assert server.fast_route(a.client, 0x4000, NOW + 601) is None  # expired


def test_peer_route_wraps_channel_data_for_the_client(net: Net) -> None:
    server = make_server(allow_peer=["127.0.0.0/8"], bandwidth=1000.0)
    server.meter_factory = fast.Meter
    a = Sim(server, Client("udp", net.addr(net.a)))
    a.allocate()
    relayed = ("198.51.100.1", 50000)
    assert server.fast_peer_route(relayed, net.addr(net.peer), NOW) is None  # no channel yet
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4005}, peers=[net.addr(net.peer)])
    route = server.fast_peer_route(relayed, net.addr(net.peer), NOW)
    assert route is not None and route.dest == net.addr(net.a) and route.channel == 0x4005
    routes = fast.Routes()
    routes.add_peer(50000, net.addr(net.peer), route.dest, route.channel, route.valid_until,
                    route.src)  # fmt: skip
    fd, listen = net.relayed.fileno(), net.listen.fileno()
    net.peer.sendto(b"abc", net.addr(net.relayed))
    net.b.sendto(b"stranger", net.addr(net.relayed))  # no route: back to Python
    slow: list[Any] = []
    while True:
        slow.extend(routes.drain_peer(fd, 50000, listen, NOW))
        if routes.last == 0:
            break
    assert slow == [(b"stranger", net.addr(net.b))]
    data, src = net.a.recvfrom(2048)
    assert (data, src) == (pack_channel_data(0x4005, b"abc"), net.addr(net.listen))
    alloc = server.allocation_for(a.client)
    assert alloc is not None and (alloc.meter.packets_in, alloc.meter.bytes_in) == (1, 3)
    # another relayed port never matches this route
    net.peer.sendto(b"abc", net.addr(net.relayed))
    assert routes.drain_peer(fd, 50001, listen, NOW) == [(b"abc", net.addr(net.peer))]
