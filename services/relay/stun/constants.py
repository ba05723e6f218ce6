"""STUN/TURN wire constants: methods, classes, attribute types, error reasons.

RFC 8489 §18 (STUN registries) and RFC 8656 §18 (TURN additions).
"""

from __future__ import annotations

import enum
from typing import Final

MAGIC_COOKIE: Final[int] = 0x2112A442
MAGIC_COOKIE_BYTES: Final[bytes] = MAGIC_COOKIE.to_bytes(4, "big")
HEADER_LENGTH: Final[int] = 20
FINGERPRINT_XOR: Final[int] = 0x5354554E
INTEGRITY_LENGTH: Final[int] = 20
INTEGRITY_SHA256_LENGTH: Final[int] = 32
FAMILY_IPV4: Final[int] = 0x01
FAMILY_IPV6: Final[int] = 0x02
TRANSPORT_UDP: Final[int] = 17
CHANNEL_MIN: Final[int] = 0x4000
CHANNEL_MAX: Final[int] = 0x4FFF


class Method(enum.IntEnum):
    """STUN/TURN methods (RFC 8489 §18.2, RFC 8656 §17)."""

    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    SEND = 0x006
    DATA = 0x007
    CREATE_PERMISSION = 0x008
    CHANNEL_BIND = 0x009


class Class(enum.IntEnum):
    """STUN message classes (RFC 8489 §5)."""

    REQUEST = 0x000
    INDICATION = 0x010
    RESPONSE = 0x100
    ERROR = 0x110


class Attr(enum.IntEnum):
    """Attribute types this codec knows (RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16)."""

    MAPPED_ADDRESS = 0x0001
    CHANGE_REQUEST = 0x0003
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    CHANNEL_NUMBER = 0x000C
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    DATA = 0x0013
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_ADDRESS_FAMILY = 0x0017
    EVEN_PORT = 0x0018
    REQUESTED_TRANSPORT = 0x0019
    DONT_FRAGMENT = 0x001A
    MESSAGE_INTEGRITY_SHA256 = 0x001C
    PASSWORD_ALGORITHM = 0x001D
    USERHASH = 0x001E
    XOR_MAPPED_ADDRESS = 0x0020
    RESERVATION_TOKEN = 0x0022
    PRIORITY = 0x0024
    USE_CANDIDATE = 0x0025
    PASSWORD_ALGORITHMS = 0x8002
    ALTERNATE_DOMAIN = 0x8003
    SOFTWARE = 0x8022
    ALTERNATE_SERVER = 0x8023
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029
    ICE_CONTROLLING = 0x802A
    RESPONSE_ORIGIN = 0x802B
    OTHER_ADDRESS = 0x802C
    ADDITIONAL_ADDRESS_FAMILY = 0x8000
    ADDRESS_ERROR_CODE = 0x8001
    ICMP = 0x8004


#: Reason phrases for the error codes the relay sends (RFC 8489 §14.8, RFC 8656 §18).
REASONS: Final[dict[int, str]] = {
    300: "Try Alternate",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    420: "Unknown Attribute",
    437: "Allocation Mismatch",
    438: "Stale Nonce",
    440: "Address Family not Supported",
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    443: "Peer Address Family Mismatch",
    486: "Allocation Quota Reached",
    500: "Server Error",
    508: "Insufficient Capacity",
}


def is_comprehension_required(attr_type: int) -> bool:
    """Whether an attribute type is in the comprehension-required range (RFC 8489 §14)."""
    return attr_type < 0x8000
