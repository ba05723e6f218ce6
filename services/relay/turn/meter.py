"""Per-allocation traffic meter: the bandwidth token bucket and the relayed counters.

One `Meter` per allocation, shared by the Python core and the compiled packet path
(`services.relay._fastpath.Meter` has the same attributes and `spend`), so that a packet
counts and costs the same whichever path carries it.
"""

from __future__ import annotations

from typing import Protocol


class MeterLike(Protocol):
    """What the core needs of a meter (the Python `Meter` or the compiled one)."""

    rate: float
    tokens: float
    stamp: float
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int

    def spend(self, size: int, now: float) -> bool: ...


class Meter:
    """A token bucket of `rate` bytes per second (0 = no cap), full at start, and counters."""

    __slots__ = ("bytes_in", "bytes_out", "packets_in", "packets_out", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = now
        self.packets_in = 0
        self.packets_out = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def spend(self, size: int, now: float) -> bool:
        """Take `size` bytes from the bucket if they are there (RFC 8656 §7: a quota)."""
        rate = self.rate
        if rate <= 0:
            return True
        tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if tokens < size:
            self.tokens = tokens
            return False
        self.tokens = tokens - size
        return True
