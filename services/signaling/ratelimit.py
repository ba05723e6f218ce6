"""Per-connection limits as token buckets: the message rate, and the tolerance for abuse.

A client may burst (ICE candidates come in bursts) but not sustain more than its rate;
messages past the rate are refused with an error. Each refusal, malformed or oversized
message costs from a second, small bucket; only when that one is empty is the client
closed (4429, or 1009 for oversized frames). Time is passed in: no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# What each kind of violation costs from the abuse bucket.
COST_RATE_LIMITED: Final[float] = 1.0
COST_BAD_MESSAGE: Final[float] = 1.0
COST_TOO_LARGE: Final[float] = 5.0


@dataclass(slots=True)
class TokenBucket:
    """A token bucket of `burst` tokens refilled at `rate` per second."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        if self.tokens < 0:
            self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens at time `now`; False (and nothing taken) if there are too few."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def available(self, now: float) -> float:
        """Tokens available at `now`."""
        self._refill(now)
        return self.tokens


@dataclass(slots=True)
class Limiter:
    """The limits of one connection: message rate, then tolerance for violations."""

    messages: TokenBucket
    abuse: TokenBucket

    @classmethod
    def create(cls, *, rate: float, burst: float, abuse_rate: float, abuse_burst: float,
               now: float) -> Limiter:
        return cls(TokenBucket(rate, burst, updated=now), TokenBucket(abuse_rate, abuse_burst,
                                                                        updated=now))

    def allow(self, now: float) -> bool:
        """May one more message be processed at `now`?"""
        return self.messages.take(now)

    def violation(self, now: float, cost: float) -> bool:
        """Record a violation; False when the client is past tolerance and must be closed."""
        return self.abuse.take(now, cost)
