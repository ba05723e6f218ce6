"""Cross-site protection for rooms' `/api` POSTs: JSON bodies only, and only allowed Origins.

A foreign page can make its visitors' browsers send "simple" requests (form-encoded, text, or
empty bodies) without asking; an `application/json` body needs a CORS preflight that rooms
never grants, and the Origin header names the page that sent the request. So a POST under
`/api/` is answered only when its body is declared JSON (415 otherwise) and its Origin is
absent (a non-browser client), the request's own origin, or listed in `PARLEY_ALLOWED_ORIGINS`
(the same variable signalling reads for `/ws`; `*` allows any) - 403 otherwise. The refusal
happens before any handler runs: a refused request leaves no diagnostic record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

GUARDED_METHODS: Final[frozenset[str]] = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX: Final[str] = "/api/"
DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "https": 443}
NOT_JSON: Final[str] = "the request body must be JSON (Content-Type: application/json)"
FOREIGN_ORIGIN: Final[str] = (
    "cross-origin request refused: this Origin is not allowed (PARLEY_ALLOWED_ORIGINS)"
)


def _endpoint(scheme: str, netloc: str) -> tuple[str, int] | None:
    """(host, port) of `netloc`, with the scheme's default port; None if unparsable."""
    try:
        parts = urlsplit(f"//{netloc}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    default = DEFAULT_PORTS.get(scheme)
    if port is None:
        if default is None:
            return None
        port = default
    return host.lower(), port


def same_origin(origin: str, host: str | None) -> bool:
    """Is `origin` (`scheme://host[:port]`) the origin of a request sent to `host` (Host)?

    The scheme is taken from the Origin (TLS often ends at the ingress, so the request's
    own scheme says nothing); host names and ports must match, default ports filled in.
    """
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return False
    mine = _endpoint(scheme, parts.netloc)
    theirs = _endpoint(scheme, host)
    return mine is not None and mine == theirs


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """May a request with this Origin header use the API?

    Args:
        origin: the Origin header; None (non-browser clients) is allowed.
        host: the request's Host header (its own origin is always allowed).
        allowed: extra origins (`PARLEY_ALLOWED_ORIGINS`); `*` allows any.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    if origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}:
        return True
    return same_origin(origin, host)


def is_json(content_type: str | None) -> bool:
    """`application/json`, with or without parameters (`; charset=utf-8`)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def refusal(
    method: str, path: str, headers: dict[str, str], allowed: Sequence[str]
) -> tuple[int, str] | None:
    """The (status, detail) a request must be refused with, or None to let it through."""
    if method.upper() not in GUARDED_METHODS or not path.startswith(API_PREFIX):
        return None
    if not origin_allowed(headers.get("origin"), headers.get("host"), allowed):
        return 403, FOREIGN_ORIGIN
    if not is_json(headers.get("content-type")):
        return 415, NOT_JSON
    return None


class ApiGuard:
    """ASGI middleware applying `refusal` before the app sees the request."""

    def __init__(self, app: ASGIApp, *, allowed_origins: Sequence[str]) -> None:
        self.app, self.allowed = app, tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in scope.get("headers") or []
            }
            refused = refusal(scope["method"], scope["path"], headers, self.allowed)
            if refused is not None:
                status, detail = refused
                body = json.dumps({"detail": detail}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
