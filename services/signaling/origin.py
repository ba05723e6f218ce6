"""The Origin check on the websocket handshake (a browser's cross-site protection)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit


def _hostname(value: str) -> str | None:
    try:
        host = urlsplit(value if "//" in value else f"//{value}").hostname
    except ValueError:
        return None
    return host.lower() if host else None


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """May a socket with this `Origin` header open, given the `Host` it was sent to?

    Args:
        origin: the Origin header; None for non-browser clients (they carry a token anyway).
        host: the Host header of the request.
        allowed: the allowlist; empty means "same host name, any port" (dev and a single
            ingress host); "*" allows any origin.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    if allowed:
        return origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}
    origin_host = _hostname(origin)
    return origin_host is not None and origin_host == _hostname(host or "")
