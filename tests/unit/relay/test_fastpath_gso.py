"""UDP GSO on the compiled packet path: a batch's same-size runs to one client in one send.

Real loopback sockets, a real `TurnServer` computing the routes. Loopback queues datagrams
at once, so one `drain`/`drain_peer` reads a whole burst: the burst's runs leave as
UDP_SEGMENT super-datagrams (counted in `gso_sent`), and the client still receives every
datagram on its own, in order, with its size. A kernel that refuses GSO (here: a socket
with SO_NO_CHECK, which the kernel answers with EINVAL) turns `gso` off and loses nothing.
Skipped without the build.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from relay_unit_support import NOW, Sim, make_server

from services.relay import fastpath
from services.relay.stun import Attr, Method
from services.relay.turn import Client
from services.relay.turn.channeldata import pack_channel_data

fast: Any = fastpath.load()
pytestmark = pytest.mark.skipif(fast is None, reason="compiled packet path not built")
HOST = "127.0.0.1"
SO_NO_CHECK = 11  # Linux: send without UDP checksums, which GSO refuses (EINVAL)
RELAYED_PORT = 50000


@pytest.fixture
def socks() -> Iterator[dict[str, socket.socket]]:
    made = {}
    for name in ("listen", "relayed", "client", "peer"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.settimeout(2)
        made[name] = s
    yield made
    for s in made.values():
        s.close()


def addr(s: socket.socket) -> tuple[str, int]:
    return s.getsockname()[:2]  # type: ignore[no-any-return]


def peer_routes(socks: dict[str, socket.socket], *, gso: bool) -> Any:
    """Routes with a peer route: datagrams from `peer` on the relayed socket go to `client`."""
    server = make_server(allow_peer=["127.0.0.0/8"], bandwidth=0.0)
    server.meter_factory = fast.Meter
    a = Sim(server, Client("udp", addr(socks["client"])))
    a.allocate()
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4005}, peers=[addr(socks["peer"])])
    route = server.fast_peer_route(("198.51.100.1", RELAYED_PORT), addr(socks["peer"]), NOW)
    assert route is not None
    routes = fast.Routes()
    routes.gso = gso
    routes.add_peer(RELAYED_PORT, addr(socks["peer"]), route.dest, route.channel,
                    route.valid_until, route.src)  # fmt: skip
    return routes


def relay_burst(socks: dict[str, socket.socket], routes: Any, sizes: list[int]) -> list[bytes]:
    """The peer sends payloads of `sizes`; one drain_peer relays them; what the client got."""
    payloads = [bytes([i]) * size for i, size in enumerate(sizes)]
    for p in payloads:
        socks["peer"].sendto(p, addr(socks["relayed"]))
    slow = routes.drain_peer(socks["relayed"].fileno(), RELAYED_PORT, socks["listen"].fileno(), NOW)
    assert slow == [] and routes.last == len(sizes)  # the whole burst in one drain
    got = [socks["client"].recv(70000) for _ in sizes]
    assert got == [pack_channel_data(0x4005, p) for p in payloads]
    socks["client"].setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing more: no super-datagram, no duplicate
        socks["client"].recv(70000)
    return got


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "plain"])
def test_gso_equal_burst_arrives_datagram_by_datagram(
    socks: dict[str, socket.socket], gso: bool
) -> None:
    routes = peer_routes(socks, gso=gso)
    relay_burst(socks, routes, [1180] * 8)
    assert (routes.gso_sent, routes.gso_segments) == ((1, 8) if gso else (0, 0))
    assert routes.forwarded == 8 and routes.dropped == 0 and routes.gso == gso


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "plain"])
def test_gso_shorter_last_and_mixed_sizes(socks: dict[str, socket.socket], gso: bool) -> None:
    routes = peer_routes(socks, gso=gso)
    # runs: 4x1200 ending in a shorter 700; a lone 90; 3x160; a larger 1201 after them
    # (ends a run); 2x1201; a lone 1500 (over the segment cap of 1400)
    relay_burst(socks, routes, [1200, 1200, 1200, 1200, 700, 90, 160, 160, 160, 1201, 1201,
                                1500])  # fmt: skip
    assert (routes.gso_sent, routes.gso_segments) == ((3, 10) if gso else (0, 0))


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "plain"])
def test_gso_in_process_burst_between_allocations(
    socks: dict[str, socket.socket], gso: bool
) -> None:
    server = make_server(bandwidth=0.0)
    server.meter_factory = fast.Meter
    a = Sim(server, Client("udp", addr(socks["peer"])))  # A: the sending allocation's client
    b = Sim(server, Client("udp", addr(socks["client"])))
    b.next_port = 50100
    a.allocate()
    b.allocate()
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[("198.51.100.1", 50100)])
    b.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4321}, peers=[("198.51.100.1", 50000)])
    route = server.fast_route(a.client, 0x4000, NOW)
    assert route is not None and route.local
    routes = fast.Routes()
    routes.gso = gso
    routes.add(a.client.address, 0x4000, True, -1, route.dest, route.channel,
               route.valid_until, route.src, route.dst)  # fmt: skip
    payloads = [bytes([i]) * 1100 for i in range(6)] + [b"tail"]
    for p in payloads:
        socks["peer"].sendto(pack_channel_data(0x4000, p), addr(socks["listen"]))
    assert routes.drain(socks["listen"].fileno(), NOW) == [] and routes.last == 7
    got = [socks["client"].recv(70000) for _ in payloads]
    assert got == [pack_channel_data(0x4321, p) for p in payloads]
    assert (routes.gso_sent, routes.gso_segments) == ((1, 7) if gso else (0, 0))
    assert routes.local_delivered == 7


def test_gso_refused_by_the_kernel_falls_back_and_turns_off(
    socks: dict[str, socket.socket],
) -> None:
    socks["listen"].setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    routes = peer_routes(socks, gso=True)
    relay_burst(socks, routes, [400] * 5 + [60, 60])
    assert routes.gso is False and routes.gso_sent == 0 and routes.dropped == 0
    relay_burst(socks, routes, [400] * 3)  # off from now on: plain sends
    assert routes.gso_sent == 0
