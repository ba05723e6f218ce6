"""Token buckets: per-source request rate limiting with a bounded table.

The relay counts STUN requests per source IP (not ChannelData, not media) so that one
host cannot make it spend its CPU on authentication and allocation work.
"""

from __future__ import annotations

from typing import Final

MAX_SOURCES: Final[int] = 65536


class RateLimiter:
    """A token bucket per key: `rate` tokens per second, at most `burst` banked."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = MAX_SOURCES) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens from `key`'s bucket; False when it is empty."""
        if self.rate <= 0:
            return True
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self.prune(now)
            if len(self._buckets) >= self.max_keys:
                return False
        self._buckets[key] = (tokens - cost, now)
        return True

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled: they hold no information."""
        full_after = self.burst / self.rate if self.rate > 0 else 0.0
        stale = [k for k, (_, stamp) in self._buckets.items() if now - stamp >= full_after]
        for key in stale:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
