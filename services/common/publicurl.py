"""URLs handed to browsers: from the configured public URL, never from request headers.

`PARLEY_PUBLIC_URL` (e.g. `https://chat.example.org`) is the origin browsers use. Without
it every URL in an answer is a path (`/ws`, `/amber-otter-1`) that the browser resolves
against the origin it already used, so the page works by IP, by name and on localhost
alike, and a forged `Host` header cannot steer a link elsewhere (issue 15, item 6).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def parse_public_url(value: str) -> str:
    """Check and normalise a public URL to its origin (`scheme://host[:port]`, no slash).

    Raises:
        ValueError: not http(s), no host, or a path, query or fragment beyond `/`.
    """
    text = value.strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {text!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://HOST[:PORT], got {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"expected an origin without path, query or user, got {text!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def page_url(public_url: str, path: str) -> str:
    """`path` under the public origin, or `path` itself when none is configured."""
    return f"{public_url}{path}" if public_url else path


def websocket_url(public_url: str, path: str = "/ws") -> str:
    """The websocket URL (`wss://` for an https origin), or `path` alone."""
    if not public_url:
        return path
    scheme, rest = public_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}"


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def relay_host(announced: str, local_address: str | None, *, client: str | None = None,
               fallback: str | None = None) -> str:
    """The relay address to give a browser.

    A relay that announces a loopback or unspecified address (the single-server stack,
    whose relay listens on every interface) is reached at:

    1. the address the browser's request came in on (`local_address`, the interface of
       this machine it used), unless that is loopback;
    2. else, for a browser that is not on this machine (`client` not loopback), the public
       URL's host name (`fallback`): behind a proxy that does not tell the interface
       (Caddy 2.6) only that is left, and the request's own `Host` is never used;
    3. else the announced address (a browser on this machine).

    Any other announced address (`--relay-public-ip`, a cluster's relays) is used as it is.
    """
    ann = _ip(announced)
    if ann is None or not (ann.is_loopback or ann.is_unspecified):
        return announced
    local = _ip(local_address)
    if local is not None and not (local.is_loopback or local.is_unspecified
                                  or local.is_multicast):
        return str(local)
    remote = _ip(client)
    if fallback and (remote is None or not remote.is_loopback):
        return fallback
    return "127.0.0.1" if ann.is_unspecified else announced


def hostname(value: str | None) -> str | None:
    """The host name of a URL or a Host header (no port, no brackets), or None."""
    if not value:
        return None
    try:
        host = urlsplit(value if "//" in value else f"//{value}").hostname
    except ValueError:
        return None
    return host or None
