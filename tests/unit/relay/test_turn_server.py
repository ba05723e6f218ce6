"""TURN core: every state transition and error code, no sockets, no clock."""

from __future__ import annotations

import os

import pytest
from relay_unit_support import NOW, RELAY_IP, Sim, error_code, make_server

from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize
from services.relay.turn import Client, CloseRelay, OpenRelay, ToClient, ToPeer, TurnServer
from services.relay.turn.channeldata import pack_channel_data

PEER = ("192.0.2.77", 6000)  # TEST-NET-1 is reserved: tests that relay open it explicitly


@pytest.fixture
def open_server() -> TurnServer:
    return make_server(allow_peer=["192.0.2.0/24"])


@pytest.fixture
def osim(open_server: TurnServer) -> Sim:
    return Sim(open_server, Client("udp", ("203.0.113.5", 40000)))


def test_binding_request_no_auth(sim: Sim) -> None:
    response, _ = sim.request(Method.BINDING, auth=False)
    assert response is not None and response.message_class is Class.RESPONSE
    assert response.get(Attr.XOR_MAPPED_ADDRESS) == ("203.0.113.5", 40000)


def test_allocate_without_integrity_401_with_realm_nonce(sim: Sim) -> None:
    response, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17}, auth=False)
    assert error_code(response) == 401
    assert response is not None and response.get(Attr.REALM) == "parley"
    assert sim.server.auth.nonce_fresh(response.get(Attr.NONCE), NOW)
    assert response.integrity_offset < 0


def test_allocate_success(sim: Sim) -> None:
    response = sim.allocate()
    assert response.message_class is Class.RESPONSE
    assert response.get(Attr.XOR_RELAYED_ADDRESS) == (RELAY_IP, 50000)
    assert response.get(Attr.XOR_MAPPED_ADDRESS) == ("203.0.113.5", 40000)
    assert response.get(Attr.LIFETIME) == 600
    from services.relay.stun import verify_integrity

    assert verify_integrity(response, sim.key)
    assert sim.server.allocation_count == 1


def test_allocate_sha256_integrity_answered_in_kind(sim: Sim) -> None:
    response, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17}, sha256=True)
    assert response is not None and response.integrity_sha256_offset > 0


def test_allocate_retransmission_same_response(sim: Sim) -> None:
    txid = os.urandom(12)
    first, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17}, txid=txid)
    again, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17}, txid=txid)
    assert first is not None and again is not None and first.raw == again.raw


def test_allocate_twice_437(sim: Sim) -> None:
    sim.allocate()
    assert error_code(sim.allocate()) == 437


def test_allocate_missing_transport_400(sim: Sim) -> None:
    response, _ = sim.request(Method.ALLOCATE, {})
    assert error_code(response) == 400


def test_allocate_tcp_transport_442(sim: Sim) -> None:
    response, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 6})
    assert error_code(response) == 442


def test_allocate_dont_fragment_420(sim: Sim) -> None:
    response, _ = sim.request(
        Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17, Attr.DONT_FRAGMENT: None}
    )
    assert error_code(response) == 420
    assert response is not None and response.get(Attr.UNKNOWN_ATTRIBUTES) == [0x001A]


def test_allocate_unknown_comprehension_required_420(sim: Sim) -> None:
    msg = Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {Attr.REQUESTED_TRANSPORT: 17})
    sim.nonce = sim.server.auth.nonce(NOW)
    msg.attributes.update(
        {Attr.USERNAME: sim.username, Attr.REALM: "parley", Attr.NONCE: sim.nonce}
    )
    data = serialize(msg)
    unknown = b"\x7f\x33\x00\x04abcd"
    body = data[20:] + unknown
    data = data[:2] + len(body).to_bytes(2, "big") + data[4:20] + body
    raw_mi = _sign_raw(data, sim.key)  # the unknown attribute sits inside the integrity
    response, _ = sim.deliver(raw_mi)
    assert error_code(response) == 420
    assert response is not None and response.get(Attr.UNKNOWN_ATTRIBUTES) == [0x7F33]


def _sign_raw(data: bytes, key: bytes) -> bytes:
    import hashlib
    import hmac

    length = len(data) - 20 + 24
    head = data[:2] + length.to_bytes(2, "big") + data[4:]
    return head + b"\x00\x08\x00\x14" + hmac.new(key, head, hashlib.sha1).digest()


def test_allocate_ipv6_family_440(sim: Sim) -> None:
    response, _ = sim.request(
        Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17, Attr.REQUESTED_ADDRESS_FAMILY: 2}
    )
    assert error_code(response) == 440


