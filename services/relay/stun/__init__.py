"""Sans-I/O STUN codec (RFC 8489): messages, attributes, integrity and fingerprint."""

from __future__ import annotations

from .attributes import Address
from .constants import Attr, Class, Method
from .errors import AttributeDecodeError, DecodeError, StunError
from .message import (
    Message,
    build_data_indication,
    is_stun,
    parse_message,
    serialize,
    verify_integrity,
)

__all__ = [
    "Address",
    "Attr",
    "AttributeDecodeError",
    "Class",
    "DecodeError",
    "Message",
    "Method",
    "StunError",
    "build_data_indication",
    "is_stun",
    "parse_message",
    "serialize",
    "verify_integrity",
]
