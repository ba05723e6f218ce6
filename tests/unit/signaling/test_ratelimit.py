"""Unit tests of the token buckets."""

from __future__ import annotations

import pytest

from services.signaling.ratelimit import Limiter, TokenBucket


def test_token_bucket_burst_then_refused() -> None:
    bucket = TokenBucket(rate=1.0, burst=3.0, updated=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_token_bucket_refills_at_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, updated=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)  # 0.5 s x 2/s = 1 token
    assert not bucket.take(0.5)


def test_token_bucket_caps_at_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0, updated=0.0)
    assert bucket.available(1000.0) == 2.0


def test_token_bucket_clock_going_back_does_not_refill() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, updated=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_token_bucket_cost_larger_than_tokens_takes_nothing() -> None:
    bucket = TokenBucket(rate=0.0, burst=4.0)
    assert not bucket.take(0.0, cost=5.0)
    assert bucket.available(0.0) == 4.0


def test_token_bucket_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=1.0, burst=0.0)


def test_limiter_violations_exhaust_tolerance() -> None:
    limiter = Limiter.create(rate=1.0, burst=1.0, abuse_rate=0.0, abuse_burst=3.0, now=0.0)
    assert [limiter.violation(0.0, 1.0) for _ in range(4)] == [True, True, True, False]


def test_limiter_tolerance_recovers() -> None:
    limiter = Limiter.create(rate=1.0, burst=1.0, abuse_rate=1.0, abuse_burst=2.0, now=0.0)
    assert limiter.violation(0.0, 2.0)
    assert not limiter.violation(0.0, 1.0)
    assert limiter.violation(1.0, 1.0)
