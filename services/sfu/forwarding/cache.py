"""The retransmission cache of one published stream: the last N packets by sequence number.

NACKs (RFC 4585 §6.2.1) name packets by the sequence numbers a subscriber saw; the router
maps them back to the publisher's numbers and asks here. Fixed size, no allocation per
packet beyond the list slot.
"""

from __future__ import annotations

from typing import Final

DEFAULT_SIZE: Final[int] = 512  # about 2 s of 320x240 video, more of audio


class RetransmissionCache:
    """A ring of (sequence, packet) indexed by sequence number modulo its size."""

    __slots__ = ("_packets", "_seqs", "hits", "misses", "size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1 or size > 1 << 15:
            raise ValueError("cache size must be within 1..32768")
        self.size = size
        self._seqs: list[int] = [-1] * size
        self._packets: list[bytes | None] = [None] * size
        self.hits = 0
        self.misses = 0

    def put(self, sequence: int, packet: bytes) -> None:
        """Keep a packet (plaintext RTP), replacing the one `size` numbers older."""
        i = sequence % self.size
        self._seqs[i] = sequence
        self._packets[i] = packet

    def get(self, sequence: int) -> bytes | None:
        """The packet with this sequence number if still held (counts a hit or a miss)."""
        i = sequence % self.size
        if self._seqs[i] == sequence:
            self.hits += 1
            return self._packets[i]
        self.misses += 1
        return None

    def clear(self) -> None:
        self._seqs = [-1] * self.size
        self._packets = [None] * self.size
