"""In-process delivery: a client sending to another allocation of the same TURN core.

Allocation A (client CA) sends to B's relayed address; the core hands the packet to B's
client itself instead of emitting `ToPeer`, applying the rules of the kernel path: A's
permission and bandwidth, B's permission for A's relayed IP, B's bandwidth, ChannelData
if B bound a channel to A's relayed address, else a Data indication from A's relayed address.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from relay_unit_support import NOW, RELAY_IP, Sim, error_code, make_server

from services.relay import fastpath
from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize
from services.relay.turn import Client, ToClient, ToPeer, TurnServer
from services.relay.turn.channeldata import pack_channel_data
from services.relay.turn.meter import Meter

A_RELAYED = (RELAY_IP, 50000)
B_RELAYED = (RELAY_IP, 50100)


def pair(server: TurnServer, *, b_transport: str = "udp") -> tuple[Sim, Sim]:
    """Two allocated clients of `server`: A on port 50000, B on 50100."""
    a = Sim(server, Client("udp", ("203.0.113.5", 40000)))
    conn = 0 if b_transport == "udp" else 7
    b = Sim(server, Client(b_transport, ("203.0.113.6", 40001), conn=conn))
    b.next_port = 50100
    assert a.allocate().get(Attr.XOR_RELAYED_ADDRESS) == A_RELAYED
    assert b.allocate().get(Attr.XOR_RELAYED_ADDRESS) == B_RELAYED
    return a, b


def permit(sim: Sim, peer: tuple[str, int], now: float = NOW) -> None:
    response, _ = sim.request(Method.CREATE_PERMISSION, peers=[peer], now=now)
    assert error_code(response) is None


def bind(sim: Sim, number: int, peer: tuple[str, int], now: float = NOW) -> None:
    attrs: dict[Attr, Any] = {Attr.CHANNEL_NUMBER: number}
    response, _ = sim.request(Method.CHANNEL_BIND, attrs, peers=[peer], now=now)
    assert error_code(response) is None


def send_indication(peer: tuple[str, int], data: bytes) -> bytes:
    return serialize(
        Message(Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: data},
                peer_addresses=[peer])
    )  # fmt: skip


_FAST: Any = fastpath.load()
METERS = [
    pytest.param(Meter, id="python"),
    pytest.param(
        getattr(_FAST, "Meter", None), id="compiled",
        marks=pytest.mark.skipif(_FAST is None, reason="compiled packet path not built"),
    ),
]  # fmt: skip


@pytest.fixture(params=METERS)
def new_server(request: pytest.FixtureRequest) -> Any:
    """Makes cores whose allocations meter with the Python or the compiled `Meter`."""

    def make(**overrides: Any) -> TurnServer:
        server = make_server(**overrides)
        server.meter_factory = request.param
        return server

    return make


@pytest.fixture
def core(new_server: Any) -> TurnServer:
    return new_server()  # type: ignore[no-any-return]


def test_send_indication_becomes_data_indication_from_a_relayed(core: TurnServer) -> None:
    a, b = pair(core)
    permit(a, B_RELAYED)
    permit(b, A_RELAYED)
    outputs = core.handle_client(a.client, send_indication(B_RELAYED, b"hello"), NOW)
    assert len(outputs) == 1 and isinstance(outputs[0], ToClient)
    assert outputs[0].client == b.client
    msg = parse_message(outputs[0].data)
    assert (msg.method, msg.message_class) == (Method.DATA, Class.INDICATION)
    assert msg.peer_addresses == [A_RELAYED] and msg.get(Attr.DATA) == b"hello"
    assert core.stats.local_delivered == 1 and core.stats.dropped == 0


def test_channel_data_to_a_channel_on_b(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4abc, A_RELAYED)
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"media"), NOW)
    assert out == ToClient(b.client, pack_channel_data(0x4ABC, b"media"))
    back = core.channel_to_peer(b.client, pack_channel_data(0x4ABC, b"back"), NOW)
    assert back == ToClient(a.client, pack_channel_data(0x4000, b"back"))


def test_channel_data_without_channel_on_b_is_a_data_indication(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    permit(b, A_RELAYED)
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x" * 7), NOW)
    assert isinstance(out, ToClient) and out.client == b.client
    msg = parse_message(out.data)
    assert msg.method == Method.DATA and msg.peer_addresses == [A_RELAYED]
    assert msg.get(Attr.DATA) == b"x" * 7


def test_channel_on_b_padded_when_b_is_a_stream(core: TurnServer) -> None:
    a, b = pair(core, b_transport="tcp")
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4001, A_RELAYED)
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"xyz"), NOW)
    assert out == ToClient(b.client, b"\x40\x01\x00\x03xyz\x00")


def test_permission_denied_at_b(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW) is None
    assert core.handle_client(a.client, send_indication(B_RELAYED, b"x"), NOW) == []
    assert core.stats.dropped == 2
    alloc_a, alloc_b = core.allocation_for(a.client), core.allocation_for(b.client)
    assert alloc_a is not None and alloc_b is not None
    # like the kernel path: A sent it out (counted at A), B's side dropped it
    assert (alloc_a.meter.packets_out, alloc_b.meter.packets_in) == (2, 0)


def test_no_permission_at_a_is_dropped_before_b(core: TurnServer) -> None:
    a, b = pair(core)
    permit(b, A_RELAYED)
    assert core.handle_client(a.client, send_indication(B_RELAYED, b"x"), NOW) == []
    alloc_b = core.allocation_for(b.client)
    assert alloc_b is not None and alloc_b.meter.packets_in == 0


def test_expiry_of_b_permission_and_a_channel(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED, now=NOW)
    permit(b, A_RELAYED, now=NOW)
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW + 299) is not None
    # B's permission (300 s) lapses; A's channel (600 s) and its permission refresh remain
    permit(a, B_RELAYED, now=NOW + 299)
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW + 301) is None
    permit(b, A_RELAYED, now=NOW + 400)
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW + 401) is not None
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW + 601) is None


def test_deleted_b_falls_back_to_kernel_path(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    response, _ = b.request(Method.REFRESH, {Attr.LIFETIME: 0})
    assert error_code(response) is None
    # B's relayed port is no longer live: the channel's peer is now an ordinary address
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW)
    assert out == ToPeer(A_RELAYED, B_RELAYED, b"x")


def test_quota_and_bandwidth_charged_to_both(new_server: Any) -> None:
    core = new_server(bandwidth=1000.0)
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4001, A_RELAYED)
    alloc_a, alloc_b = core.allocation_for(a.client), core.allocation_for(b.client)
    assert alloc_a is not None and alloc_b is not None
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"y" * 600), NOW)
    assert isinstance(out, ToClient)
    assert (alloc_a.meter.packets_out, alloc_a.meter.bytes_out) == (1, 600)
    assert (alloc_b.meter.packets_in, alloc_b.meter.bytes_in) == (1, 600)
    assert alloc_a.meter.tokens == pytest.approx(400) and alloc_b.meter.tokens == pytest.approx(400)
    # B's bucket is short now: B's own traffic to A is refused by B's cap, A's is spared
    assert core.channel_to_peer(b.client, pack_channel_data(0x4001, b"z" * 500), NOW) is None
    assert alloc_a.meter.bytes_in == 0
    assert core.relayed_totals() == (2, 1200)


def test_bandwidth_at_b_drops_a_packet_a_could_send(new_server: Any) -> None:
    core = new_server(bandwidth=1000.0)
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4001, A_RELAYED)
    alloc_b = core.allocation_for(b.client)
    assert alloc_b is not None
    alloc_b.meter.tokens = 10.0
    assert core.channel_to_peer(a.client, pack_channel_data(0x4000, b"y" * 100), NOW) is None
    assert alloc_b.meter.packets_in == 0


def test_setting_off_always_uses_the_kernel_path(new_server: Any) -> None:
    core = new_server(local_delivery=False)
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4001, A_RELAYED)
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW)
    assert out == ToPeer(A_RELAYED, B_RELAYED, b"x")
    assert core.stats.local_delivered == 0


def test_other_workers_relayed_address_goes_through_the_kernel(core: TurnServer) -> None:
    """A live relayed port held by another worker (the shared live-port table) is not ours."""
    core.live_ports.add(50500)
    a, _ = pair(core)
    other = (RELAY_IP, 50500)
    bind(a, 0x4000, other)
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"x"), NOW)
    assert out == ToPeer(A_RELAYED, other, b"x")


def test_deny_list_still_applies_to_send(core: TurnServer) -> None:
    """A relayed port that is not live is refused like any address of the relay's own."""
    a, _ = pair(core)
    permit(a, B_RELAYED)
    assert core.handle_client(a.client, send_indication((RELAY_IP, 50999), b"x"), NOW) == []


def test_handle_client_returns_local_delivery_as_a_list(core: TurnServer) -> None:
    a, b = pair(core)
    bind(a, 0x4000, B_RELAYED)
    bind(b, 0x4001, A_RELAYED)
    outs: list[Any] = core.handle_client(a.client, pack_channel_data(0x4000, b"q"), NOW)
    assert outs == [ToClient(b.client, pack_channel_data(0x4001, b"q"))]
