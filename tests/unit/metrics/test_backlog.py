"""The aggregator's backlog figure (the aggregation-lag alert reads it)."""

from __future__ import annotations

from services.metrics.aggregator import backlog


def test_backlog_sums_undelivered_and_in_flight() -> None:
    assert backlog(7, 3) == 10


def test_backlog_missing_fields_are_zero() -> None:
    assert backlog(None, None) == 0
    assert backlog(None, 2) == 2
