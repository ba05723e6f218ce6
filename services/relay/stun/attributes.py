"""STUN attribute values: one `pack_*`/`unpack_*` pair per value shape, and the table.

RFC 8489 §14 (attribute formats) and RFC 8656 §14 (TURN attributes). Addresses are
`(host, port)` tuples; XOR variants are obfuscated with the cookie and transaction id
(RFC 8489 §14.2). Unpackers raise `ValueError` on malformed input; the message parser
maps that to `AttributeDecodeError`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from .constants import FAMILY_IPV4, FAMILY_IPV6, MAGIC_COOKIE, MAGIC_COOKIE_BYTES, Attr

Address = tuple[str, int]

_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")
_U64: Final = struct.Struct("!Q")
_COOKIE_HI: Final[int] = MAGIC_COOKIE >> 16
_COOKIE_INT: Final[int] = MAGIC_COOKIE


def pack_address(value: Address) -> bytes:
    """MAPPED-ADDRESS style: reserved, family, port, address (RFC 8489 §14.1)."""
    host, port = value
    if ":" in host:
        return struct.pack("!BBH", 0, FAMILY_IPV6, port) + socket.inet_pton(socket.AF_INET6, host)
    return struct.pack("!BBH", 0, FAMILY_IPV4, port) + socket.inet_aton(host)


def unpack_address(data: bytes) -> Address:
    """Inverse of `pack_address`."""
    if len(data) == 8 and data[1] == FAMILY_IPV4:
        return socket.inet_ntoa(data[4:8]), _U16.unpack_from(data, 2)[0]
    if len(data) == 20 and data[1] == FAMILY_IPV6:
        return socket.inet_ntop(socket.AF_INET6, data[4:20]), _U16.unpack_from(data, 2)[0]
    raise ValueError("bad address family or length")


def pack_xor_address(value: Address, transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS style (RFC 8489 §14.2)."""
    host, port = value
    xport = port ^ _COOKIE_HI
    if ":" in host:
        raw = int.from_bytes(socket.inet_pton(socket.AF_INET6, host), "big")
        pad = int.from_bytes(MAGIC_COOKIE_BYTES + transaction_id, "big")
        return struct.pack("!BBH", 0, FAMILY_IPV6, xport) + (raw ^ pad).to_bytes(16, "big")
    raw4 = int.from_bytes(socket.inet_aton(host), "big")
    return struct.pack("!BBHI", 0, FAMILY_IPV4, xport, raw4 ^ _COOKIE_INT)


def unpack_xor_address(data: bytes, transaction_id: bytes) -> Address:
    """Inverse of `pack_xor_address`."""
    if len(data) == 8 and data[1] == FAMILY_IPV4:
        port = _U16.unpack_from(data, 2)[0] ^ _COOKIE_HI
        raw4 = _U32.unpack_from(data, 4)[0] ^ _COOKIE_INT
        return socket.inet_ntoa(_U32.pack(raw4)), port
    if len(data) == 20 and data[1] == FAMILY_IPV6:
        port = _U16.unpack_from(data, 2)[0] ^ _COOKIE_HI
        pad = int.from_bytes(MAGIC_COOKIE_BYTES + transaction_id, "big")
        raw = int.from_bytes(data[4:20], "big") ^ pad
        return socket.inet_ntop(socket.AF_INET6, raw.to_bytes(16, "big")), port
    raise ValueError("bad address family or length")


def pack_bytes(value: bytes) -> bytes:
    """Opaque value."""
    return bytes(value)


def unpack_bytes(data: bytes) -> bytes:
    """Opaque value."""
    return data


def pack_string(value: str) -> bytes:
    """UTF-8 text (USERNAME, REALM, NONCE, SOFTWARE)."""
    return value.encode("utf-8")


def unpack_string(data: bytes) -> str:
    """UTF-8 text; `ValueError` (UnicodeDecodeError) when invalid."""
    return data.decode("utf-8")


def pack_u32(value: int) -> bytes:
    """32-bit unsigned (LIFETIME, PRIORITY, FINGERPRINT)."""
    return _U32.pack(value)


def unpack_u32(data: bytes) -> int:
    """32-bit unsigned."""
    if len(data) != 4:
        raise ValueError("expected 4 bytes")
    value: int = _U32.unpack(data)[0]
    return value


def pack_u64(value: int) -> bytes:
    """64-bit unsigned (ICE-CONTROLLED/ICE-CONTROLLING tie breakers)."""
    return _U64.pack(value)


def unpack_u64(data: bytes) -> int:
    """64-bit unsigned."""
    if len(data) != 8:
        raise ValueError("expected 8 bytes")
    value: int = _U64.unpack(data)[0]
    return value


def pack_u16_rffu(value: int) -> bytes:
    """16-bit value followed by 16 reserved bits (CHANNEL-NUMBER, RFC 8656 §14.1)."""
    return _U16.pack(value) + b"\x00\x00"


def unpack_u16_rffu(data: bytes) -> int:
    """Inverse of `pack_u16_rffu`."""
    if len(data) != 4:
        raise ValueError("expected 4 bytes")
    value: int = _U16.unpack_from(data)[0]
    return value


def pack_u8_rffu(value: int) -> bytes:
    """8-bit value followed by 24 reserved bits (REQUESTED-TRANSPORT, -ADDRESS-FAMILY)."""
    return bytes((value, 0, 0, 0))


def unpack_u8_rffu(data: bytes) -> int:
    """Inverse of `pack_u8_rffu`."""
    if len(data) != 4:
        raise ValueError("expected 4 bytes")
    return data[0]


