"""One forwarded stream as one subscriber sees it: its own SSRC, sequence and timestamps.

A subscriber's receive slot keeps one SSRC for its whole life while what feeds it changes:
a publisher's new PeerConnection (new SSRC, new random sequence and timestamp bases), or
another publisher mapped to the slot. Each change is absorbed by moving the offsets so that
the slot's sequence numbers go on by one and its timestamps by the wall time elapsed
(RFC 3550 §5.1: both must advance monotonically for the receiver's jitter buffer).
"""

from __future__ import annotations

from typing import Final

SEQ_MOD: Final[int] = 1 << 16
TS_MOD: Final[int] = 1 << 32
HALF_SEQ: Final[int] = 1 << 15


def seq_newer(a: int, b: int) -> bool:
    """Whether sequence number `a` comes after `b` (RFC 3550 §A.1 arithmetic modulo 2^16)."""
    return a != b and ((a - b) % SEQ_MOD) < HALF_SEQ


class OutboundStream:
    """The rewriting state of one (subscriber, slot, kind)."""

    __slots__ = (
        "clock_rate",
        "keyframe_wanted",
        "last_seq",
        "last_time",
        "last_ts",
        "octets",
        "packets",
        "payload_type",
        "seq_delta",
        "source",
        "ssrc",
        "ts_delta",
    )

    def __init__(self, *, ssrc: int, payload_type: int, clock_rate: int,
                 first_sequence: int = 0, first_timestamp: int = 0) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.source: int | None = None  # the publisher SSRC the offsets are for
        self.seq_delta = 0
        self.ts_delta = 0
        self.last_seq = (first_sequence - 1) % SEQ_MOD  # the highest sent so far
        self.last_ts = first_timestamp % TS_MOD
        self.last_time: float | None = None
        self.packets = 0
        self.octets = 0
        self.keyframe_wanted = False  # video: drop until a key frame after a switch

    def switch_to(self, source: int, sequence: int, timestamp: int, *, now: float) -> None:
        """Rebase on a new source SSRC whose next packet has `sequence` and `timestamp`."""
        self.source = source
        next_seq = (self.last_seq + 1) % SEQ_MOD
        self.seq_delta = (next_seq - sequence) % SEQ_MOD
        gap = 1 if self.last_time is None else max(
            1, round((now - self.last_time) * self.clock_rate))
        self.ts_delta = (self.last_ts + gap - timestamp) % TS_MOD

    def translate(self, source: int, sequence: int, timestamp: int, *,
                  now: float) -> tuple[int, int]:
        """The (sequence, timestamp) this packet leaves with; rebases on a new source."""
        if source != self.source:
            self.switch_to(source, sequence, timestamp, now=now)
        seq = (sequence + self.seq_delta) % SEQ_MOD
        ts = (timestamp + self.ts_delta) % TS_MOD
        if seq_newer(seq, self.last_seq):
            self.last_seq = seq
            self.last_ts = ts
            self.last_time = now
        return seq, ts

    def source_sequence(self, sequence: int) -> int:
        """The publisher's sequence number behind one we sent (for a NACK)."""
        return (sequence - self.seq_delta) % SEQ_MOD

    def timestamp_out(self, timestamp: int) -> int:
        """A publisher RTP timestamp on this stream's clock (a sender report's)."""
        return (timestamp + self.ts_delta) % TS_MOD
