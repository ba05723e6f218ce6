"""One TURN allocation: its relayed address, lifetime, permissions and channel bindings.

RFC 8656 §2.2 (allocations), §9 (permissions: 300 s, per IP), §12 (channels: 600 s,
numbers 0x4000-0x4FFF; a number/peer pair cannot be rebound to another peer or number
for 5 minutes after it expires).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from ..stun.attributes import Address
from .meter import Meter, MeterLike

PERMISSION_LIFETIME: Final[float] = 300.0
CHANNEL_LIFETIME: Final[float] = 600.0
CHANNEL_COOLDOWN: Final[float] = 300.0


class Client(NamedTuple):
    """A client transport: `transport` is "udp", "tcp" or "tls"; `conn` tells streams apart."""

    transport: str
    address: Address
    conn: int = 0


@dataclass(slots=True)
class Channel:
    """A channel binding: the peer it names and when it expires."""

    number: int
    peer: Address
    expires: float


@dataclass(slots=True)
class Allocation:
    """A relayed transport address owned by one client 5-tuple and one username."""

    client: Client
    relayed: Address
    username: str
    key: bytes
    sha256: bool
    expires: float
    transaction_id: bytes
    response: bytes = b""
    stream: bool = False
    permissions: dict[str, float] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    peer_channels: dict[Address, Channel] = field(default_factory=dict)
    #: bandwidth bucket and relayed counters (shared with the compiled packet path).
    meter: MeterLike = field(default_factory=lambda: Meter(0.0, 0.0))

    def permit(self, host: str, now: float, lifetime: float = PERMISSION_LIFETIME) -> None:
        """Install or refresh the permission for `host` (RFC 8656 §9)."""
        self.permissions[host] = now + lifetime

    def permitted(self, host: str, now: float) -> bool:
        """Whether a live permission exists for `host`."""
        expires = self.permissions.get(host)
        return expires is not None and expires > now

    def can_bind(self, number: int, peer: Address, now: float) -> bool:
        """RFC 8656 §12.1: a number and a peer may only be bound to each other."""
        by_number = self.channels.get(number)
        if by_number is not None and by_number.peer != peer:
            return False
        by_peer = self.peer_channels.get(peer)
        return by_peer is None or by_peer.number == number

    def bind(
        self, number: int, peer: Address, now: float, lifetime: float = CHANNEL_LIFETIME
    ) -> None:
        """Bind or refresh channel `number` to `peer`; also refreshes the permission."""
        channel = self.channels.get(number)
        if channel is None:
            channel = Channel(number, peer, now + lifetime)
            self.channels[number] = channel
            self.peer_channels[peer] = channel
        else:
            channel.expires = now + lifetime
        self.permit(peer[0], now)

    def expire(self, now: float) -> float:
        """Drop expired permissions and cooled-down channels; return the next deadline."""
        next_deadline = self.expires
        for host, expires in list(self.permissions.items()):
            if expires <= now:
                del self.permissions[host]
            else:
                next_deadline = min(next_deadline, expires)
        for number, channel in list(self.channels.items()):
            if channel.expires + CHANNEL_COOLDOWN <= now:
                del self.channels[number]
                self.peer_channels.pop(channel.peer, None)
            elif channel.expires > now:
                next_deadline = min(next_deadline, channel.expires)
            else:
                next_deadline = min(next_deadline, channel.expires + CHANNEL_COOLDOWN)
        return next_deadline
