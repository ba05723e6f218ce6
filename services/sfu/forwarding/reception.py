"""What the SFU, as a receiver, reports about one published stream (RFC 3550 §6.4.2, A.3, A.8).

The SFU terminates RTCP: publishers get receiver reports about what reached the SFU, not
about what twenty subscribers saw, so their congestion control sees one hop.
"""

from __future__ import annotations

from typing import Final

from aiortc.rtp import RtcpReceiverInfo

from .rewrite import HALF_SEQ, SEQ_MOD

MAX_DROPOUT: Final[int] = 3000  # RFC 3550 §A.1
MAX_MISORDER: Final[int] = 100


class ReceptionStats:
    """Sequence tracking, loss and interarrival jitter of one source."""

    __slots__ = (
        "base_seq",
        "clock_rate",
        "cycles",
        "expected_prior",
        "jitter",
        "lsr",
        "max_seq",
        "received",
        "received_prior",
        "sr_at",
        "transit",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self.transit: float | None = None
        self.lsr = 0
        self.sr_at: float | None = None

    def add(self, sequence: int, timestamp: int, *, now: float) -> None:
        """Count one packet (RFC 3550 §A.1 sequence update, §A.8 jitter)."""
        if self.base_seq is None:
            self.base_seq = self.max_seq = sequence
        else:
            delta = (sequence - self.max_seq) % SEQ_MOD
            if 0 < delta < MAX_DROPOUT:
                if sequence < self.max_seq:
                    self.cycles += SEQ_MOD
                self.max_seq = sequence
            elif delta >= SEQ_MOD - MAX_MISORDER or delta == 0:
                pass  # duplicate or reordered
            elif delta < HALF_SEQ * 2:
                self.base_seq = self.max_seq = sequence  # a jump: restart (§A.1 simplified)
                self.cycles = self.received = self.expected_prior = self.received_prior = 0
        self.received += 1
        transit = now * self.clock_rate - timestamp
        if self.transit is not None:
            d = abs(transit - self.transit)
            if d < self.clock_rate * 10:
                self.jitter += (d - self.jitter) / 16
        self.transit = transit

    def on_sender_report(self, ntp_timestamp: int, *, now: float) -> None:
        """Remember the middle 32 bits of an SR's NTP time (LSR) and when it came (DLSR)."""
        self.lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self.sr_at = now

    def report(self, ssrc: int, *, now: float) -> RtcpReceiverInfo | None:
        """A report block for this source (None before its first packet)."""
        if self.base_seq is None:
            return None
        extended = self.cycles + self.max_seq
        expected = extended - self.base_seq + 1
        lost = max(0, expected - self.received)
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else min(
            255, (lost_interval << 8) // expected_interval)
        dlsr = 0 if self.sr_at is None else int((now - self.sr_at) * 65536) & 0xFFFFFFFF
        return RtcpReceiverInfo(
            ssrc=ssrc, fraction_lost=fraction, packets_lost=min(lost, 0x7FFFFF),
            highest_sequence=extended & 0xFFFFFFFF, jitter=int(self.jitter) & 0xFFFFFFFF,
            lsr=self.lsr, dlsr=dlsr)
