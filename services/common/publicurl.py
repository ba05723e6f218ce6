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


def relay_host(announced: str, local_address: str | None) -> str:
    """The relay address to give a browser.

    A relay that announces a loopback or unspecified address (the single-server stack,
    whose relay listens on every interface) is reached at the address the browser's
    request came in on (`local_address`, the interface of this machine it used). Any other
    announced address is used as it is. Without a usable local address the announced one
    is returned.
    """
    try:
        ip = ipaddress.ip_address(announced)
    except ValueError:
        return announced  # a DNS name
    if not (ip.is_loopback or ip.is_unspecified) or not local_address:
        return announced
    try:
        local = ipaddress.ip_address(local_address.strip().strip("[]"))
    except ValueError:
        return announced
    if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
        local = local.ipv4_mapped
    if local.is_unspecified or local.is_multicast:
        return announced
    return str(local)
