"""Per-subscriber SSRC, sequence and timestamp rewriting across source changes."""

from __future__ import annotations

from services.sfu.forwarding.cache import RetransmissionCache
from services.sfu.forwarding.rewrite import OutboundStream, seq_newer
from services.sfu.forwarding.throttle import KeyframeThrottle


def test_seq_newer_wraps() -> None:
    assert seq_newer(1, 65535)
    assert not seq_newer(65535, 1)
    assert not seq_newer(5, 5)


def test_translate_continuous_across_source_change() -> None:
    s = OutboundStream(ssrc=42, payload_type=96, clock_rate=90000, first_sequence=100,
                       first_timestamp=1000)
    assert s.translate(0xA, 5000, 777, now=0.0) == (100, 1001)
    assert s.translate(0xA, 5001, 777 + 3000, now=0.033) == (101, 4001)
    # the publisher reconnects: new SSRC, new random bases, 1 s later
    seq, ts = s.translate(0xB, 60000, 123456, now=1.033)
    assert seq == 102
    assert ts == 4001 + 90000
    assert s.translate(0xB, 60001, 123456 + 3000, now=1.066) == (103, 4001 + 93000)


def test_translate_wraps_and_reorders() -> None:
    s = OutboundStream(ssrc=1, payload_type=111, clock_rate=48000, first_sequence=65535)
    assert s.translate(7, 10, 0, now=0.0)[0] == 65535
    assert s.translate(7, 11, 960, now=0.02)[0] == 0
    assert s.translate(7, 9, 0, now=0.03)[0] == 65534  # late packet keeps its place
    assert s.last_seq == 0
    assert s.source_sequence(0) == 11


def test_cache_hits_and_misses() -> None:
    c = RetransmissionCache(4)
    for seq in range(10):
        c.put(seq, bytes([seq]))
    assert c.get(9) == b"\x09"
    assert c.get(6) == b"\x06"
    assert c.get(5) is None  # pushed out by 9
    assert (c.hits, c.misses) == (2, 1)


def test_keyframe_throttle() -> None:
    t = KeyframeThrottle(0.5)
    assert t.allow(now=0.0)
    assert not t.allow(now=0.2)
    assert not t.allow(now=0.49)
    assert t.allow(now=0.5)
    assert (t.passed, t.dropped) == (2, 2)
