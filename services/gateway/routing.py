"""The gateway's sans-I/O core: which upstream serves a path, and the headers it gets.

Paths are matched as the chart's Ingress matches them (Kubernetes `pathType: Prefix`: a
prefix matches whole path segments, `/ws` matches `/ws` and `/ws/x` but not `/wsx`; the
longest prefix wins). Several upstreams behind one prefix (signalling replicas) are dealt
out round-robin, one per connection.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

Header = tuple[bytes, bytes]

# RFC 9110 §7.6.1: connection-specific fields a proxy must not forward.
HOP_BY_HOP: Final[frozenset[bytes]] = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
    b"proxy-authorization", b"te", b"trailer", b"upgrade",
})
# What the gateway sets itself; a client's own values are believed only from a trusted proxy.
FORWARDED: Final[frozenset[bytes]] = frozenset({
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-parley-local-addr",
    b"forwarded",
})
LOCAL_ADDR_HEADER: Final[bytes] = b"x-parley-local-addr"
# The paths of charts/parley/templates/common-ingress.yaml (metrics.ingressPaths included).
INGRESS_PATHS: Final[dict[str, str]] = {
    "/ws": "signaling",
    "/beacon": "metrics",
    "/reports": "metrics",
    "/stats.json": "metrics",
    "/": "rooms",
}


@dataclass
class Route:
    """A path prefix and the upstreams ("host:port") that serve it."""

    prefix: str
    upstreams: Sequence[str]
    _turn: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def matches(self, path: str) -> bool:
        """Whether `path` falls under this prefix, segment by segment."""
        if self.prefix == "/":
            return path.startswith("/")
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")

    def next_upstream(self) -> str:
        """The upstream for the next connection (round-robin)."""
        return self.upstreams[next(self._turn) % len(self.upstreams)]


class RouteTable:
    """Routes, longest prefix first."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    @classmethod
    def ingress(cls, upstreams: dict[str, Sequence[str]]) -> RouteTable:
        """The Ingress's table for the services given ("rooms", "signaling", "metrics")."""
        return cls(Route(prefix, upstreams[svc]) for prefix, svc in INGRESS_PATHS.items()
                   if upstreams.get(svc))

    def match(self, target: bytes) -> Route | None:
        """The route of a request target (its path, query ignored), or None."""
        path = target.split(b"?", 1)[0].decode("latin-1")
        if not path.startswith("/"):
            return None
        return next((r for r in self.routes if r.matches(path)), None)


def parse_route(text: str) -> Route:
    """`/ws=127.0.0.1:8081,127.0.0.1:8082` -> Route; ValueError says what is wrong."""
    prefix, sep, targets = text.partition("=")
    upstreams = [t.strip() for t in targets.split(",") if t.strip()]
    if not sep or not prefix.startswith("/") or not upstreams:
        raise ValueError(f"expected /PREFIX=HOST:PORT[,HOST:PORT...], got {text!r}")
    for up in upstreams:
        host, _, port = up.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {up!r}")
    return Route(prefix, upstreams)


def _header(headers: Sequence[Header], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _tokens(value: bytes | None) -> set[bytes]:
    return {t.strip().lower() for t in (value or b"").split(b",") if t.strip()}


def is_websocket(headers: Sequence[Header]) -> bool:
    """A websocket handshake (RFC 6455 §4.1): `Connection: upgrade`, `Upgrade: websocket`."""
    return (b"upgrade" in _tokens(_header(headers, b"connection"))
            and b"websocket" in _tokens(_header(headers, b"upgrade")))


def is_trusted(address: str, trusted: Sequence[str]) -> bool:
    """Whether a peer address lies in one of the trusted CIDRs."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)


def plain_address(address: str) -> str:
    """An IPv4-mapped IPv6 address as IPv4; anything else unchanged."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def forwarded_headers(
    headers: Sequence[Header], *, peer: str, local: str, tls: bool, trusted_peer: bool,
    websocket: bool = False,
) -> list[Header]:
    """The request headers an upstream gets.

    Hop-by-hop fields go (RFC 9110 §7.6.1), except a websocket handshake's `Connection`
    and `Upgrade`; `Host` stays as the browser sent it, so origin checks compare against
    the address the browser used. `X-Forwarded-For` gets the peer appended; from a peer
    that is not a trusted proxy the client's own `X-Forwarded-*` and
    `X-Parley-Local-Addr` are dropped first, then set from this connection:
    `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Parley-Local-Addr` (the address the
    connection came in on, which rooms hands out as the relay's address).
    """
    connection_named = _tokens(_header(headers, b"connection"))
    out: list[Header] = []
    prior: dict[bytes, bytes] = {}
    for key, value in headers:
        name = key.lower()
        if name in FORWARDED:
            if trusted_peer:
                prior.setdefault(name, value)
            continue
        if websocket and name in (b"connection", b"upgrade"):
            out.append((name, value))
            continue
        if name in HOP_BY_HOP or name in connection_named:
            continue
        out.append((name, value))
    xff = prior.get(b"x-forwarded-for")
    out.append((b"x-forwarded-for",
                (xff + b", " if xff else b"") + plain_address(peer).encode("latin-1")))
    out.append((b"x-forwarded-proto",
                prior.get(b"x-forwarded-proto", b"https" if tls else b"http")))
    host = prior.get(b"x-forwarded-host") or _header(headers, b"host")
    if host:
        out.append((b"x-forwarded-host", host))
    out.append((LOCAL_ADDR_HEADER,
                prior.get(LOCAL_ADDR_HEADER, plain_address(local).encode("latin-1"))))
    return out


def response_headers(headers: Sequence[Header]) -> list[Header]:
    """An upstream's response headers without hop-by-hop fields (framing kept for h11)."""
    connection_named = _tokens(_header(headers, b"connection"))
    return [(k, v) for k, v in headers
            if k.lower() not in HOP_BY_HOP and k.lower() not in connection_named]
