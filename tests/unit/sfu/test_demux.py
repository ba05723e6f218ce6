"""RFC 7983 first-byte demultiplexing."""

from __future__ import annotations

import pytest

from services.sfu.forwarding.demux import Kind, classify
from tests.unit.sfu.packets import pli, rtp


@pytest.mark.parametrize(("data", "kind"), [
    (b"\x00\x01" + bytes(18), Kind.STUN),
    (b"\x16\xfe\xfd" + bytes(10), Kind.DTLS),
    (rtp(1, 2, 3), Kind.RTP),
    (pli(1, 2), Kind.RTCP),
    (b"\x80\xc8", Kind.OTHER),  # RTCP type, shorter than its header
    (b"\x80\x60" + bytes(5), Kind.OTHER),  # RTP, truncated fixed header
    (b"", Kind.OTHER),
    (b"\x40" + bytes(20), Kind.OTHER),  # 64-127: TURN channels, not ours
    (b"\xff" + bytes(20), Kind.OTHER),
])
def test_classify_first_byte(data: bytes, kind: Kind) -> None:
    assert classify(data) is kind


def test_classify_rtcp_range_by_second_byte() -> None:
    # RFC 5761 §4: 192-223 after the first byte is RTCP (SR=200, RR=201, PSFB=206)
    assert classify(bytes([0x80, 200]) + bytes(6)) is Kind.RTCP
    assert classify(bytes([0x80, 0x80 | 96]) + bytes(10)) is Kind.RTP  # VP8 with marker
