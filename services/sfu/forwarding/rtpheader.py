"""The RTP fixed header, read and rewritten in place with one `struct` call each.

aiortc's `RtpPacket.parse` decodes header extensions and copies the payload, which the hot
path does not need: forwarding only reads and replaces the first 12 bytes (RFC 3550 §5.1).
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

_FIXED: Final[struct.Struct] = struct.Struct("!BBHII")
HEADER_BYTES: Final[int] = 12


class RtpHeader(NamedTuple):
    """The fields of the fixed header the SFU needs, and where the payload starts."""

    first: int  # V, P, X, CC
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload_offset: int  # after CSRCs and the header extension
    payload_end: int  # before padding


def parse_header(data: bytes) -> RtpHeader | None:
    """The header of one RTP packet, or None when it is malformed or truncated.

    RFC 3550 §5.1 (fixed header, CSRC count), §5.3.1 (extension length in 32-bit words),
    §5.1 P bit (the last byte counts the padding, itself included).
    """
    if len(data) < HEADER_BYTES:
        return None
    first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != 2:
        return None
    offset = HEADER_BYTES + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    end = len(data)
    if first & 0x20:
        if end <= offset or data[-1] == 0 or data[-1] > end - offset:
            return None
        end -= data[-1]
    if offset > end:
        return None
    return RtpHeader(first, bool(second & 0x80), second & 0x7F, seq, ts, ssrc, offset, end)


def rewrite(data: bytes, header: RtpHeader, *, payload_type: int, sequence: int,
            timestamp: int, ssrc: int) -> bytes:
    """A copy of the packet with a new payload type, sequence number, timestamp and SSRC."""
    return _FIXED.pack(header.first, (0x80 if header.marker else 0) | payload_type,
                       sequence, timestamp, ssrc) + data[HEADER_BYTES:]


def is_vp8_keyframe(data: bytes, header: RtpHeader) -> bool:
    """Whether this VP8 packet starts a key frame (RFC 7741 §4.2, §4.3; RFC 6386 §9.1).

    The payload descriptor's S bit and partition index 0 mark a frame's first packet; its
    payload header's P bit (bit 0 of the first byte) is 0 for a key frame.
    """
    pos, end = header.payload_offset, header.payload_end
    if pos >= end:
        return False
    desc = data[pos]
    if not desc & 0x10 or desc & 0x07:  # S bit, PID == 0
        return False
    pos += 1
    if desc & 0x80:  # X: extended control bits
        if pos >= end:
            return False
        ext = data[pos]
        pos += 1
        if ext & 0x80:  # I: picture id, M bit says 7 or 15 bits
            if pos >= end:
                return False
            pos += 2 if data[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: one byte
            pos += 1
    return pos < end and not data[pos] & 0x01
