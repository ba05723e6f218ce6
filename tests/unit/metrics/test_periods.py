"""Fixed report periods: only whole, completed days or ISO weeks."""

from __future__ import annotations

import datetime as dt

import pytest

from services.metrics import periods
from services.metrics.errors import BadPeriod

WED = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC).timestamp()  # ISO week 48


def test_latest_completed_day_and_week() -> None:
    assert periods.latest_completed(WED, "day") == "2026-11-24"
    assert periods.latest_completed(WED, "week") == "2026-W47"
    assert periods.current(WED, "week") == "2026-W48"


def test_days_of_week_monday_to_sunday() -> None:
    days = periods.days_of("2026-W47", "week")
    assert days[0] == dt.date(2026, 11, 16) and days[-1] == dt.date(2026, 11, 22)


def test_resolve_refuses_current_period() -> None:
    with pytest.raises(BadPeriod, match="not over yet"):
        periods.resolve("2026-W48", "week", now=WED, include_current=False, retention_days=400)
    assert len(periods.resolve("2026-W48", "week", now=WED, include_current=True,
                               retention_days=400)) == 7


@pytest.mark.parametrize("label", ["2026-11-24", "2026-W99", "last-7-days", "2026-11-01..05"])
def test_resolve_refuses_other_shapes_for_weeks(label: str) -> None:
    with pytest.raises(BadPeriod):
        periods.resolve(label, "week", now=WED, include_current=False, retention_days=400)


def test_resolve_refuses_future_and_expired() -> None:
    with pytest.raises(BadPeriod, match="future"):
        periods.resolve("2026-12-01", "day", now=WED, include_current=True, retention_days=400)
    with pytest.raises(BadPeriod, match="retention"):
        periods.resolve("2026-01-01", "day", now=WED, include_current=False, retention_days=30)


def test_resolve_default_is_latest_completed() -> None:
    assert periods.resolve(None, "day", now=WED, include_current=False,
                           retention_days=30) == [dt.date(2026, 11, 24)]