def test_allocate_reservation_token_508(sim: Sim) -> None:
    response, _ = sim.request(
        Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17, Attr.RESERVATION_TOKEN: b"12345678"}
    )
    assert error_code(response) == 508


def test_allocate_even_port_asks_shell(server: TurnServer) -> None:
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    sim.nonce = server.auth.nonce(NOW)
    msg = Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {
        Attr.REQUESTED_TRANSPORT: 17, Attr.EVEN_PORT: True, Attr.USERNAME: sim.username,
        Attr.REALM: "parley", Attr.NONCE: sim.nonce})  # fmt: skip
    outputs = server.handle_client(sim.client, serialize(msg, integrity_key=sim.key), NOW)
    assert outputs == [OpenRelay(sim.client, even_port=True)]


def test_allocate_relay_failed_508(server: TurnServer) -> None:
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    sim.nonce = server.auth.nonce(NOW)
    msg = Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {
        Attr.REQUESTED_TRANSPORT: 17, Attr.USERNAME: sim.username,
        Attr.REALM: "parley", Attr.NONCE: sim.nonce})  # fmt: skip
    outputs = server.handle_client(sim.client, serialize(msg, integrity_key=sim.key), NOW)
    assert isinstance(outputs[0], OpenRelay)
    [reply] = server.relay_failed(sim.client, NOW)
    assert isinstance(reply, ToClient) and error_code(parse_message(reply.data)) == 508
    assert server.allocation_count == 0


def test_allocate_user_quota_486() -> None:
    server = make_server(user_quota=2)
    sims = [Sim(server, Client("udp", ("203.0.113.5", p))) for p in (1, 2, 3)]
    for s in sims[1:]:
        s.username, s.password = sims[0].username, sims[0].password
    assert error_code(sims[0].allocate()) is None
    sims[1].next_port = 50001
    assert error_code(sims[1].allocate()) is None
    assert error_code(sims[2].allocate()) == 486


def test_allocate_total_quota_508() -> None:
    server = make_server(total_quota=1)
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    b = Sim(server, Client("udp", ("203.0.113.5", 2)))
    assert error_code(a.allocate()) is None
    assert error_code(b.allocate()) == 508


def test_allocate_draining_508(sim: Sim) -> None:
    sim.server.draining = True
    assert error_code(sim.allocate()) == 508


def test_allocate_expired_username_401(server: TurnServer) -> None:
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    response = sim.allocate(now=NOW + 3601)
    assert error_code(response) == 401


def test_allocate_wrong_password_401(sim: Sim) -> None:
    response, _ = sim.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17}, key=b"x" * 16)
    assert error_code(response) == 401


def test_allocate_wrong_secret_401(server: TurnServer) -> None:
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)), secret="other")
    assert error_code(sim.allocate()) == 401


def test_allocate_previous_secret_accepted() -> None:
    server = make_server(secrets=("new", "s3cret"))
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    assert error_code(sim.allocate()) is None


def test_set_secrets_rotation_drops_old(server: TurnServer) -> None:
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    server.set_secrets(["newer", "new"])
    assert error_code(sim.allocate()) == 401


def test_allocate_stale_nonce_438(sim: Sim) -> None:
    sim.nonce = sim.server.auth.nonce(NOW - 601)
    response = sim.allocate()
    assert error_code(response) == 438
    assert response.get(Attr.REALM) == "parley"
    sim.nonce = response.get(Attr.NONCE)
    assert error_code(sim.allocate()) is None


def test_allocate_forged_nonce_438(sim: Sim) -> None:
    sim.nonce = "6553f100-0000000000000000"
    assert error_code(sim.allocate()) == 438


def test_allocate_missing_realm_400(sim: Sim) -> None:
    msg = Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {
        Attr.REQUESTED_TRANSPORT: 17, Attr.USERNAME: sim.username})  # fmt: skip
    response, _ = sim.deliver(serialize(msg, integrity_key=sim.key))
    assert error_code(response) == 400


def test_allocate_wrong_realm_401(sim: Sim) -> None:
    sim.nonce = sim.server.auth.nonce(NOW)
    msg = Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {
        Attr.REQUESTED_TRANSPORT: 17, Attr.USERNAME: sim.username, Attr.REALM: "other",
        Attr.NONCE: sim.nonce})  # fmt: skip
    response, _ = sim.deliver(serialize(msg, integrity_key=sim.key))
    assert error_code(response) == 401


def test_malformed_attribute_400(sim: Sim) -> None:
    data = bytearray(serialize(Message(Method.ALLOCATE, Class.REQUEST, os.urandom(12), {
        Attr.LIFETIME: 5})))  # fmt: skip
    data[22:24] = b"\x00\x02"  # LIFETIME of length 2 (then 2 bytes of padding)
    response, _ = sim.deliver(bytes(data))
    assert error_code(response) == 400


