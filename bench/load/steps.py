"""Stepped open-loop load: one step offers a fixed rate for a while; which steps pass.

`run_step` starts operation `i` at `start + i / rate` whatever the earlier ones are doing
(open loop: a slow server does not slow the offered load down, so queueing shows in the
latencies), with a cap on operations in flight. `StepResult` and `sustained` are pure: a
step passes when its p99 is under the target and nothing failed; the sustained rate is the
highest passing rate below the first two failing steps in a row (one failing step on a
shared machine can be a hiccup). A step *keeps up* when nothing failed and the work offered
was done within `KEEP_UP_SLACK` of the step's end (no backlog): the highest such rate is the
throughput, whatever the latency. CPU seconds per operation of each process is the figure
that moves least with the machine's other load.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

P99_TARGET_MS: Final[float] = 100.0
MAX_IN_FLIGHT: Final[int] = 2000
KEEP_UP_SLACK: Final[float] = 1.0  # s after the step's end by which its work is done


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (nearest rank) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@dataclass
class StepResult:
    """One step: the offered rate and what came of it."""

    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # process name -> CPU seconds
    rss_mib: dict[str, float] = field(default_factory=dict)  # process name -> RSS after

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def achieved(self) -> float:
        """Operations completed per second of the step (its wall time, at least its length)."""
        return self.done / max(self.wall_s, self.seconds) if self.seconds else 0.0

    def passed(self, target_ms: float = P99_TARGET_MS) -> bool:
        return not self.errors and self.done > 0 and self.p99 < target_ms

    def keeps_up(self) -> bool:
        return not self.errors and self.done > 0 and self.wall_s <= self.seconds + KEEP_UP_SLACK

    def cpu_ms_per_op(self, *, exclude: str) -> float:
        """CPU ms per completed operation of every process but `exclude` (the generator)."""
        if not self.done:
            return float("nan")
        return 1000 * sum(v for k, v in self.cpu_s.items() if k != exclude) / self.done

    def cores(self, name: str) -> float:
        """CPU of one process (or the sum of names starting with `name`) in cores."""
        total = sum(v for k, v in self.cpu_s.items() if k == name or k.startswith(name + "#"))
        return total / self.wall_s if self.wall_s else 0.0


def sustained(results: list[StepResult], target_ms: float = P99_TARGET_MS) -> float:
    """The highest rate that passed before the first two consecutive failing steps."""
    best = 0.0
    failed_before = False
    for r in results:
        if r.passed(target_ms):
            best = max(best, r.rate)
            failed_before = False
        elif failed_before:
            break
        else:
            failed_before = True
    return best


def throughput(results: list[StepResult]) -> float:
    """The highest rate that kept up (no error, no backlog), whatever its latency."""
    return max((r.rate for r in results if r.keeps_up()), default=0.0)


async def run_step(rate: float, seconds: float,
                   op: Callable[[int], Awaitable[list[float]]]) -> StepResult:
    """Offer `rate` operations per second for `seconds`; `op(i)` returns its latencies (ms)
    and raises on failure (counted by exception type)."""
    result = StepResult(rate, seconds)
    n = max(1, int(rate * seconds))
    in_flight = 0

    async def one(i: int) -> None:
        nonlocal in_flight
        try:
            result.latencies_ms.extend(await op(i))
            result.done += 1
        except Exception as exc:
            result.errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
        finally:
            in_flight -= 1

    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= MAX_IN_FLIGHT:
            result.errors["client: too many in flight"] += 1
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    result.wall_s = time.perf_counter() - start
    return result
