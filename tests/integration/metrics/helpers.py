"""Beacons and waits shared by the metrics integration tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from typing import Any

import redis.asyncio as aioredis

from services.metrics.store import day_key


def ua(major: int, marker: str = "") -> str:
    """A Firefox-on-Linux User-Agent with a test-unique major version."""
    return (f"Mozilla/5.0 (X11; Linux x86_64; rv:{major}.0) Gecko/20100101 Firefox/{major}.0"
            + (f" {marker}" if marker else ""))


def beacon(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "nonce": secrets.token_urlsafe(16), "event": "session-end",
                            "local_candidate": "host", "remote_candidate": "srflx",
                            "protocol": "udp", "duration": "1-5m", "peers": "2"}
    body.update(over)
    return body


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


async def sessions_of(redis_url: str, browser: str, major: int) -> int:
    """Sessions folded today for one browser family + major (summing their cells)."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        cells = await client.hgetall(day_key(today()))
    finally:
        await client.aclose()
    prefix = f"{browser}|{major}|"
    return sum(int(n) for c, n in cells.items() if c.startswith(prefix))


async def wait_sessions(redis_url: str, browser: str, major: int, expected: int,
                        within: float = 20) -> int:
    """Wait until the aggregate holds `expected` sessions (returns what it holds)."""
    deadline = time.monotonic() + within
    n = -1
    while time.monotonic() < deadline:
        n = await sessions_of(redis_url, browser, major)
        if n >= expected:
            return n
        await asyncio.sleep(0.1)
    return n


def wait_sessions_sync(redis_url: str, browser: str, major: int, expected: int,
                       within: float = 20) -> int:
    """`wait_sessions` for synchronous tests (Playwright's sync API owns the loop)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + within
    n = -1
    prefix = f"{browser}|{major}|"
    try:
        while time.monotonic() < deadline:
            cells = client.hgetall(day_key(today()))
            n = sum(int(v) for c, v in cells.items() if c.startswith(prefix))
            if n >= expected:
                return n
            time.sleep(0.1)
    finally:
        client.close()
    return n