def test_unknown_method_400(sim: Sim) -> None:
    response, _ = sim.request(Method.DATA)
    assert error_code(response) == 400


def test_refresh_without_allocation_437(sim: Sim) -> None:
    response, _ = sim.request(Method.REFRESH, {Attr.LIFETIME: 600})
    assert error_code(response) == 437


def test_refresh_extends_lifetime(sim: Sim) -> None:
    sim.allocate()
    response, _ = sim.request(Method.REFRESH, {Attr.LIFETIME: 100000}, now=NOW + 500)
    assert response is not None and response.get(Attr.LIFETIME) == 3600
    alloc = sim.server.allocation_for(sim.client)
    assert alloc is not None and alloc.expires == NOW + 500 + 3600


def test_refresh_zero_deletes(sim: Sim) -> None:
    sim.allocate()
    response, outputs = sim.request(Method.REFRESH, {Attr.LIFETIME: 0})
    assert response is not None and response.get(Attr.LIFETIME) == 0
    assert CloseRelay((RELAY_IP, 50000)) in outputs
    assert sim.server.allocation_count == 0


def test_refresh_other_username_441(sim: Sim) -> None:
    sim.allocate()
    other = Sim(sim.server, sim.client)
    response, _ = other.request(Method.REFRESH, {Attr.LIFETIME: 600})
    assert error_code(response) == 441


def test_refresh_family_mismatch_443(sim: Sim) -> None:
    sim.allocate()
    response, _ = sim.request(Method.REFRESH, {Attr.REQUESTED_ADDRESS_FAMILY: 2})
    assert error_code(response) == 443


def test_allocation_expires(sim: Sim) -> None:
    sim.allocate()
    assert sim.server.expire(NOW + 599) == []
    assert sim.server.expire(NOW + 601) == [CloseRelay((RELAY_IP, 50000))]
    assert sim.server.allocation_count == 0


def test_client_closed_deletes_stream_allocation(server: TurnServer) -> None:
    sim = Sim(server, Client("tcp", ("203.0.113.5", 1), conn=7))
    sim.allocate()
    assert server.client_closed(sim.client, NOW) == [CloseRelay((RELAY_IP, 50000))]


def test_create_permission_without_peer_400(osim: Sim) -> None:
    osim.allocate()
    response, _ = osim.request(Method.CREATE_PERMISSION)
    assert error_code(response) == 400


@pytest.mark.parametrize(
    "peer", [("127.0.0.1", 1), ("10.1.2.3", 1), ("169.254.169.254", 80), ("::ffff:10.0.0.1", 1)]
)
def test_create_permission_denied_peer_403(sim: Sim, peer: tuple[str, int]) -> None:
    sim.allocate()
    response, _ = sim.request(Method.CREATE_PERMISSION, peers=[peer])
    code = error_code(response)
    assert code == (443 if ":" in peer[0] else 403)


def test_create_permission_all_or_nothing(osim: Sim) -> None:
    osim.allocate()
    response, _ = osim.request(Method.CREATE_PERMISSION, peers=[PEER, ("10.0.0.1", 1)])
    assert error_code(response) == 403
    alloc = osim.server.allocation_for(osim.client)
    assert alloc is not None and not alloc.permissions


def test_create_permission_too_many_508() -> None:
    server = make_server(allow_peer=["192.0.2.0/24"], max_permissions=2)
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    sim.allocate()
    peers = [("192.0.2.1", 1), ("192.0.2.2", 1), ("192.0.2.3", 1)]
    response, _ = sim.request(Method.CREATE_PERMISSION, peers=peers)
    assert error_code(response) == 508


def test_send_indication_relays_with_permission(osim: Sim) -> None:
    osim.allocate()
    send = Message(
        Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: b"hi"}, peer_addresses=[PEER]
    )
    assert osim.server.handle_client(osim.client, serialize(send), NOW) == []
    response, _ = osim.request(Method.CREATE_PERMISSION, peers=[PEER])
    assert error_code(response) is None
    outputs = osim.server.handle_client(osim.client, serialize(send), NOW)
    assert outputs == [ToPeer((RELAY_IP, 50000), PEER, b"hi")]
    assert osim.server.handle_client(osim.client, serialize(send), NOW + 301) == []


