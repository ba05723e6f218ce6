"""When `parley dev` / `parley serve` restart a crashed child: exponential backoff, sans-I/O.

The first restart comes after `first` seconds, each following one after twice the last, up
to `ceiling`; a child that stayed up `stable_after` seconds before it died starts again
from `first`. The caller passes the clock (`time.monotonic()`), so the policy is tested
without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FIRST_DELAY: Final[float] = 0.5
MAX_DELAY: Final[float] = 30.0
STABLE_AFTER: Final[float] = 60.0


@dataclass
class RestartPolicy:
    """One child's restarts: how long to wait before the next, and how many so far."""

    first: float = FIRST_DELAY
    ceiling: float = MAX_DELAY
    stable_after: float = STABLE_AFTER
    restarts: int = 0  # every restart of this child since the stack started
    _streak: int = 0  # restarts since the child last stayed up `stable_after`
    _started_at: float = 0.0

    def started(self, now: float) -> None:
        """The child was (re)started at `now`."""
        self._started_at = now

    def crashed(self, now: float) -> float:
        """The child was found dead at `now`: count a restart and return the delay before it."""
        if now - self._started_at >= self.stable_after:
            self._streak = 0
        delay: float = min(self.ceiling, self.first * 2.0 ** self._streak)
        self._streak += 1
        self.restarts += 1
        return delay


def restart_line(stack: str, child: str, code: int | None, delay: float, restarts: int) -> str:
    """The one line logged per restart, e.g. `parley dev: signaling-1 exited with code -9;
    restarting in 1.0 s (restart 2)`; `code` None: it did not start (again)."""
    what = "did not start" if code is None else f"exited with code {code}"
    return f"{stack}: {child} {what}; restarting in {delay:.1f} s (restart {restarts})"
