"""Fixed report periods: whole UTC days or ISO weeks, never an arbitrary range.

Reports can only be asked for one whole period of the configured size, and (unless a
development flag says otherwise) only once it is over. Two queries therefore never cover
overlapping-but-different sets of days, and a period's cells stop changing before anyone
can read them, so neither subtraction between queries nor re-asking over time exposes a
cell below k. Pure functions: `now` is an argument.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final, Literal

from services.metrics.errors import BadPeriod

PeriodSize = Literal["day", "week"]
_DAY_RE: Final[re.Pattern[str]] = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK_RE: Final[re.Pattern[str]] = re.compile(r"^(\d{4})-W(\d{2})$")


def day_of(now: float) -> str:
    """The UTC day (YYYY-MM-DD) of a Unix time: the only time a beacon keeps."""
    return dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()


def label_of(day: dt.date, size: PeriodSize) -> str:
    """The label of the period that contains `day`."""
    if size == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def days_of(label: str, size: PeriodSize) -> list[dt.date]:
    """The days of a period, in order.

    Raises:
        BadPeriod: the label is malformed or not of the configured size.
    """
    try:
        if size == "day":
            m = _DAY_RE.match(label)
            if not m:
                raise BadPeriod(f"period must be a day YYYY-MM-DD, got {label[:16]!r}")
            return [dt.date(int(m[1]), int(m[2]), int(m[3]))]
        m = _WEEK_RE.match(label)
        if not m:
            raise BadPeriod(f"period must be an ISO week YYYY-Www, got {label[:16]!r}")
        monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError as exc:
        raise BadPeriod(f"no such period: {label[:16]!r}") from exc
    return [monday + dt.timedelta(days=i) for i in range(7)]


def current(now: float, size: PeriodSize) -> str:
    """The label of the period in progress at `now`."""
    return label_of(dt.datetime.fromtimestamp(now, dt.UTC).date(), size)


def latest_completed(now: float, size: PeriodSize) -> str:
    """The label of the last period that is entirely over at `now`."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if size == "day":
        return (today - dt.timedelta(days=1)).isoformat()
    return label_of(today - dt.timedelta(days=today.isoweekday()), size)


def is_completed(label: str, size: PeriodSize, *, now: float) -> bool:
    """Whether every day of the period is before today (UTC)."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return days_of(label, size)[-1] < today


def resolve(label: str | None, size: PeriodSize, *, now: float, include_current: bool,
            retention_days: int) -> list[dt.date]:
    """The days of the period a request asked for (default: the latest allowed).

    Raises:
        BadPeriod: malformed, of the wrong size, not yet over (unless `include_current`),
            in the future, or older than the aggregates' retention.
    """
    if label is None:
        label = current(now, size) if include_current else latest_completed(now, size)
    days = days_of(label, size)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if days[0] > today:
        raise BadPeriod(f"period {label} is in the future")
    if not include_current and days[-1] >= today:
        raise BadPeriod(f"period {label} is not over yet; only completed periods are served")
    if days[-1] < today - dt.timedelta(days=retention_days):
        raise BadPeriod(f"period {label} is older than the retention")
    return days