def test_peer_data_becomes_data_indication(osim: Sim) -> None:
    osim.allocate()
    assert osim.server.peer_to_client((RELAY_IP, 50000), PEER, b"x", NOW) is None
    osim.request(Method.CREATE_PERMISSION, peers=[PEER])
    out = osim.server.peer_to_client((RELAY_IP, 50000), PEER, b"hello", NOW)
    assert out is not None
    msg = parse_message(out.data)
    assert (msg.method, msg.message_class) == (Method.DATA, Class.INDICATION)
    assert msg.peer_addresses == [PEER] and msg.get(Attr.DATA) == b"hello"


def test_channel_bind_and_channel_data_both_ways(osim: Sim) -> None:
    osim.allocate()
    response, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4001}, peers=[PEER])
    assert error_code(response) is None
    out = osim.server.handle_client(osim.client, pack_channel_data(0x4001, b"abc"), NOW)
    assert out == [ToPeer((RELAY_IP, 50000), PEER, b"abc")]
    back = osim.server.peer_to_client((RELAY_IP, 50000), PEER, b"xyz", NOW)
    assert back is not None and back.data == b"\x40\x01\x00\x03xyz"


def test_channel_data_padded_on_tcp(open_server: TurnServer) -> None:
    sim = Sim(open_server, Client("tcp", ("203.0.113.5", 1), conn=3))
    sim.allocate()
    sim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    back = open_server.peer_to_client((RELAY_IP, 50000), PEER, b"xyz", NOW)
    assert back is not None and back.data == b"\x40\x00\x00\x03xyz\x00"


@pytest.mark.parametrize("number", [0x3FFF, 0x5000, 0x0000, 0xFFFF])
def test_channel_bind_bad_number_400(osim: Sim, number: int) -> None:
    osim.allocate()
    response, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: number}, peers=[PEER])
    assert error_code(response) == 400


def test_channel_bind_missing_peer_400(osim: Sim) -> None:
    osim.allocate()
    response, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000})
    assert error_code(response) == 400


def test_channel_bind_denied_peer_403(sim: Sim) -> None:
    sim.allocate()
    response, _ = sim.request(
        Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[("10.0.0.1", 1)]
    )
    assert error_code(response) == 403


def test_channel_bind_rebinding_rules(osim: Sim) -> None:
    osim.allocate()
    other = ("192.0.2.78", 6000)
    ok, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    assert error_code(ok) is None
    refresh, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    assert error_code(refresh) is None
    same_number, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[other])
    assert error_code(same_number) == 400
    same_peer, _ = osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4002}, peers=[PEER])
    assert error_code(same_peer) == 400


def test_channel_expiry_and_cooldown(osim: Sim) -> None:
    osim.allocate()
    osim.request(Method.REFRESH, {Attr.LIFETIME: 3600})
    osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    later = NOW + 601
    osim.server.expire(later)
    assert osim.server.handle_client(osim.client, pack_channel_data(0x4000, b"a"), later) == []
    osim.nonce = osim.server.auth.nonce(later)
    other = ("192.0.2.78", 1)
    r, _ = osim.request(
        Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[other], now=later
    )
    assert error_code(r) == 400  # still cooling down (RFC 8656 §12)
    much_later = NOW + 901
    osim.server.expire(much_later)
    osim.nonce = osim.server.auth.nonce(much_later)
    r, _ = osim.request(
        Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[other], now=much_later
    )
    assert error_code(r) is None


def test_permission_expires_blocks_peer_data(osim: Sim) -> None:
    osim.allocate()
    osim.request(Method.CREATE_PERMISSION, peers=[PEER])
    assert osim.server.peer_to_client((RELAY_IP, 50000), PEER, b"x", NOW + 299) is not None
    osim.server.expire(NOW + 301)
    assert osim.server.peer_to_client((RELAY_IP, 50000), PEER, b"x", NOW + 301) is None


def test_channel_data_unbound_dropped(osim: Sim) -> None:
    osim.allocate()
    assert osim.server.handle_client(osim.client, pack_channel_data(0x4000, b"a"), NOW) == []


def test_channel_data_truncated_dropped(osim: Sim) -> None:
    osim.allocate()
    osim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    assert osim.server.handle_client(osim.client, b"\x40\x00\x00\x10abc", NOW) == []


def test_own_relayed_address_reachable(server: TurnServer) -> None:
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    b = Sim(server, Client("udp", ("203.0.113.6", 1)))
    a.allocate()
    b.next_port = 50001
    b.allocate()
    r, _ = a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[(RELAY_IP, 50001)])
    assert error_code(r) is None
    r, _ = a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4001}, peers=[(RELAY_IP, 22)])
    assert error_code(r) == 403  # the relay's IP, but not one of its relayed ports


