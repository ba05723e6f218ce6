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


POOL_SIZE: Final[int] = 64


def connect(url: str, *, max_connections: int = POOL_SIZE) -> aioredis.Redis:
    """An async Redis client whose pool makes callers wait for a connection rather than fail
    (redis-py's default pool raises past its limit, which a burst of joins reaches)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=10,
        socket_connect_timeout=3, socket_timeout=5, health_check_interval=15)
    return aioredis.Redis(connection_pool=pool)


def key(scope: str, opaque: str, what: str) -> str:
    """Build a key from an opaque id (a keyed hash or a random id), never a name."""
    if not _OPAQUE.match(opaque):
        raise ValueError("redis keys take opaque ids only")
    return f"{PREFIX}:{scope}:{{{opaque}}}:{what}"
