"""Redis helper: one async client per process and the key builder (opaque keys only).

Keys are `parley:<scope>:{<opaque key>}:<what>`; the braces are a Redis Cluster hash tag so
one room's keys live in one slot. Nothing here ever takes a room name or an IP.
"""

from __future__ import annotations

import re
from typing import Final

import redis.asyncio as aioredis

PREFIX: Final[str] = "parley"
_OPAQUE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def connect(url: str) -> aioredis.Redis:
    """An async Redis client (connection pool, decoded responses, short timeouts)."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5,
        health_check_interval=15,
    )


def key(scope: str, opaque: str, what: str) -> str:
    """Build a key from an opaque id (a keyed hash or a random id), never a name."""
    if not _OPAQUE.match(opaque):
        raise ValueError("redis keys take opaque ids only")
    return f"{PREFIX}:{scope}:{{{opaque}}}:{what}"