def test_send_to_relay_ip_outside_port_range_dropped(server: TurnServer) -> None:
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    a.allocate()
    b = Sim(server, Client("udp", ("203.0.113.6", 1)))
    b.next_port = 50001
    b.allocate()
    r, _ = a.request(Method.CREATE_PERMISSION, peers=[(RELAY_IP, 0)])
    assert error_code(r) is None
    r, _ = b.request(Method.CREATE_PERMISSION, peers=[(RELAY_IP, 0)])
    assert error_code(r) is None  # B lets A's relayed address in (in-process delivery checks it)
    # only a live relayed socket: not a port outside the range, nor a free one inside it
    for port, relayed in ((22, False), (50010, False), (50001, True)):
        send = Message(Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: b"x"},
                       peer_addresses=[(RELAY_IP, port)])  # fmt: skip
        assert bool(server.handle_client(a.client, serialize(send), NOW)) is relayed


def test_rate_limit_drops_excess_requests() -> None:
    server = make_server(request_rate=1.0, request_burst=3.0)
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    replies = [sim.request(Method.BINDING, auth=False)[0] for _ in range(5)]
    assert [r is not None for r in replies] == [True, True, True, False, False]
    assert server.stats.rate_limited == 2
    assert sim.request(Method.BINDING, auth=False, now=NOW + 1.0)[0] is not None


def test_bandwidth_cap_drops_excess() -> None:
    server = make_server(allow_peer=["192.0.2.0/24"], bandwidth=1000.0)
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    sim.allocate()
    sim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[PEER])
    sent = [
        server.handle_client(sim.client, pack_channel_data(0x4000, b"x" * 400), NOW)
        for _ in range(4)
    ]
    assert [bool(s) for s in sent] == [True, True, False, False]
    assert server.handle_client(sim.client, pack_channel_data(0x4000, b"x" * 400), NOW + 1)


def test_response_and_indication_from_client_dropped(sim: Sim) -> None:
    msg = Message(Method.BINDING, Class.RESPONSE, os.urandom(12))
    assert sim.server.handle_client(sim.client, serialize(msg), NOW) == []
    assert sim.server.stats.dropped == 1


def test_close_all_deletes_everything(sim: Sim) -> None:
    sim.allocate()
    assert sim.server.close_all() == [CloseRelay((RELAY_IP, 50000))]
    assert sim.server.relayed_totals() == (0, 0)


def test_channel_bind_rfc5766_range_when_enabled() -> None:
    server = make_server(allow_peer=["192.0.2.0/24"], channel_max=0x7FFF)
    sim = Sim(server, Client("udp", ("203.0.113.5", 1)))
    sim.allocate()
    ok, _ = sim.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x56FD}, peers=[PEER])
    assert error_code(ok) is None
    bad, _ = sim.request(
        Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x8000}, peers=[("192.0.2.9", 1)]
    )
    assert error_code(bad) == 400
    assert server.handle_client(sim.client, pack_channel_data(0x56FD, b"z"), NOW) == [
        ToPeer((RELAY_IP, 50000), PEER, b"z")
    ]


def test_listener_in_relayed_range_refused() -> None:
    # the dev stack's old shape: the listening port fell inside the relayed range
    server = make_server(listen_ports=(50500,), allow_peer=["198.51.100.0/24"])
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    a.allocate()
    r, _ = a.request(Method.CREATE_PERMISSION, peers=[(RELAY_IP, 0)])
    assert error_code(r) is None
    for host in (RELAY_IP, "127.0.0.1", "0.0.0.0"):
        r, _ = a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[(host, 50500)])
        assert error_code(r) == 403, host
    binding = serialize(Message(Method.BINDING, Class.REQUEST, os.urandom(12)))
    send = Message(Method.SEND, Class.INDICATION, os.urandom(12), {Attr.DATA: binding},
                   peer_addresses=[(RELAY_IP, 50500)])  # fmt: skip
    assert server.handle_client(a.client, serialize(send), NOW) == []


def test_live_ports_follow_allocations(server: TurnServer) -> None:
    a = Sim(server, Client("udp", ("203.0.113.5", 1)))
    b = Sim(server, Client("udp", ("203.0.113.6", 1)))
    a.allocate()
    b.next_port = 50001
    b.allocate()
    assert 50000 in server.live_ports and 50001 in server.live_ports
    r, _ = b.request(Method.REFRESH, {Attr.LIFETIME: 0})
    assert error_code(r) is None
    assert 50001 not in server.live_ports
    r, _ = a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[(RELAY_IP, 50001)])
    assert error_code(r) == 403  # its socket is gone: the port is no peer any more