def pack_none(value: None) -> bytes:
    """Flag attribute with no value (DONT-FRAGMENT, USE-CANDIDATE)."""
    return b""


def unpack_none(data: bytes) -> None:
    """Flag attribute with no value."""
    if data:
        raise ValueError("expected an empty value")


def pack_even_port(value: bool) -> bytes:
    """EVEN-PORT: the R bit (RFC 8656 §14.6)."""
    return b"\x80" if value else b"\x00"


def unpack_even_port(data: bytes) -> bool:
    """Inverse of `pack_even_port`."""
    if len(data) != 1:
        raise ValueError("expected 1 byte")
    return bool(data[0] & 0x80)


def pack_error_code(value: tuple[int, str]) -> bytes:
    """ERROR-CODE: class, number, reason phrase (RFC 8489 §14.8)."""
    code, reason = value
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")


def unpack_error_code(data: bytes) -> tuple[int, str]:
    """Inverse of `pack_error_code`."""
    if len(data) < 4:
        raise ValueError("expected at least 4 bytes")
    code = (data[2] & 0x07) * 100 + data[3]
    if not 300 <= code <= 699:
        raise ValueError("error code out of range")
    return code, data[4:].decode("utf-8")


def pack_unknown_attributes(value: list[int]) -> bytes:
    """UNKNOWN-ATTRIBUTES: a list of 16-bit types (RFC 8489 §14.9)."""
    return b"".join(_U16.pack(t) for t in value)


def unpack_unknown_attributes(data: bytes) -> list[int]:
    """Inverse of `pack_unknown_attributes`."""
    if len(data) % 2:
        raise ValueError("odd length")
    return [_U16.unpack_from(data, i)[0] for i in range(0, len(data), 2)]


class AttrCodec(NamedTuple):
    """How one attribute type is packed and unpacked; `xor` ones also take the txid."""

    pack: Callable[..., bytes]
    unpack: Callable[..., Any]
    xor: bool = False


#: The attribute table: every type the codec decodes. Others stay raw bytes.
ATTRIBUTES: Final[dict[int, AttrCodec]] = {
    Attr.MAPPED_ADDRESS: AttrCodec(pack_address, unpack_address),
    Attr.CHANGE_REQUEST: AttrCodec(pack_u32, unpack_u32),
    Attr.USERNAME: AttrCodec(pack_string, unpack_string),
    Attr.MESSAGE_INTEGRITY: AttrCodec(pack_bytes, unpack_bytes),
    Attr.ERROR_CODE: AttrCodec(pack_error_code, unpack_error_code),
    Attr.UNKNOWN_ATTRIBUTES: AttrCodec(pack_unknown_attributes, unpack_unknown_attributes),
    Attr.CHANNEL_NUMBER: AttrCodec(pack_u16_rffu, unpack_u16_rffu),
    Attr.LIFETIME: AttrCodec(pack_u32, unpack_u32),
    Attr.XOR_PEER_ADDRESS: AttrCodec(pack_xor_address, unpack_xor_address, True),
    Attr.DATA: AttrCodec(pack_bytes, unpack_bytes),
    Attr.REALM: AttrCodec(pack_string, unpack_string),
    Attr.NONCE: AttrCodec(pack_string, unpack_string),
    Attr.XOR_RELAYED_ADDRESS: AttrCodec(pack_xor_address, unpack_xor_address, True),
    Attr.REQUESTED_ADDRESS_FAMILY: AttrCodec(pack_u8_rffu, unpack_u8_rffu),
    Attr.EVEN_PORT: AttrCodec(pack_even_port, unpack_even_port),
    Attr.REQUESTED_TRANSPORT: AttrCodec(pack_u8_rffu, unpack_u8_rffu),
    Attr.DONT_FRAGMENT: AttrCodec(pack_none, unpack_none),
    Attr.MESSAGE_INTEGRITY_SHA256: AttrCodec(pack_bytes, unpack_bytes),
    Attr.PASSWORD_ALGORITHM: AttrCodec(pack_bytes, unpack_bytes),
    Attr.USERHASH: AttrCodec(pack_bytes, unpack_bytes),
    Attr.XOR_MAPPED_ADDRESS: AttrCodec(pack_xor_address, unpack_xor_address, True),
    Attr.RESERVATION_TOKEN: AttrCodec(pack_bytes, unpack_bytes),
    Attr.PRIORITY: AttrCodec(pack_u32, unpack_u32),
    Attr.USE_CANDIDATE: AttrCodec(pack_none, unpack_none),
    Attr.PASSWORD_ALGORITHMS: AttrCodec(pack_bytes, unpack_bytes),
    Attr.ALTERNATE_DOMAIN: AttrCodec(pack_string, unpack_string),
    Attr.SOFTWARE: AttrCodec(pack_string, unpack_string),
    Attr.ALTERNATE_SERVER: AttrCodec(pack_address, unpack_address),
    Attr.FINGERPRINT: AttrCodec(pack_u32, unpack_u32),
    Attr.ICE_CONTROLLED: AttrCodec(pack_u64, unpack_u64),
    Attr.ICE_CONTROLLING: AttrCodec(pack_u64, unpack_u64),
    Attr.RESPONSE_ORIGIN: AttrCodec(pack_address, unpack_address),
    Attr.OTHER_ADDRESS: AttrCodec(pack_address, unpack_address),
    Attr.ADDITIONAL_ADDRESS_FAMILY: AttrCodec(pack_u8_rffu, unpack_u8_rffu),
}
