"""Key-frame requests to one publisher, at most one per interval (RFC 4585 §3.4: PLI).

Every subscriber that loses sync asks for a key frame; a publisher asked twenty times in a
moment sends twenty key frames and floods everyone. One passes per interval; the others
are dropped, since the key frame that answers the first serves them all.
"""

from __future__ import annotations

from typing import Final

DEFAULT_INTERVAL: Final[float] = 0.5


class KeyframeThrottle:
    """Whether a key-frame request may go to a publisher now."""

    __slots__ = ("_last", "dropped", "interval", "passed")

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._last: float | None = None
        self.passed = 0
        self.dropped = 0

    def allow(self, *, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval:
            self.dropped += 1
            return False
        self._last = now
        self.passed += 1
        return True
