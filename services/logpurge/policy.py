"""Retention rules as plain functions: what is past retention, which day keys die, overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

DAY: Final[float] = 86400.0


def cutoff(now: float, retention_days: int) -> float:
    """Records with `at` < cutoff are past retention and must go."""
    return now - retention_days * DAY


def day_end(day: str) -> float:
    """Unix time at which the UTC day `YYYYMMDD` ends."""
    start = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    return (start + timedelta(days=1)).timestamp()


def expired_days(days: list[str], *, now: float, retention_days: int) -> list[str]:
    """Days every record of which is past retention: their keys are destroyed."""
    limit = cutoff(now, retention_days)
    out = []
    for d in days:
        try:
            if day_end(d) <= limit:
                out.append(d)
        except ValueError:
            continue  # not a day key; never touched
    return sorted(out)


def overdue(oldest_at: float | None, *, now: float, retention_days: int, interval: float) -> bool:
    """True when the oldest record is older than retention + 2 purge intervals: alert."""
    if oldest_at is None:
        return False
    return now - oldest_at > retention_days * DAY + 2 * interval


def oldest_age(oldest_at: float | None, *, now: float) -> float:
    """Age in seconds of the oldest record (0 for an empty log or one dated in the future)."""
    if oldest_at is None:
        return 0.0
    return max(0.0, now - oldest_at)
