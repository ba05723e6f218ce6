"""Sort datagrams on one UDP port by their first byte (RFC 7983 §7, RFC 5761 §4)."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

MIN_RTP: Final[int] = 12  # RFC 3550 §5.1: the fixed header
MIN_RTCP: Final[int] = 8  # RFC 3550 §6.4: a header and a sender SSRC


class Kind(IntEnum):
    """What a datagram is, by its first byte."""

    STUN = 0
    DTLS = 1
    RTP = 2
    RTCP = 3
    OTHER = 4


def classify(data: bytes) -> Kind:
    """The kind of one datagram (RFC 7983 §7): 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP.

    RTP and RTCP share the range; RFC 5761 §4 tells them apart by the second byte: packet
    types 192-223 (payload types 64-95 with the marker bit) are RTCP. A packet shorter than
    its fixed header is `OTHER` (dropped by the caller).
    """
    if not data:
        return Kind.OTHER
    first = data[0]
    if first <= 3:
        return Kind.STUN
    if 20 <= first <= 63:
        return Kind.DTLS
    if 128 <= first <= 191:
        if len(data) < 2:
            return Kind.OTHER
        if 192 <= data[1] <= 223:
            return Kind.RTCP if len(data) >= MIN_RTCP else Kind.OTHER
        return Kind.RTP if len(data) >= MIN_RTP else Kind.OTHER
    return Kind.OTHER
