"""Wilson score intervals."""

from __future__ import annotations

import pytest

from services.metrics.wilson import wilson_interval


def test_wilson_interval_known_value() -> None:
    # 10 of 100 at 95 %: (0.0552, 0.1744), the textbook figure.
    lo, hi = wilson_interval(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-4)
    assert hi == pytest.approx(0.1744, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 1


def test_wilson_interval_bad_counts() -> None:
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_interval(5, 4)
