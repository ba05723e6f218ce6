"""The RTP fixed header: parsing, rewriting, VP8 key-frame detection."""

from __future__ import annotations

import struct

from services.sfu.forwarding.rtpheader import is_vp8_keyframe, parse_header, rewrite
from tests.unit.sfu.packets import VP8_CONTINUATION, VP8_DELTA, VP8_KEY, rtp


def test_parse_header_fields() -> None:
    h = parse_header(rtp(0xAABBCCDD, 65535, 2**32 - 1, pt=96, marker=True))
    assert h is not None
    assert (h.ssrc, h.sequence, h.timestamp, h.payload_type, h.marker) == (
        0xAABBCCDD, 65535, 2**32 - 1, 96, True)
    assert h.payload_offset == 12


def test_parse_header_csrcs_extension_and_padding() -> None:
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xff\x00\x00"
    body = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 96, 1, 2, 3) + b"CSRC" + ext
    data = body + b"payload" + b"\x00\x00\x03"
    h = parse_header(data)
    assert h is not None
    assert data[h.payload_offset:h.payload_end] == b"payload"


def test_parse_header_malformed_is_none() -> None:
    assert parse_header(b"\x80\x60\x00") is None  # truncated
    assert parse_header(b"\x40" + bytes(11)) is None  # version 1
    assert parse_header(b"\x9f\x60" + bytes(10)) is None  # 15 CSRCs announced, none there
    assert parse_header(b"\x90\x60" + bytes(10) + b"\xbe\xde") is None  # cut extension
    assert parse_header(b"\xa0\x60" + bytes(10) + b"\x09") is None  # padding past the header
    assert parse_header(b"\xa0\x60" + bytes(10) + b"\x00") is None  # padding count 0


def test_rewrite_changes_only_the_header() -> None:
    data = rtp(1, 2, 3, pt=100, payload=b"xyz", marker=True)
    h = parse_header(data)
    assert h is not None
    out = rewrite(data, h, payload_type=96, sequence=7, timestamp=8, ssrc=9)
    h2 = parse_header(out)
    assert h2 is not None
    assert (h2.payload_type, h2.sequence, h2.timestamp, h2.ssrc, h2.marker) == (96, 7, 8, 9, True)
    assert out[12:] == b"xyz"


def test_is_vp8_keyframe() -> None:
    for payload, key in ((VP8_KEY, True), (VP8_DELTA, False), (VP8_CONTINUATION, False),
                         (b"", False), (bytes([0x90, 0x80, 0x81, 0x23, 0x00]), True),
                         (bytes([0x90, 0x80]), False)):
        data = rtp(1, 1, 1, payload=payload)
        h = parse_header(data)
        assert h is not None
        assert is_vp8_keyframe(data, h) is key, payload
