from __future__ import annotations

import pytest

from services.common import subjects
from services.common.clientaddr import client_address
from services.common.hashing import ip_key, room_key
from services.common.ratelimit import RateLimiter
from services.common.redisclient import key


def test_room_key_keyed_and_stable() -> None:
    assert room_key("k1", "hello") == room_key("k1", "hello")
    assert room_key("k1", "hello") != room_key("k2", "hello")
    assert room_key("k1", "hello") != ip_key("k1", "hello")
    assert "hello" not in room_key("k1", "hello")


def test_subjects_take_opaque_tokens_only() -> None:
    rk = room_key("k", "hello")
    assert subjects.room_events(rk) == f"parley.room.{rk}.events"
    with pytest.raises(ValueError):
        subjects.room_events("my room")
    with pytest.raises(ValueError):
        subjects.peer_inbox(rk, "a.b")


def test_redis_key_refuses_names() -> None:
    assert key("room", "abc_-1", "members") == "parley:room:{abc_-1}:members"
    with pytest.raises(ValueError):
        key("room", "café meeting", "members")


def test_rate_limiter_burst_then_refill() -> None:
    rl = RateLimiter(rate=1, burst=3)
    assert [rl.allow("a", now=0) for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b", now=0)
    assert rl.allow("a", now=1.0)
    assert not rl.allow("a", now=1.0)


def test_rate_limiter_bounded_memory() -> None:
    rl = RateLimiter(rate=1, burst=1, max_keys=10)
    for i in range(100):
        rl.allow(str(i), now=0)
    assert len(rl._buckets) == 10


def test_client_address_ignores_untrusted_forwarded() -> None:
    assert client_address("198.51.100.9", "203.0.113.1", []) == "198.51.100.9"
    assert client_address("198.51.100.9", "203.0.113.1", ["10.0.0.0/8"]) == "198.51.100.9"


def test_client_address_trusted_proxy_chain() -> None:
    trusted = ["10.0.0.0/8", "127.0.0.1/32"]
    assert client_address("10.1.1.1", "203.0.113.1", trusted) == "203.0.113.1"
    # spoofed left-most hop is ignored: the nearest untrusted hop wins
    assert client_address("10.1.1.1", "1.2.3.4, 203.0.113.1, 10.2.2.2", trusted) == "203.0.113.1"
    assert client_address("10.1.1.1", "garbage", trusted) == "10.1.1.1"
