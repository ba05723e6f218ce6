from __future__ import annotations

from datetime import UTC, datetime

from services.logpurge.policy import DAY, cutoff, day_end, expired_days, oldest_age, overdue

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


def test_cutoff_is_retention_before_now() -> None:
    assert cutoff(NOW, 30) == NOW - 30 * DAY


def test_day_end_is_next_midnight_utc() -> None:
    assert day_end("20261125") == datetime(2026, 11, 26, tzinfo=UTC).timestamp()


def test_expired_days_only_whole_days_past_retention() -> None:
    days = ["20261024", "20261025", "20261026", "garbage", "20261125"]
    # cutoff = 2026-10-26 12:00; 10-25 ends at 10-26 00:00 (gone), 10-26 ends after the cutoff
    assert expired_days(days, now=NOW, retention_days=30) == ["20261024", "20261025"]


def test_overdue_after_two_missed_intervals() -> None:
    assert not overdue(None, now=NOW, retention_days=30, interval=3600)
    assert not overdue(NOW - 30 * DAY - 7199, now=NOW, retention_days=30, interval=3600)
    assert overdue(NOW - 30 * DAY - 7201, now=NOW, retention_days=30, interval=3600)


def test_oldest_age_empty_log_is_zero() -> None:
    assert oldest_age(None, now=NOW) == 0.0


def test_oldest_age_grows_with_now_and_never_negative() -> None:
    assert oldest_age(NOW - 90, now=NOW) == 90.0
    assert oldest_age(NOW - 90, now=NOW + 10) == 100.0
    assert oldest_age(NOW + 5, now=NOW) == 0.0
