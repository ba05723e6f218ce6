"""Resident memory and open descriptors of processes, from /proc, and whether they grow.

`sample(pid)` reads `VmRSS` from `/proc/<pid>/status` and counts `/proc/<pid>/fd`;
`verdict(...)` (pure) says whether a series of such samples looks like it grows without
bound: a steady rise over its last samples, larger than the noise of a busy process.
`scan_log(text)` counts the error lines and tracebacks of a stack's output.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CLOCK_TICKS: Final[int] = os.sysconf("SC_CLK_TCK")
#: Samples at the end of a series that must all rise for it to be called growing.
TAIL: Final[int] = 5
#: A rise over those samples smaller than this is noise: RSS (KiB) and descriptors.
RSS_NOISE_KIB: Final[int] = 2048
RSS_NOISE_SHARE: Final[float] = 0.02
FD_NOISE: Final[int] = 3
#: A step down smaller than this still counts as "not falling" (allocator jitter).
RSS_JITTER_KIB: Final[int] = 512
# Python's "Traceback", a logging level of ERROR/CRITICAL (text or JSON lines), NATS's
# "[ERR]"/"[FTL]", Redis's "# " warnings that are errors, and the dev stack's restart line.
_ERROR_LINE: Final[re.Pattern[str]] = re.compile(
    r"Traceback \(most recent call last\)| ERROR | CRITICAL |\"level\": \"(?:error|critical)\""
    r"|\[ERR\]|\[FTL\]| exited with code | did not start; restarting")
_WARNING_LINE: Final[re.Pattern[str]] = re.compile(r" WARNING |\"level\": \"warning\"|\[WRN\]")


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one process: when (s since the soak's start), pid, RSS, descriptors,
    CPU time used so far (user + system, s)."""

    t: float
    pid: int
    rss_kib: int
    fds: int
    cpu_s: float = 0.0


def sample(pid: int, *, t: float) -> Sample | None:
    """Read `pid`'s RSS, descriptor count and CPU time; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    cpu = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    rss = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
            break
    return Sample(t, pid, rss, fds, cpu)


def _rises(values: list[int], *, noise: int, jitter: int) -> bool:
    """The last `TAIL` values never fall by more than `jitter` and rise by more than `noise`."""
    tail = values[-TAIL:]
    if len(tail) < TAIL:
        return False
    steps = [b - a for a, b in itertools.pairwise(tail)]
    rising = sum(1 for s in steps if s > 0)
    return all(s >= -jitter for s in steps) and rising >= len(steps) - 1 \
        and tail[-1] - tail[0] > noise


def verdict(samples: list[Sample]) -> str:
    """"ok", or what looks unbounded: "RSS grows", "fds grow", "restarted" (pid changed),
    "gone" (no sample at the end), or "too few samples" to judge growth."""
    if not samples:
        return "gone"
    if len({s.pid for s in samples}) > 1:
        return "restarted"
    if len(samples) < TAIL:
        return "ok (too few samples to judge growth)"
    rss = [s.rss_kib for s in samples]
    fds = [s.fds for s in samples]
    problems = []
    if _rises(rss, noise=max(RSS_NOISE_KIB, int(RSS_NOISE_SHARE * rss[0])),
              jitter=RSS_JITTER_KIB):
        problems.append("RSS grows")
    if _rises(fds, noise=FD_NOISE, jitter=0):
        problems.append("fds grow")
    return ", ".join(problems) or "ok"


@dataclass(frozen=True, slots=True)
class LogScan:
    """Error and warning lines found in a log, with the first few errors verbatim."""

    errors: int
    warnings: int
    examples: tuple[str, ...]
    warning_examples: tuple[str, ...] = ()


def scan_log(text: str, *, keep: int = 5) -> LogScan:
    """Count error lines (tracebacks, ERROR/CRITICAL, NATS [ERR], restarts) and warnings."""
    errors = warnings = 0
    examples: list[str] = []
    warned: list[str] = []
    for line in text.splitlines():
        if _ERROR_LINE.search(line):
            errors += 1
            if len(examples) < keep:
                examples.append(line[:300])
        elif _WARNING_LINE.search(line):
            warnings += 1
            if len(warned) < keep:
                warned.append(line[:300])
    return LogScan(errors, warnings, tuple(examples), tuple(warned))
