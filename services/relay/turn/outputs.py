"""What the TURN core is configured with, and what it asks its shell to do (outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..stun.attributes import Address
from ..stun.constants import CHANNEL_MAX
from .allocation import Client
from .policy import IPNetwork


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the core needs to know; built by the shell from `RelaySettings`."""

    realm: str = "parley"
    secrets: tuple[str, ...] = ()
    relay_ip: str = "127.0.0.1"
    relay_ports: tuple[int, int] = (49152, 65535)
    allow_peer: tuple[IPNetwork, ...] = ()
    #: the relay's listening ports (UDP/TCP, TLS): never reachable as a peer.
    listen_ports: tuple[int, ...] = ()
    #: more addresses of the relay's own (its public one, a specific listen address).
    own_ips: tuple[str, ...] = ()
    user_quota: int = 10
    total_quota: int = 1000
    default_lifetime: float = 600.0
    max_lifetime: float = 3600.0
    nonce_lifetime: float = 600.0
    request_rate: float = 100.0
    request_burst: float = 200.0
    bandwidth: float = 0.0
    max_permissions: int = 256
    #: 0x4FFF per RFC 8656 §12; 0x7FFF accepts RFC 5766 clients (e.g. coturn's uclient).
    channel_max: int = CHANNEL_MAX
    #: hand packets between two allocations of this server over without the kernel.
    local_delivery: bool = True


class ToClient(NamedTuple):
    """Send `data` to a client over its transport."""

    client: Client
    data: bytes


class ToPeer(NamedTuple):
    """Send `data` from relayed address `relayed` to `peer`."""

    relayed: Address
    peer: Address
    data: bytes


class OpenRelay(NamedTuple):
    """Bind a relayed UDP socket for `client`, then call `relay_opened`/`relay_failed`."""

    client: Client
    even_port: bool = False


class CloseRelay(NamedTuple):
    """Close the relayed socket bound to `relayed`."""

    relayed: Address


Output = ToClient | ToPeer | OpenRelay | CloseRelay


class FastRoute(NamedTuple):
    """Where ChannelData on one (UDP client, channel) may go without the core, until when.

    The compiled packet path caches it: `local` hands the packet to the client `dest` with
    the header rewritten to `channel` (B's channel to A's relayed address), charging both
    meters; otherwise it sends the payload from `relayed` to the peer `dest`. A route stays
    valid until `valid_until` (the first expiry among the permissions and channels it
    relies on) or until the core's `generation` changes (an allocation came or went).
    """

    local: bool
    relayed: Address
    dest: Address
    channel: int
    valid_until: float
    src: Any
    dst: Any


@dataclass(slots=True)
class Stats:
    """Counters the shell exports as metrics and heartbeats (counts, never addresses)."""

    packets_relayed: int = 0
    bytes_relayed: int = 0
    dropped: int = 0
    malformed: int = 0
    rate_limited: int = 0
    allocations_created: int = 0
    #: packets handed from one allocation to another in process (not through the kernel).
    local_delivered: int = 0
    errors: dict[int, int] = field(default_factory=dict)
