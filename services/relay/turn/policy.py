"""Which peer addresses the relay may talk to: deny internal ranges unless configured.

A relay must never be a way into the network it runs in (the TURN-as-SSRF-proxy attacks):
loopback, link-local (incl. cloud metadata 169.254.169.254), unspecified, multicast,
broadcast, reserved, private, CGNAT and IPv6 ULA/link-local are refused, also in their
IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms. Among the relay's own addresses only
its live relayed sockets are reachable, so that two clients of one relay meet; its listening
ports never are, on any address that reaches them (its own, loopback, unspecified), not even
through `--allow-peer`: relaying to its own listener would nest allocations into a TURN loop
(compare coturn's CVE-2020-26262).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Container, Iterable
from functools import lru_cache
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED_V4: Final[tuple[ipaddress.IPv4Network, ...]] = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # CGNAT shared address space
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255 broadcast
    )
)
DENIED_V6: Final[tuple[ipaddress.IPv6Network, ...]] = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPAT: Final = ipaddress.IPv6Network("::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")


class Verdict(enum.Enum):
    """A policy decision for one peer IP."""

    ALLOW = "allow"
    DENY = "deny"
    OWN = "own"  # the relay's own IP: only its relayed ports are reachable


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _NAT64_LOCAL or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse `--allow-peer` CIDRs; `ValueError` names the bad one."""
    nets: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {cidr!r}") from exc
    return tuple(nets)


class PeerPolicy:
    """Decides whether the relay may exchange packets with a peer address."""

    def __init__(
        self,
        *,
        relay_ips: Iterable[str] = (),
        relay_ports: tuple[int, int] = (49152, 65535),
        allow: Iterable[IPNetwork] = (),
        listen_ports: Iterable[int] = (),
        live_ports: Container[int] = frozenset(),
    ) -> None:
        """
        Args:
            relay_ips: the relay's own addresses (relayed sockets bind the first).
            relay_ports: the relayed port range.
            allow: `--allow-peer` networks, opened despite the deny list.
            listen_ports: the relay's listening ports (UDP/TCP, TLS): never a peer.
            live_ports: the relayed ports with a live socket now (read at every decision;
                the shell shares one set across its workers).
        """
        self.relay_ips: frozenset[str] = frozenset(str(ipaddress.ip_address(i)) for i in relay_ips)
        self.relay_ports = relay_ports
        self.allow = tuple(allow)
        self.listen_ports = frozenset(listen_ports)
        self.live_ports = live_ports
        self.verdict = lru_cache(maxsize=4096)(self._verdict)
        self.is_self = lru_cache(maxsize=4096)(self._is_self)

    def _allowed_by_config(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allow)

    def _verdict(self, host: str) -> Verdict:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return Verdict.DENY
        if self._allowed_by_config(ip):
            return Verdict.ALLOW
        if str(ip) in self.relay_ips:
            return Verdict.OWN
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                if self._allowed_by_config(inner):
                    return Verdict.ALLOW
                if str(inner) in self.relay_ips:
                    return Verdict.OWN
                return Verdict.DENY if _denied(inner) else Verdict.ALLOW
        return Verdict.DENY if _denied(ip) else Verdict.ALLOW

    def _is_self(self, host: str) -> bool:
        """Does `host` reach this machine: its own IPs, loopback, unspecified (any form)?"""
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                ip = inner
        return str(ip) in self.relay_ips or ip.is_loopback or ip.is_unspecified

    def permits_ip(self, host: str) -> bool:
        """Whether a permission for `host` may be installed (RFC 8656 §9: IP only)."""
        return self.verdict(host) is not Verdict.DENY

    def permits(self, peer: tuple[str, int]) -> bool:
        """Whether data may be sent to `peer` (host, port).

        Never to one of the relay's listening ports on an address of its own; on its own
        IP, only to a relayed port whose socket is live (RFC 8656 §21.2.3, a relay loop).
        """
        host, port = peer[0], peer[1]
        if port in self.listen_ports and self.is_self(host):
            return False
        verdict = self.verdict(host)
        if verdict is Verdict.OWN:
            return self.relay_ports[0] <= port <= self.relay_ports[1] and port in self.live_ports
        return verdict is Verdict.ALLOW


def _denied(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in n for n in DENIED_V4)
    return any(ip in n for n in DENIED_V6) or not ip.is_global
