"""ICE-lite answers and the DTLS-SRTP handshake, in memory (no sockets)."""

from __future__ import annotations

from aioice import stun
from aiortc.rtcdtlstransport import RTCCertificate

from services.sfu.dtls import DtlsEndpoint, DtlsState, fingerprint_of
from services.sfu.ice import answer_binding, parse_binding
from tests.unit.sfu.packets import rtp


def binding(username: str, pwd: str, *, use_candidate: bool = True) -> bytes:
    msg = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    msg.attributes["USERNAME"] = username
    msg.attributes["PRIORITY"] = 1
    msg.attributes["ICE-CONTROLLING"] = 1
    if use_candidate:
        msg.attributes["USE-CANDIDATE"] = None
    msg.add_message_integrity(pwd.encode())
    return bytes(msg)


def test_ice_lite_answers_a_valid_check() -> None:
    req = parse_binding(binding("sfuU:browser", "secretpwd"))
    assert req is not None and req.local_ufrag == "sfuU" and req.use_candidate
    data = answer_binding(req, ("203.0.113.5", 40000), local_pwd="secretpwd")
    assert data is not None
    resp = stun.parse_message(data)
    assert resp.message_class == stun.Class.RESPONSE
    assert resp.attributes["XOR-MAPPED-ADDRESS"] == ("203.0.113.5", 40000)
    assert resp.check_message_integrity(b"secretpwd")


def test_ice_lite_refuses_bad_integrity_and_junk() -> None:
    req = parse_binding(binding("sfuU:browser", "wrong"))
    assert req is not None
    assert answer_binding(req, ("203.0.113.5", 1), local_pwd="secretpwd") is None
    assert parse_binding(b"\x00\x01\x00\x00") is None
    assert parse_binding(bytes(20)) is None
    no_user = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    assert parse_binding(bytes(no_user)) is None
    good = binding("a:b", "p")
    for cut in range(len(good)):
        assert parse_binding(good[:cut]) is None or cut == len(good)


def _pump(a: DtlsEndpoint, b: DtlsEndpoint, first: list[bytes]) -> None:
    flight, sender = first, a
    for _ in range(20):
        receiver = b if sender is a else a
        out: list[bytes] = []
        for record in flight:
            out += receiver.receive(record)
        flight, sender = out, receiver
        if not flight:
            break


def test_dtls_handshake_exports_matching_srtp_keys() -> None:
    server_cert, client_cert = RTCCertificate.generateCertificate(), \
        RTCCertificate.generateCertificate()
    server = DtlsEndpoint(server_cert, remote_fingerprint=tuple(  # type: ignore[arg-type]
        fingerprint_of(client_cert).split(" ")), role="server")
    client = DtlsEndpoint(client_cert, remote_fingerprint=tuple(  # type: ignore[arg-type]
        fingerprint_of(server_cert).split(" ")), role="client")
    _pump(client, server, client.start())
    assert server.state is DtlsState.CONNECTED and client.state is DtlsState.CONNECTED
    assert client.tx is not None and server.rx is not None
    packet = rtp(1234, 1, 1, payload=b"hello")
    assert server.rx.unprotect(client.tx.protect(packet)) == packet
    assert server.tx is not None and client.rx is not None
    assert client.rx.unprotect(server.tx.protect(packet)) == packet
    for record in server.close():
        client.receive(record)
    assert client.state is DtlsState.CLOSED


def test_dtls_refuses_a_wrong_fingerprint() -> None:
    server_cert, client_cert = RTCCertificate.generateCertificate(), \
        RTCCertificate.generateCertificate()
    server = DtlsEndpoint(server_cert, remote_fingerprint=("sha-256", "00:11"), role="server")
    client = DtlsEndpoint(client_cert, remote_fingerprint=tuple(  # type: ignore[arg-type]
        fingerprint_of(server_cert).split(" ")), role="client")
    _pump(client, server, client.start())
    assert server.state is DtlsState.FAILED
    assert server.receive(b"\x16garbage") == []
