"""STUN codec: RFC 5769 vectors, round trips, malformed input."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from relay_unit_support import load_hex

from services.relay.stun import (
    Attr,
    AttributeDecodeError,
    Class,
    DecodeError,
    Message,
    Method,
    build_data_indication,
    parse_message,
    serialize,
    verify_integrity,
)
from services.relay.stun.attributes import pack_xor_address, unpack_xor_address

SHORT_TERM = b"VOkJxbRl1RmTxUk/WvJxBt"


def test_parse_message_rfc5769_request() -> None:
    msg = parse_message(load_hex("rfc5769_request.hex"))
    assert (msg.method, msg.message_class) == (Method.BINDING, Class.REQUEST)
    assert msg.get(Attr.SOFTWARE) == "STUN test client"
    assert msg.get(Attr.USERNAME) == "evtj:h6vY"
    assert msg.get(Attr.PRIORITY) == 0x6E0001FF
    assert msg.get(Attr.ICE_CONTROLLED) == 0x932FF9B151263B36
    assert verify_integrity(msg, SHORT_TERM)
    assert not verify_integrity(msg, b"wrong")


def test_parse_message_rfc5769_ipv4_response() -> None:
    msg = parse_message(load_hex("rfc5769_response_ipv4.hex"))
    assert msg.message_class is Class.RESPONSE
    assert msg.get(Attr.XOR_MAPPED_ADDRESS) == ("192.0.2.1", 32853)
    assert msg.get(Attr.SOFTWARE) == "test vector"
    assert verify_integrity(msg, SHORT_TERM)


def test_parse_message_rfc5769_ipv6_response() -> None:
    msg = parse_message(load_hex("rfc5769_response_ipv6.hex"))
    assert msg.get(Attr.XOR_MAPPED_ADDRESS) == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert verify_integrity(msg, SHORT_TERM)


def test_parse_message_rfc5769_long_term_request() -> None:
    data = load_hex("rfc5769_request_long_term.hex")
    msg = parse_message(data)
    assert msg.get(Attr.USERNAME) == "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert msg.get(Attr.REALM) == "example.org"
    assert msg.get(Attr.NONCE) == "f//499k954d6OL34oL9FSTvy64sA"
    key = hashlib.md5(f"{msg.get(Attr.USERNAME)}:example.org:TheMatrIX".encode()).digest()
    assert verify_integrity(msg, key)
    assert serialize(msg, integrity_key=key) == data


@pytest.mark.parametrize(
    "name", ["aioice_allocate.hex", "aioice_channel_bind.hex", "aioice_send.hex"]
)
def test_serialize_captured_packet_round_trip(name: str) -> None:
    data = load_hex(name)
    msg = parse_message(data)
    key = b"k" * 16 if msg.integrity_offset >= 0 else None
    if key is not None:
        assert verify_integrity(msg, key)
    assert serialize(msg, integrity_key=key, fingerprint=Attr.FINGERPRINT in msg.attributes) == data


def test_serialize_integrity_sha256_round_trip() -> None:
    msg = Message(Method.REFRESH, Class.REQUEST, os.urandom(12), {Attr.LIFETIME: 600})
    data = serialize(msg, integrity_key=b"key", integrity_sha256=True, fingerprint=True)
    parsed = parse_message(data)
    assert parsed.integrity_sha256_offset > 0
    assert verify_integrity(parsed, b"key")
    assert not verify_integrity(parsed, b"yek")
    assert serialize(parsed, integrity_key=b"key", integrity_sha256=True, fingerprint=True) == data


@pytest.mark.parametrize(
    "peer", [("192.0.2.1", 1), ("0.0.0.0", 65535), ("2001:db8::1", 3478), ("::", 0)]
)
def test_xor_address_round_trip(peer: tuple[str, int]) -> None:
    txid = os.urandom(12)
    assert unpack_xor_address(pack_xor_address(peer, txid), txid) == peer


def test_serialize_repeated_peer_addresses() -> None:
    peers = [("192.0.2.1", 1), ("192.0.2.2", 2)]
    msg = Message(Method.CREATE_PERMISSION, Class.REQUEST, os.urandom(12), peer_addresses=peers)
    assert parse_message(serialize(msg)).peer_addresses == peers


def test_build_data_indication_parses() -> None:
    data = build_data_indication(b"t" * 12, ("192.0.2.9", 999), b"hello")
    msg = parse_message(data)
    assert (msg.method, msg.message_class) == (Method.DATA, Class.INDICATION)
    assert msg.peer_addresses == [("192.0.2.9", 999)]
    assert msg.get(Attr.DATA) == b"hello"


def test_parse_message_truncated_header() -> None:
    with pytest.raises(DecodeError):
        parse_message(load_hex("rfc5769_request.hex")[:19])


def test_parse_message_truncated_body() -> None:
    with pytest.raises(DecodeError, match="length"):
        parse_message(load_hex("rfc5769_request.hex")[:-4])


def test_parse_message_bad_cookie() -> None:
    data = bytearray(load_hex("rfc5769_request.hex"))
    data[4] ^= 0xFF
    with pytest.raises(DecodeError, match="cookie"):
        parse_message(bytes(data))


def test_parse_message_top_bits_set() -> None:
    data = bytearray(load_hex("rfc5769_request.hex"))
    data[0] |= 0x40
    with pytest.raises(DecodeError, match="top two bits"):
        parse_message(bytes(data))


def test_parse_message_fingerprint_mismatch() -> None:
    data = bytearray(load_hex("rfc5769_request.hex"))
    data[-1] ^= 0x01
    with pytest.raises(DecodeError, match="FINGERPRINT"):
        parse_message(bytes(data))


def test_parse_message_attribute_overrun() -> None:
    body = struct.pack("!HH", Attr.USERNAME, 40) + b"abcd"
    data = struct.pack("!HHI", 0x0001, len(body), 0x2112A442) + b"t" * 12 + body
    with pytest.raises(DecodeError, match="overruns"):
        parse_message(data)


def test_parse_message_bad_address_family() -> None:
    body = struct.pack("!HHBBH", Attr.XOR_PEER_ADDRESS, 8, 0, 3, 1) + b"\x00" * 4
    data = struct.pack("!HHI", 0x0008, len(body), 0x2112A442) + b"t" * 12 + body
    with pytest.raises(AttributeDecodeError) as info:
        parse_message(data)
    assert info.value.attr_type == Attr.XOR_PEER_ADDRESS
    assert info.value.message.method == Method.CREATE_PERMISSION


def test_parse_message_unknown_comprehension_required() -> None:
    body = struct.pack("!HH", 0x7F01, 4) + b"xxxx" + struct.pack("!HH", 0xC001, 0)
    data = struct.pack("!HHI", 0x0003, len(body), 0x2112A442) + b"t" * 12 + body
    msg = parse_message(data)
    assert msg.unknown_required == [0x7F01]  # 0xC001 is comprehension-optional


def test_parse_message_ignores_attributes_after_integrity() -> None:
    msg = Message(Method.BINDING, Class.REQUEST, os.urandom(12), {Attr.SOFTWARE: "x"})
    signed = serialize(msg, integrity_key=b"k")
    extra = struct.pack("!HH", Attr.USERNAME, 4) + b"evil"
    tampered = signed[:2] + struct.pack("!H", len(signed) - 20 + 8) + signed[4:] + extra
    parsed = parse_message(tampered)
    assert Attr.USERNAME not in parsed.attributes
    assert verify_integrity(parsed, b"k")


def test_parse_message_error_code() -> None:
    msg = Message(
        Method.ALLOCATE, Class.ERROR, os.urandom(12), {Attr.ERROR_CODE: (438, "Stale Nonce")}
    )
    assert parse_message(serialize(msg)).get(Attr.ERROR_CODE) == (438, "Stale Nonce")
