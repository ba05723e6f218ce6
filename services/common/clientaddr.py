"""The client address a request came from, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse CIDRs once; raises ValueError naming the bad one."""
    out: list[Network] = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {c!r}") from exc
    return tuple(out)


def _trusted(addr: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in nets)


def is_trusted_proxy(peer: str | None, trusted: Sequence[str]) -> bool:
    """Whether the socket peer is one of the trusted proxies (CIDRs)."""
    return bool(peer) and _trusted(peer or "", parse_networks(tuple(trusted)))


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[str]) -> str:
    """The address to record: the nearest untrusted hop of X-Forwarded-For when `peer` is a
    trusted proxy, else `peer` itself. A forwarded header from anyone else is ignored."""
    peer = peer or ""
    nets = parse_networks(tuple(trusted))
    if not forwarded_for or not nets or not _trusted(peer, nets):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")[:32] if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, nets):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer
